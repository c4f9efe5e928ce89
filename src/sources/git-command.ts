import { execFile } from "node:child_process";

/**
 * Runs one git command in `cwd` and gives its standard output. The git source's fetch-and-checkout path calls
 * git directly rather than through simple-git: simple-git waits a further 50 ms after every command that printed
 * nothing (a fetch with nothing new, a clean with nothing to remove), and a sync runs several of them between a
 * push webhook and the container it starts. Git never prompts (there is no terminal to answer it).
 */
export function runGit(cwd: string, args: readonly string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("git", args, { cwd, timeout: timeoutMs, maxBuffer: 16 << 20, env: { ...process.env, GIT_TERMINAL_PROMPT: "0" } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`git ${args.find((a) => !a.startsWith("-")) ?? ""} failed: ${String(stderr).trim() || error.message}`, { cause: error }));
      else resolve(String(stdout));
    });
  });
}

/** Options that keep a fetch to the fetch: no tags, no FETCH_HEAD, no background maintenance or gc afterwards. */
export const QUIET_FETCH = ["-c", "maintenance.auto=false", "-c", "gc.auto=0", "fetch", "--no-tags", "--no-write-fetch-head", "--prune"] as const;
