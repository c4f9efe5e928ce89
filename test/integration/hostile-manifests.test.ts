/**
 * Hostile manifests (issue 13, items 4 and 5): a hostile tree offered to a running `serve` is refused like any
 * invalid revision while /healthz keeps answering; a symbolic link in the tree adds no watches and is not
 * followed, by the directory source or the git source.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import Docker from "dockerode";
import { simpleGit } from "simple-git";
import type { Snapshot } from "../../src/api/snapshot.ts";
import { LABELS } from "../../src/runtime/runtime.ts";
import { DirectorySource } from "../../src/sources/directory-source.ts";
import { GitSource } from "../../src/sources/git-source.ts";
import { ensureAgentImage, newStateDir, removeInstanceResources, TEST_AGENT_IMAGE, waitFor } from "../helpers/controller-harness.ts";
import { writeHostileTree } from "../helpers/hostile-tree.ts";
import { writeTree } from "../helpers/manifest-tree.ts";
import { startServe } from "../helpers/serve-process.ts";

const docker = new Docker();
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const gosuto = (name: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: {}\n`;
const agent = (name: string) =>
  `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec:\n  image: ${TEST_AGENT_IMAGE}\n  gosuto: ${name}\n  resources: {memory: 128Mi}\n`;

/** YAML that every parser takes a while over (60,000 keys), within every limit: reading it is real work. */
const ballast = () => Array.from({ length: 60_000 }, (_, k) => `key${k}: value`).join("\n").slice(0, 1_000_000);

describe("a hostile tree under ruriko serve", () => {
  test("is refused like any invalid revision: the agent stays as it was, and /healthz answers while the tree is read", async () => {
    await ensureAgentImage(docker);
    const { stateDir, instance } = newStateDir();
    cleanups.push(async () => {
      await removeInstanceResources(docker, instance);
      rmSync(stateDir, { recursive: true, force: true });
    });
    const dir = writeTree({ "gosutos/a1.yaml": gosuto("a1"), "agents/a1.yaml": agent("a1") });
    const serve = await startServe(["--manifests", dir], { stateDir });
    cleanups.push(() => serve.stop());
    await waitFor(async () => (await serve.status())?.agents.find((a) => a.name === "a1")?.phase === "Ready", "a1 Ready", 120_000);
    const before = (await serve.status())!;
    const [container] = await docker.listContainers({ filters: JSON.stringify({ label: [`${LABELS.instance}=${instance}`] }) });

    // The tree is written aside (hidden: not watched) and moved in at once, so that it is read in one go: the
    // twenty 1 MiB files of `[`, the deep file, the alias bomb, and files that take a while to parse.
    writeHostileTree(dir, ".staging/hostile");
    for (let i = 0; i < 8; i++) writeFileSync(join(dir, ".staging/hostile", `ballast-${i}.yaml`), ballast());
    const logFrom = statSync(serve.logFile).size;
    renameSync(join(dir, ".staging/hostile"), join(dir, "hostile"));
    const newLog = () => readFileSync(serve.logFile, "utf8").slice(logFrom);
    await waitFor(() => newLog().includes("reading the manifests in"), "the source to start reading the tree", 30_000);

    // While it is being read: /healthz answers, and the revision has not been judged yet.
    const health = await fetch(`${serve.url}/healthz`);
    assert.equal(health.status, 200);
    const meanwhile = (await serve.status())!;
    assert.ok(!meanwhile.source.errors.some((e) => e.file.startsWith("hostile/")), "/healthz answered before the tree was judged");

    await waitFor(async () => ((await serve.status())?.source.errors ?? []).some((e) => e.file.startsWith("hostile/")), "the hostile revision refused", 300_000);
    const refused = (await serve.status())!;
    const texts = refused.source.errors.map((e) => e.text);
    for (let i = 0; i < 20; i++) assert.ok(texts.includes(`hostile/brackets-${String(i).padStart(2, "0")}.yaml:1:33: nesting is deeper than the limit of 32 levels`), texts.join("\n"));
    assert.ok(texts.includes("hostile/deep.yaml:1:65: nesting is deeper than the limit of 32 levels"), texts.join("\n"));
    assert.ok(texts.includes("hostile/laughs.yaml:1:1: too many alias expansions (limit 100); refusing a possible alias bomb"), texts.join("\n"));
    assert.equal(refused.source.appliedRevision, before.source.appliedRevision, "the last good revision stays in force");
    const a1 = refused.agents.find((a) => a.name === "a1")!;
    assert.equal(a1.phase, "Ready");
    assert.equal(a1.appliedRevision, before.agents.find((a) => a.name === "a1")!.appliedRevision);
    const after = await docker.getContainer(container!.Id).inspect();
    assert.equal(after.State.Running, true, "the agent's container was not touched");
    assert.equal(after.Id, container!.Id);
    assert.equal((await serve.status())!.agents.length, 1);
  });
});

