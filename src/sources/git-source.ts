import { existsSync } from "node:fs";
import { mkdir, realpath, rm } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { simpleGit, type SimpleGit } from "simple-git";
import { formatManifestError } from "../api/errors.ts";
import { loadSnapshotOffThread, unreadableSnapshot } from "../api/load-off-thread.ts";
import type { Snapshot } from "../api/snapshot.ts";
import { backoffDelay, type BackoffPolicy } from "../time/backoff.ts";
import { syncCheckout } from "./git-command.ts";
import { coalescing, redactUrl, SourceError, type Source } from "./source.ts";

interface Log {
  debug?(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface GitSourceOptions {
  /** Remote URL, local path or file:// URL. */
  url: string;
  branch?: string;
  /** Sub-path inside the repository holding the manifests. */
  path?: string;
  /** Where the clone lives (under Ruriko's state directory). */
  workDir: string;
  /** Fetch interval; jittered ±10%, and stretched up to 8× while fetches fail. */
  intervalMs?: number;
  log?: Log;
}

/**
 * Follows a branch of a git repository. Each fetch hard-resets a detached checkout to `origin/<branch>`
 * (no merges, no local state to go wrong) and delivers a snapshot whenever the commit SHA changes —
 * also for commits that touch nothing under `path`: the revision moved, and status should say so.
 * A missing `path` yields a snapshot with an error, never an empty one: an empty checkout must not
 * read as "no agents".
 */
export class GitSource implements Source {
  readonly kind = "git" as const;
  private readonly o: Required<Omit<GitSourceOptions, "log">> & { log?: Log };
  private readonly git: SimpleGit;
  /** Failures stretch the interval (up to 8×) so a dead remote is not hammered. */
  private readonly fetchEvery: BackoffPolicy;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastSha: string | undefined;
  private onSnapshot: ((s: Snapshot) => void) | undefined;
  private stopped = false;
  private originChecked = false;
  /** The commit this process checked out, complete (checkout and clean done). */
  private checkedOut: string | undefined;
  private readonly fetchNow = coalescing(() => this.sync());

  constructor(options: GitSourceOptions) {
    this.o = { branch: "main", path: ".", intervalMs: 60_000, ...options };
    this.git = simpleGit();
    this.fetchEvery = { baseMs: this.o.intervalMs, maxMs: 8 * this.o.intervalMs, jitter: 0.1 };
  }

  describe(): string {
    return `git ${redactUrl(this.o.url)}#${this.o.branch}:${this.o.path}`;
  }

  get checkoutDir(): string {
    return this.o.workDir;
  }

  async start(onSnapshot: (s: Snapshot) => void): Promise<void> {
    this.onSnapshot = onSnapshot;
    this.stopped = false;
    try {
      await this.fetchNow();
    } catch (error) {
      this.o.log?.warn({ err: (error as Error).message }, "first fetch failed; retrying on the interval");
    }
    this.scheduleNext();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.onSnapshot = undefined;
  }

  async refresh(reason: string): Promise<void> {
    this.o.log?.info({ reason }, `fetching ${this.describe()} now`);
    await this.fetchNow();
  }

  /** The commit the checkout is at. */
  async currentCommit(): Promise<string | undefined> {
    if (!existsSync(join(this.o.workDir, ".git"))) return undefined;
    return (await simpleGit(this.o.workDir).revparse(["HEAD"])).trim();
  }

  private scheduleNext(): void {
    if (this.stopped) return;
    // The next fetch is retry number failures + 1: the plain interval while all is well.
    const delay = backoffDelay(this.failures + 1, this.fetchEvery);
    this.timer = setTimeout(() => {
      this.fetchNow()
        .catch((error: unknown) => this.o.log?.warn({ err: (error as Error).message }, `fetch of ${this.describe()} failed`))
        .finally(() => this.scheduleNext());
    }, delay);
    this.timer.unref();
  }

  private async sync(): Promise<void> {
    try {
      const started = performance.now();
      const sha = await this.checkout();
      this.failures = 0;
      if (sha === this.lastSha) return;
      const fetched = performance.now();
      const snapshot = await this.load(sha);
      this.o.log?.debug?.({ revision: sha, fetchMs: Math.round(fetched - started), loadMs: Math.round(performance.now() - fetched) }, `fetched and read ${this.describe()}`);
      this.lastSha = sha;
      this.o.log?.info({ revision: sha, objects: snapshot.objects.size, errors: snapshot.errors.length }, `new commit on ${this.describe()}`);
      if (snapshot.warnings.length > 0) this.o.log?.warn({ revision: sha, warnings: snapshot.warnings.map(formatManifestError) }, `${snapshot.warnings.length} warning(s) in ${this.describe()}`);
      this.onSnapshot?.(snapshot);
    } catch (error) {
      this.failures++;
      throw error instanceof SourceError ? error : new SourceError(this.describe(), "fetch", redactUrl((error as Error).message), { cause: error });
    }
  }

  /**
   * The manifests at `sha`, read on a worker thread (a commit is as untrusted as any file: see
   * load-off-thread.ts). The path must stay inside the checkout: a repository can hold a symbolic link where
   * `path` leads, and what it points to is not the repository's to show.
   */
  private async load(sha: string): Promise<Snapshot> {
    const root = join(this.o.workDir, this.o.path);
    const [checkout, resolved] = await Promise.all([realpath(this.o.workDir), realpath(root).catch(() => undefined)]);
    if (resolved && resolved !== checkout && !resolved.startsWith(checkout + sep)) {
      return unreadableSnapshot("io", `${this.o.path} leads out of the repository through a symbolic link; not followed`, { revision: sha });
    }
    return loadSnapshotOffThread(root, { revision: sha });
  }

  /**
   * Fetches the branch and, when it moved, checks its commit out (detached, forced, untracked files removed).
   * Returns the commit. The origin is checked once per process: a checkout of another repository is replaced.
   */
  private async checkout(): Promise<string> {
    const dir = this.o.workDir;
    const branch = this.o.branch;
    if (!this.originChecked && existsSync(join(dir, ".git"))) {
      const repo = simpleGit(dir);
      const origin = (await repo.getRemotes(true)).find((r) => r.name === "origin")?.refs.fetch;
      if (origin !== this.o.url) await rm(dir, { recursive: true, force: true });
    }
    if (!existsSync(join(dir, ".git"))) {
      await mkdir(dirname(dir), { recursive: true });
      await this.git.clone(this.o.url, dir, ["--no-checkout", "--branch", branch, "--single-branch"]);
      this.checkedOut = undefined;
    }
    this.originChecked = true;
    // The commit already checked out by this process is not checked out again (a timer, a push to another branch).
    const known = this.checkedOut;
    this.checkedOut = undefined;
    this.checkedOut = await syncCheckout(dir, branch, known);
    return this.checkedOut;
  }
}
