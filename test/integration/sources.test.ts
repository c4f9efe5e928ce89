import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { simpleGit } from "simple-git";
import type { Snapshot } from "../../src/api/snapshot.ts";
import { DirectorySource } from "../../src/sources/directory-source.ts";
import { commitsTouching } from "../../src/sources/git-history.ts";
import { GitSource } from "../../src/sources/git-source.ts";
import { ManualClock } from "../../src/time/clock.ts";
import { writeTree } from "../helpers/manifest-tree.ts";

const gosuto = (name: string, comment = "") => `${comment}apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: {}\n`;
const temp: string[] = [];
after(() => temp.forEach((d) => rmSync(d, { recursive: true, force: true })));

/**
 * A clock the test moves (ManualClock) that also says when the source arms its quiet period: the watcher has
 * seen a change. So nothing here waits for the machine to be fast enough; waiting is for an event.
 */
class WatchedClock extends ManualClock {
  private armed = 0;
  private readonly waiting: Array<() => void> = [];

  override after(ms: number, fn: () => void): () => void {
    this.armed++;
    for (const wake of this.waiting.splice(0)) wake();
    return super.after(ms, fn);
  }

  /** Resolves once a quiet period was armed after `since` armings (`armings` before the change). */
  async armedSince(since: number, what: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        if (this.armed > since) return resolve();
        this.waiting.push(resolve);
        // Only a bound for a watcher that never reports: the outcome does not depend on it.
        timer = setTimeout(() => reject(new Error(`the watcher never reported ${what}`)), 30_000);
      });
    } finally {
      clearTimeout(timer);
    }
  }

  get armings(): number {
    return this.armed;
  }
}

describe("directory source", () => {
  const QUIET_MS = 150;

  test("delivers on content changes only, once per burst, with errors", async () => {
    const dir = writeTree({ "a.yaml": gosuto("a") });
    const got: Snapshot[] = [];
    const clock = new WatchedClock();
    const source = new DirectorySource({ root: dir, quiet: { minMs: QUIET_MS, maxMs: QUIET_MS }, clock });
    /**
     * Writes, waits until the watcher has armed the quiet period, lets it pass, and waits for the reload it starts
     * (refresh queues behind a reload in flight, so it resolves once that one is done).
     */
    const change = async (what: string, write: () => void) => {
      const armings = clock.armings;
      write();
      await clock.armedSince(armings, what);
      clock.advance(QUIET_MS);
      await source.refresh("test");
    };
    await source.start((s) => got.push(s));
    try {
      assert.equal(got.length, 1);
      assert.equal(got[0]!.objects.size, 1);

      await change("a new file", () => writeFileSync(join(dir, "b.yaml"), gosuto("b")));
      assert.equal(got.length, 2, "a snapshot after adding a file");
      assert.equal(got[1]!.objects.size, 2);
      assert.notEqual(got[1]!.digest, got[0]!.digest);

      await change("a comment-only edit", () => writeFileSync(join(dir, "b.yaml"), gosuto("b", "# only a comment\n")));
      assert.equal(got.length, 2, "a comment-only edit delivers nothing");

      // A burst: every write is done before the quiet period passes, so the one reload reads the final tree.
      await change("the burst", () => {
        for (let i = 0; i < 10; i++) writeFileSync(join(dir, "c.yaml"), gosuto(`c${i}`));
      });
      assert.equal(got.length, 3, "one snapshot for the burst");
      assert.ok(got[2]!.objects.has("Gosuto/c9"), "with its final content");
      // Events of the burst the watcher reports late re-arm the quiet period: their reload reads the same tree.
      clock.advance(QUIET_MS);
      await source.refresh("test");
      assert.equal(got.length, 3, "late events of the burst deliver nothing");

      await change("an invalid file", () => writeFileSync(join(dir, "bad.yaml"), "apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: Bad}\nspec: {}\n"));
      assert.equal(got.length, 4);
      assert.ok(got[3]!.errors.some((e) => e.file === "bad.yaml" && e.path === "metadata.name"));
    } finally {
      await source.stop();
    }
  });
});

describe("git source", () => {
  async function repoWith(files: Record<string, string>) {
    const base = mkdtempSync(join(tmpdir(), "ruriko-git-"));
    temp.push(base);
    const bare = join(base, "origin.git");
    const work = join(base, "work");
    await simpleGit().init(true, [bare, "--initial-branch=main"]);
    await simpleGit().clone(bare, work);
    const git = simpleGit(work);
    await git.addConfig("user.name", "Test Author").addConfig("user.email", "author@example.org").checkoutLocalBranch("main");
    const commit = async (changes: Record<string, string | null>, message: string) => {
      for (const [path, content] of Object.entries(changes)) {
        if (content === null) rmSync(join(work, path));
        else {
          mkdirSync(join(work, path, ".."), { recursive: true });
          writeFileSync(join(work, path), content);
        }
      }
      await git.add(["-A"]).commit(message);
      await git.push("origin", "main");
      return (await git.revparse(["HEAD"])).trim();
    };
    const first = await commit(files, "initial manifests");
    return { bare, work, commit, first, stateDir: join(base, "state") };
  }

  test("follows a branch and a sub-path; each new commit is a revision", async () => {
    const repo = await repoWith({ "deploy/gosutos/a.yaml": gosuto("a"), "README.md": "docs" });
    const got: Snapshot[] = [];
    const source = new GitSource({ url: `file://${repo.bare}`, branch: "main", path: "deploy", workDir: join(repo.stateDir, "git"), intervalMs: 60_000 });
    await source.start((s) => got.push(s));
    try {
      assert.equal(got.length, 1);
      assert.equal(got[0]!.revision, repo.first);
      assert.ok(got[0]!.objects.has("Gosuto/a"));

      const second = await repo.commit({ "deploy/gosutos/b.yaml": gosuto("b") }, "add b");
      await source.refresh("test");
      assert.equal(got.length, 2);
      assert.equal(got[1]!.revision, second);
      assert.ok(got[1]!.objects.has("Gosuto/b"));

      await source.refresh("nothing new");
      assert.equal(got.length, 2, "no new commit, no new snapshot");

      const history = await commitsTouching(source.checkoutDir, ["deploy/gosutos/b.yaml"]);
      assert.deepEqual(history.map((c) => [c.sha, c.subject, c.author]), [[second, "add b", "Test Author"]]);
      const all = await commitsTouching(source.checkoutDir, ["deploy"]);
      assert.deepEqual(all.map((c) => c.sha), [second, repo.first]);
    } finally {
      await source.stop();
    }
  });

  test("a missing sub-path is an error in the snapshot, never an empty desired state", async () => {
    const repo = await repoWith({ "gosutos/a.yaml": gosuto("a") });
    const got: Snapshot[] = [];
    const source = new GitSource({ url: repo.bare, path: "nowhere", workDir: join(repo.stateDir, "git") });
    await source.start((s) => got.push(s));
    await source.stop();
    assert.equal(got.length, 1);
    assert.equal(got[0]!.errors[0]!.code, "io");
    assert.match(got[0]!.errors[0]!.message, /does not exist/);
  });
});
