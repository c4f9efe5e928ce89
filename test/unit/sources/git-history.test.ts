import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { simpleGit } from "simple-git";
import { loadSnapshotFromDirectory } from "../../../src/api/load.ts";
import type { Snapshot } from "../../../src/api/snapshot.ts";
import { agentFilesOf, agentHistory, changeAuthors, commitsTouching } from "../../../src/sources/git-history.ts";

const gosuto = (name: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: {}\n`;
const agent = (name: string, image = "ruriko/gitai:dev") => `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec: {image: "${image}", gosuto: ${name}}\n`;
const binding = (name: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: SecretBinding\nmetadata: {name: ${name}-key}\nspec: {agent: ${name}, secret: key, env: KEY}\n`;

describe("git history of agents", () => {
  let repo: string;
  let snapshot: Snapshot;
  // Commits, oldest first: `add` (alice) creates both agents, `a1` (alice) changes a, `b1` (bob) changes b only,
  // `bind` (carol) grants a a secret.
  const sha: Record<"add" | "a1" | "b1" | "bind", string> = { add: "", a1: "", b1: "", bind: "" };

  async function commit(author: string, files: Record<string, string>, message: string): Promise<string> {
    for (const [file, content] of Object.entries(files)) {
      mkdirSync(dirname(join(repo, file)), { recursive: true });
      writeFileSync(join(repo, file), content);
    }
    const git = simpleGit(repo);
    await git.add(".");
    await git.raw(["-c", `user.name=${author}`, "-c", `user.email=${author.toLowerCase()}@example.org`, "commit", "-m", message]);
    return (await git.revparse(["HEAD"])).trim();
  }

  before(async () => {
    repo = mkdtempSync(join(tmpdir(), "ruriko-history-"));
    await simpleGit(repo).init(["--initial-branch=main"]);
    sha.add = await commit("Alice", { "manifests/a.yaml": `${gosuto("a")}---\n${agent("a")}`, "manifests/b.yaml": `${gosuto("b")}---\n${agent("b")}` }, "add agents");
    sha.a1 = await commit("Alice", { "manifests/a.yaml": `${gosuto("a")}---\n${agent("a", "ruriko/gitai:1")}` }, "a: new image");
    sha.b1 = await commit("Bob", { "manifests/b.yaml": `${gosuto("b")}---\n${agent("b", "ruriko/gitai:1")}` }, "b: new image");
    sha.bind = await commit("Carol", { "manifests/secrets/a.yaml": binding("a") }, "a: bind a key");
    snapshot = await loadSnapshotFromDirectory(join(repo, "manifests"));
    assert.deepEqual(snapshot.errors, []);
  });
  after(() => rmSync(repo, { recursive: true, force: true }));

  test("an agent's files are its Agent, its Gosuto and its SecretBindings, as repository paths", () => {
    assert.deepEqual(agentFilesOf(snapshot, "a", "manifests"), ["manifests/a.yaml", "manifests/secrets/a.yaml"]);
    assert.deepEqual(agentFilesOf(snapshot, "b", "manifests/"), ["manifests/b.yaml"]);
  });

  test("commits touching files, newest first, bounded by until and maxCount", async () => {
    const files = agentFilesOf(snapshot, "a", "manifests");
    assert.deepEqual((await commitsTouching(repo, files)).map((c) => c.sha), [sha.bind, sha.a1, sha.add]);
    assert.deepEqual((await commitsTouching(repo, files, { until: sha.b1 })).map((c) => c.sha), [sha.a1, sha.add]);
    assert.deepEqual((await commitsTouching(repo, files, { maxCount: 1 })).map((c) => c.sha), [sha.bind]);
    const [newest] = await commitsTouching(repo, files);
    assert.equal(newest?.author, "Carol");
    assert.equal(newest?.authorEmail, "carol@example.org");
    assert.equal(newest?.subject, "a: bind a key");
    assert.match(newest?.date ?? "", /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(await commitsTouching(repo, []), []);
  });

  test("a later commit touching only another agent still marks the agent's own applied commit", async () => {
    const history = await agentHistory({ workDir: repo, path: "manifests", snapshot, agent: "a", appliedRevision: sha.b1 });
    assert.deepEqual(history.commits.map((c) => c.sha), [sha.bind, sha.a1, sha.add]);
    assert.equal(history.applied, sha.a1);
    const exact = await agentHistory({ workDir: repo, path: "manifests", snapshot, agent: "a", appliedRevision: sha.add });
    assert.equal(exact.applied, sha.add);
  });

  test("an applied revision the repository does not know marks nothing, and is no error", async () => {
    for (const appliedRevision of ["0123456789abcdef0123456789abcdef01234567", "--all", null]) {
      const history = await agentHistory({ workDir: repo, path: "manifests", snapshot, agent: "a", appliedRevision });
      assert.equal(history.applied, null, String(appliedRevision));
      assert.equal(history.commits.length, 3);
    }
  });

  test("the authors of a range are every distinct author in it that touched the paths", async () => {
    assert.deepEqual(await changeAuthors(repo, { paths: [], since: sha.add, until: sha.bind }), [
      { name: "Carol", email: "carol@example.org" },
      { name: "Bob", email: "bob@example.org" },
      { name: "Alice", email: "alice@example.org" },
    ]);
    assert.deepEqual(await changeAuthors(repo, { paths: ["manifests/b.yaml"], since: sha.add, until: sha.bind }), [{ name: "Bob", email: "bob@example.org" }]);
    assert.deepEqual(await changeAuthors(repo, { paths: [], since: sha.bind, until: sha.bind }), []);
  });

  test("without a usable since, every author of the paths up to until (with no paths: the newest commit's)", async () => {
    assert.deepEqual(await changeAuthors(repo, { paths: [], since: null, until: sha.b1 }), [{ name: "Bob", email: "bob@example.org" }]);
    assert.deepEqual(await changeAuthors(repo, { paths: ["manifests/b.yaml"], since: null, until: sha.b1 }), [{ name: "Bob", email: "bob@example.org" }, { name: "Alice", email: "alice@example.org" }], "a later commit does not hide who wrote the rest");
    assert.deepEqual(await changeAuthors(repo, { paths: [], since: "0123456789abcdef0123456789abcdef01234567", until: sha.b1 }), [{ name: "Bob", email: "bob@example.org" }]);

    // A commit off main's history (as a force push leaves the old applied revision): not an ancestor.
    const git = simpleGit(repo);
    const side = (await git.raw(["-c", "user.name=Dave", "-c", "user.email=dave@example.org", "commit-tree", `${sha.add}^{tree}`, "-p", sha.add, "-m", "side"])).trim();
    assert.deepEqual(await changeAuthors(repo, { paths: [], since: side, until: sha.bind }), [{ name: "Carol", email: "carol@example.org" }]);
  });

  test("a directory without a checkout is an error that says so", async () => {
    const empty = mkdtempSync(join(tmpdir(), "ruriko-history-empty-"));
    try {
      await assert.rejects(commitsTouching(empty, ["a.yaml"]), /no git checkout in .*ruriko-history-empty-/);
      await assert.rejects(changeAuthors(join(empty, "missing"), { paths: [], since: null, until: "HEAD" }), /no git checkout in/);
      await assert.rejects(changeAuthors(repo, { paths: [], since: null, until: "nope" }), /revision nope is not in the repository/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
