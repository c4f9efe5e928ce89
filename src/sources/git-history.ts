import { existsSync } from "node:fs";
import { join, posix } from "node:path";
import { simpleGit, type SimpleGit } from "simple-git";
import type { AgentManifest } from "../api/generated/types.ts";
import { objectKey } from "../api/kinds.ts";
import { objectsOfKind, type Snapshot } from "../api/snapshot.ts";

/**
 * Reads of a manifests checkout's history: which commits changed an agent, and who wrote a change.
 * Pure git reads; what Ruriko applied comes from the caller.
 */

export interface CommitInfo {
  sha: string;
  author: string;
  authorEmail: string;
  date: string;
  subject: string;
}

export interface Author {
  name: string;
  email: string;
}

export interface AgentHistory {
  commits: CommitInfo[];
  /** sha of the newest commit at or before the applied revision that touched the agent's files; null if none or unknown */
  applied: string | null;
}

// One commit per line, fields split by the unit separator, which no name or subject contains in practice.
const LOG_FORMAT = "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%s";

function repository(workDir: string): SimpleGit {
  if (!existsSync(join(workDir, ".git"))) throw new Error(`no git checkout in ${workDir}`);
  return simpleGit(workDir);
}

/** The full sha of `rev` as a commit, or null when the repository does not know it. */
async function resolveCommit(git: SimpleGit, rev: string): Promise<string | null> {
  // --end-of-options: a revision read from the database must never be taken for an option.
  const sha = (await git.raw(["rev-parse", "--verify", "--quiet", "--end-of-options", `${rev}^{commit}`])).trim();
  return sha || null;
}

async function log(git: SimpleGit, revisions: readonly string[], paths: readonly string[], maxCount: number): Promise<CommitInfo[]> {
  const out = await git.raw(["log", `--max-count=${maxCount}`, LOG_FORMAT, ...revisions, "--", ...paths]);
  return out
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [sha = "", author = "", authorEmail = "", date = "", ...subject] = line.split("\x1f");
      return { sha, author, authorEmail, date, subject: subject.join("\x1f") };
    });
}

/** Commits that touched any of `paths` (relative to the repository root), newest first, at most maxCount (default 20). */
export async function commitsTouching(workDir: string, paths: readonly string[], options: { until?: string; maxCount?: number } = {}): Promise<CommitInfo[]> {
  const git = repository(workDir);
  if (paths.length === 0) return [];
  let revisions: string[] = [];
  if (options.until !== undefined) {
    const until = await resolveCommit(git, options.until);
    if (!until) throw new Error(`revision ${options.until} is not in the repository at ${workDir}`);
    revisions = [until];
  }
  return log(git, revisions, paths, options.maxCount ?? 20);
}

/** The agent's files in a snapshot: its Agent object's file and its Gosuto's file, and the files of SecretBindings naming it, as repository paths (joined with the manifests sub-path `path`). */
export function agentFilesOf(snapshot: Snapshot, agent: string, path: string): string[] {
  const files = new Set<string>();
  const agentObject = snapshot.objects.get(objectKey("Agent", agent));
  if (agentObject) {
    files.add(agentObject.source.file);
    const gosuto = snapshot.objects.get(objectKey("Gosuto", (agentObject.object as AgentManifest).spec.gosuto));
    if (gosuto) files.add(gosuto.source.file);
  }
  for (const binding of objectsOfKind(snapshot, "SecretBinding")) if (binding.object.spec.agent === agent) files.add(binding.source.file);
  return [...files].map((file) => posix.join(path, file));
}

/** History of one agent (see AgentHistory). appliedRevision unknown to the repository → applied null, never an error. */
export async function agentHistory(input: { workDir: string; path: string; snapshot: Snapshot; agent: string; appliedRevision: string | null; maxCount?: number }): Promise<AgentHistory> {
  const git = repository(input.workDir);
  const paths = agentFilesOf(input.snapshot, input.agent, input.path);
  const commits = await commitsTouching(input.workDir, paths, input.maxCount === undefined ? {} : { maxCount: input.maxCount });
  // The applied revision is the whole repository's: a later commit that touched only other agents is
  // applied too, so the agent's own applied change is the newest one of its commits reachable from it.
  const until = input.appliedRevision === null ? null : await resolveCommit(git, input.appliedRevision);
  const applied = until ? ((await commitsTouching(input.workDir, paths, { until, maxCount: 1 }))[0]?.sha ?? null) : null;
  return { commits, applied };
}

/**
 * Who wrote a change: the distinct authors of the commits in (since, until] that touched `paths` (any file when `paths` is empty).
 * When `since` is null, unknown to the repository, or not an ancestor of `until`: the authors of every commit at
 * or before `until` touching `paths` (nobody who wrote any of it may approve it), or, with no paths, of the newest
 * commit. At most `max` commits are read (default 200). Used to stop people approving their own changes; git
 * authorship is what committers say it is, so this stops mistakes and casual abuse, not a forger.
 */
export async function changeAuthors(workDir: string, query: { paths: readonly string[]; since: string | null; until: string; max?: number }): Promise<Author[]> {
  const git = repository(workDir);
  const until = await resolveCommit(git, query.until);
  if (!until) throw new Error(`revision ${query.until} is not in the repository at ${workDir}`);
  const since = query.since === null ? null : await resolveCommit(git, query.since);
  // When a force push took `since` off until's history, `since..until` reaches back to the fork point and
  // names authors of commits applied long ago under other shas: then the whole history of the paths counts.
  const isAncestor = since !== null && (await git.raw(["merge-base", since, until])).trim() === since;
  const max = query.max ?? 200;
  const commits = isAncestor ? await log(git, [`${since}..${until}`], query.paths, max) : await log(git, [until], query.paths, query.paths.length > 0 ? max : 1);
  const authors = new Map<string, Author>();
  for (const c of commits) authors.set(`${c.author}\x1f${c.authorEmail}`, { name: c.author, email: c.authorEmail });
  return [...authors.values()];
}