describe("symbolic links in the tree", () => {
  test("a link to a big directory adds no watches, and what it holds is not loaded", async () => {
    const big = mkdtempSync(join(tmpdir(), "ruriko-big-"));
    cleanups.push(async () => rmSync(big, { recursive: true, force: true }));
    for (let i = 0; i < 40; i++) {
      for (let k = 0; k < 5; k++) mkdirSync(join(big, `d${i}`, `e${k}`), { recursive: true });
      writeFileSync(join(big, `d${i}`, "linked.yaml"), gosuto(`linked-${i}`));
    }
    const dir = writeTree({ "g.yaml": gosuto("g"), "sub/h.yaml": gosuto("h") });
    symlinkSync(big, join(dir, "big"));
    symlinkSync(join(big, "d0", "linked.yaml"), join(dir, "sub", "linked.yaml"));

    const got: Snapshot[] = [];
    const source = new DirectorySource({ root: dir, quiet: { minMs: 50, maxMs: 50 } });
    await source.start((s) => got.push(s));
    try {
      const watched = source.watched();
      // The tree's own directories (and its parent, which chokidar watches for the root itself), nothing else.
      assert.deepEqual(Object.keys(watched).sort(), [dirname(dir), dir, join(dir, "sub")].sort());
      assert.ok(!Object.keys(watched).some((d) => d.startsWith(big) || d.startsWith(join(dir, "big"))));
      assert.deepEqual([...got.at(-1)!.objects.keys()], ["Gosuto/g", "Gosuto/h"]);
      assert.deepEqual(
        got.at(-1)!.warnings.map((w) => `${w.file}: ${w.message}`),
        ["big: symbolic link, not followed: what it points to is not read", "sub/linked.yaml: symbolic link, not followed: what it points to is not read"],
      );
    } finally {
      await source.stop();
    }
  });

  test("a git source whose path leads out of the repository through a link refuses the revision", async () => {
    const base = mkdtempSync(join(tmpdir(), "ruriko-git-link-"));
    cleanups.push(async () => rmSync(base, { recursive: true, force: true }));
    const outside = writeTree({ "agents/outside.yaml": gosuto("outside") });
    const bare = join(base, "origin.git");
    const work = join(base, "work");
    await simpleGit().init(true, [bare, "--initial-branch=main"]);
    await simpleGit().clone(bare, work);
    const git = simpleGit(work);
    await git.addConfig("user.name", "Ops").addConfig("user.email", "ops@example.org").checkoutLocalBranch("main");
    mkdirSync(join(work, "fleet"));
    writeFileSync(join(work, "fleet", "g.yaml"), gosuto("g"));
    symlinkSync(outside, join(work, "elsewhere"));
    await git.add(["-A"]).commit("a link out of the repository");
    await git.push("origin", "main");
    const sha = (await git.revparse(["HEAD"])).trim();

    const got: Snapshot[] = [];
    const source = new GitSource({ url: bare, path: "elsewhere/agents", workDir: join(base, "checkout"), intervalMs: 3_600_000 });
    await source.start((s) => got.push(s));
    await source.stop();
    assert.equal(got.length, 1);
    assert.equal(got[0]!.revision, sha);
    assert.deepEqual(got[0]!.objects.size, 0);
    assert.deepEqual(
      got[0]!.errors.map((e) => `${e.file}: ${e.message}`),
      [".: elsewhere/agents leads out of the repository through a symbolic link; not followed"],
    );
  });
});
