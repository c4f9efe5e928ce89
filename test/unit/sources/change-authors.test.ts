/** Who wrote a change, on a real git repository: switching an agent to an older Gosuto is written by the switcher. */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { simpleGit } from "simple-git";
import { loadSnapshotFromDirectory } from "../../../src/api/load.ts";
import type { ProposedChange } from "../../../src/approvals/gate.ts";
import { gitChangeAuthors } from "../../../src/sources/change-authors.ts";

const repo = mkdtempSync(join(tmpdir(), "ruriko-authors-"));
after(() => rmSync(repo, { recursive: true, force: true }));

async function commit(author: string, files: Record<string, string>): Promise<string> {
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(dirname(join(repo, file)), { recursive: true });
    writeFileSync(join(repo, file), content);
  }
  const git = simpleGit(repo);
  await git.add(".");
  await git.raw(["-c", `user.name=${author}`, "-c", `user.email=${author.toLowerCase()}@example.org`, "commit", "-m", `by ${author}`]);
  return (await git.revparse(["HEAD"])).trim();
}

const gosuto = (name: string, spec = "{}") => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
const agent = (g: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: bot}\nspec: {image: "ruriko/gitai:dev", gosuto: ${g}}\n`;

describe("who wrote a change (git)", () => {
  test("switching an agent to a Gosuto written long ago names the switcher; removals name the newest committer", async () => {
    await simpleGit(repo).init(["--initial-branch=main"]);
    const converged = await commit("Ops", { "fleet/gosutos/safe.yaml": gosuto("safe"), "fleet/gosutos/permissive.yaml": gosuto("permissive", `{capabilities: [{name: all, allow: true}]}`), "fleet/agents/bot.yaml": agent("safe") });
    const switched = await commit("Alice", { "fleet/agents/bot.yaml": agent("permissive") });
    const snapshot = await loadSnapshotFromDirectory(join(repo, "fleet"), { revision: switched });
    const authors = gitChangeAuthors({ workDir: repo, path: "fleet", snapshot: () => snapshot, appliedRevisions: { agent: () => converged, policy: () => null } });
    const push: ProposedChange = {
      subject: { kind: "Gosuto", name: "permissive", operation: "update", fields: ["capabilities"], drift: false },
      binding: { agent: "bot", objectKey: "Gosuto/permissive", operation: "update", fromDigest: "a", toDigest: "b" },
      summary: "s",
      sourceDigest: null,
    };
    assert.deepEqual(await authors(push, switched), [{ name: "Alice", email: "alice@example.org" }], "the Gosuto's own file was not touched since; the agent's was");
    const neverConverged = gitChangeAuthors({ workDir: repo, path: "fleet", snapshot: () => snapshot, appliedRevisions: { agent: () => null, policy: () => null } });
    assert.deepEqual((await neverConverged(push, switched)).map((a) => a.name).sort(), ["Alice", "Ops"], "without a starting point, everyone who wrote the agent's files");
    const rotation: ProposedChange = { ...push, subject: { ...push.subject, kind: "Secret", name: "k" }, binding: { ...push.binding, agent: "", objectKey: "Secret/k" } };
    assert.deepEqual(await authors(rotation, "secret k v1"), [], "a secret's change is not written in the repository");
  });
});
