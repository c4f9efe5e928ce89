/** `ruriko history AGENT` as an operator runs it, against a state directory holding serve's git checkout. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { simpleGit } from "simple-git";
import { openState } from "../../src/store/state.ts";

const CLI = join(import.meta.dirname, "../../src/cli/ruriko.ts");
const ruriko = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60_000 });

const gosuto = (name: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: {}\n`;
const agent = (name: string, image = "ruriko/gitai:dev") => `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec: {image: "${image}", gosuto: ${name}}\n`;

describe("ruriko history", () => {
  const scratch = mkdtempSync(join(tmpdir(), "ruriko-history-cli-"));
  const repo = join(scratch, "repo");
  const stateDir = join(scratch, "state");
  const sha = { add: "", a1: "", b1: "" };

  async function commit(author: string, file: string, content: string, message: string): Promise<string> {
    writeFileSync(join(repo, "manifests", file), content);
    const git = simpleGit(repo);
    await git.add(".");
    await git.raw(["-c", `user.name=${author}`, "-c", `user.email=${author.toLowerCase()}@example.org`, "commit", "-m", message]);
    return (await git.revparse(["HEAD"])).trim();
  }

  before(async () => {
    mkdirSync(join(repo, "manifests"), { recursive: true });
    await simpleGit(repo).init(["--initial-branch=main"]);
    writeFileSync(join(repo, "manifests", "b.yaml"), `${gosuto("b")}---\n${agent("b")}`);
    sha.add = await commit("Alice", "a.yaml", `${gosuto("a")}---\n${agent("a")}`, "add agents");
    sha.a1 = await commit("Alice", "a.yaml", `${gosuto("a")}---\n${agent("a", "ruriko/gitai:1")}`, "a: new image");
    sha.b1 = await commit("Bob", "b.yaml", `${gosuto("b")}---\n${agent("b", "ruriko/gitai:1")}`, "b: new image");

    mkdirSync(join(stateDir, "sources"), { recursive: true });
    await simpleGit().clone(repo, join(stateDir, "sources", "git"));
    const state = openState(stateDir);
    try {
      // serve applied the whole repository at b1, a commit that did not touch agent a.
      state.status.put({
        agent: "a",
        conditions: [],
        observedRevision: sha.b1,
        appliedRevision: sha.b1,
        appliedSpecDigest: null,
        lastError: null,
        failures: 0,
        containerId: null,
        containerState: null,
        gosutoDigest: null,
        secretsDigest: null,
        runtime: null,
        updatedAt: new Date().toISOString(),
      });
      state.meta.set("source.git.path", "manifests");
    } finally {
      state.close();
    }
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  test("lists the agent's commits and marks the newest one at or before the applied revision", () => {
    const r = ruriko("history", "a", "--state-dir", stateDir);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 2, r.stdout);
    assert.match(lines[0]!, new RegExp(`^→ ${sha.a1.slice(0, 12)}  \\d{4}-\\d\\d-\\d\\d  Alice  a: new image$`));
    assert.match(lines[1]!, new RegExp(`^  ${sha.add.slice(0, 12)}  \\d{4}-\\d\\d-\\d\\d  Alice  add agents$`));
  });

  test("json carries the agent, the full commits and the applied sha", () => {
    const r = ruriko("history", "a", "--state-dir", stateDir, "--path", "manifests", "-o", "json");
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.stdout) as { agent: string; commits: Array<{ sha: string; author: string; authorEmail: string; subject: string }>; applied: string | null };
    assert.equal(json.agent, "a");
    assert.equal(json.applied, sha.a1);
    assert.deepEqual(
      json.commits.map((c) => [c.sha, c.author, c.authorEmail, c.subject]),
      [
        [sha.a1, "Alice", "alice@example.org", "a: new image"],
        [sha.add, "Alice", "alice@example.org", "add agents"],
      ],
    );
  });

  test("an agent with no applied revision is listed without a mark", () => {
    const r = ruriko("history", "b", "--state-dir", stateDir);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /→/);
    assert.match(r.stdout, new RegExp(`^  ${sha.b1.slice(0, 12)}  .*  Bob  b: new image$`, "m"));
  });

  test("an agent missing from the checkout is an error", () => {
    const r = ruriko("history", "nobody", "--state-dir", stateDir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no agent nobody in the checked-out revision/);
    const elsewhere = ruriko("history", "a", "--state-dir", stateDir, "--path", "nowhere");
    assert.equal(elsewhere.status, 1);
    assert.match(elsewhere.stderr, /no agent a in the checked-out revision/);
  });

  test("without a git checkout it says history needs a git source", () => {
    const empty = join(scratch, "no-checkout");
    const r = ruriko("history", "a", "--state-dir", empty);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim(), `history needs a git source: no checkout in ${join(empty, "sources", "git")}`);
  });
});
