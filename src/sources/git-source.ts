import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { simpleGit, type SimpleGit } from "simple-git";
import { loadSnapshotFromDirectory } from "../api/load.ts";
import type { Snapshot } from "../api/snapshot.ts";
import { coalescing, redactUrl, SourceError, type Source } from "./source.ts";

interface Log {
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
  /** Fetch interval; jittered ±10%. */
  intervalMs?: number;
  log?: Log;
}

export interface CommitInfo {
  sha: string;
  author: string;
  date: string;
  subject: string;
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
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastSha: string | undefined;
  private onSnapshot: ((s: Snapshot) => void) | undefined;
  private stopped = false;
  private readonly fetchNow = coalescing(() => this.sync());

  constructor(options: GitSourceOptions) {
    this.o = { branch: "main", path: ".", intervalMs: 60_000, ...options };
    this.git = simpleGit();
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
    // Failures stretch the interval (up to 8×) so a dead remote is not hammered.
    const backoff = Math.min(2 ** this.failures, 8);
    const delay = this.o.intervalMs * backoff * (0.9 + 0.2 * Math.random());
    this.timer = setTimeout(() => {
      this.fetchNow()
        .catch((error: unknown) => this.o.log?.warn({ err: (error as Error).message }, `fetch of ${this.describe()} failed`))
        .finally(() => this.scheduleNext());
    }, delay);
    this.timer.unref();
  }

  private async sync(): Promise<void> {
    try {
      const sha = await this.checkout();
      this.failures = 0;
      if (sha === this.lastSha) return;
      const root = join(this.o.workDir, this.o.path);
      const snapshot = await loadSnapshotFromDirectory(root, { revision: sha });
      this.lastSha = sha;
      this.o.log?.info({ revision: sha, objects: snapshot.objects.size, errors: snapshot.errors.length }, `new commit on ${this.describe()}`);
      this.onSnapshot?.(snapshot);
    } catch (error) {
      this.failures++;
      throw error instanceof SourceError ? error : new SourceError(this.describe(), "fetch", redactUrl((error as Error).message), { cause: error });
    }
  }

  private async checkout(): Promise<string> {
    const dir = this.o.workDir;
    const branch = this.o.branch;
    if (existsSync(join(dir, ".git"))) {
      const repo = simpleGit(dir);
      const origin = (await repo.getRemotes(true)).find((r) => r.name === "origin")?.refs.fetch;
      if (origin !== this.o.url) await rm(dir, { recursive: true, force: true });
    }
    if (!existsSync(join(dir, ".git"))) {
      await mkdir(dirname(dir), { recursive: true });
      await this.git.clone(this.o.url, dir, ["--no-checkout", "--branch", branch, "--single-branch"]);
    }
    const repo = simpleGit(dir);
    await repo.fetch("origin", `+refs/heads/${branch}:refs/remotes/origin/${branch}`, ["--prune"]);
    await repo.raw(["-c", "advice.detachedHead=false", "checkout", "--force", "--detach", `origin/${branch}`]);
    await repo.raw(["reset", "--hard", `origin/${branch}`]);
    await repo.raw(["clean", "-ffdx"]);
    return (await repo.revparse(["HEAD"])).trim();
  }
}

/** Commits that touched any of `paths` (relative to the repository root), newest first. */
export async function historyOf(workDir: string, paths: readonly string[], maxCount = 20): Promise<CommitInfo[]> {
  if (paths.length === 0) return [];
  const out = await simpleGit(workDir).raw(["log", `--max-count=${maxCount}`, "--format=%H%x1f%an%x1f%aI%x1f%s", "--", ...paths]);
  return out
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [sha, author, date, subject] = line.split("\x1f") as [string, string, string, string];
      return { sha, author, date, subject };
    });
}
