import { execFile } from "node:child_process";

/*
 * The git source's fetch-and-checkout path calls git directly rather than through simple-git: simple-git waits a
 * further 50 ms after every command that printed nothing (a fetch with nothing new, a clean with nothing to
 * remove), and this path lies between a push webhook and the container it starts. Git never prompts (there is
 * no terminal to answer it).
 */

/**
 * Fetches `branch` from origin and, when its commit is not `checkedOut`, checks it out (detached, forced) and
 * removes untracked files; prints the commit. One shell, one fork from Ruriko: forking a large process costs
 * milliseconds each time, and a sync is four git commands. The branch and the commit are positional arguments,
 * never part of the script's text. The fetch takes no tags, writes no FETCH_HEAD and starts no maintenance.
 */
const SYNC_SCRIPT = `set -e
git -c maintenance.auto=false -c gc.auto=0 fetch --quiet --no-tags --no-write-fetch-head --prune origin "+refs/heads/$1:refs/remotes/origin/$1"
sha=$(git rev-parse --verify "refs/remotes/origin/$1^{commit}")
if [ "$sha" != "$2" ]; then
  git -c advice.detachedHead=false checkout --quiet --force --detach "$sha"
  git clean -ffdxq
fi
echo "$sha"`;

/** The branch's commit after syncing the checkout in `cwd` to it (see SYNC_SCRIPT). */
export async function syncCheckout(cwd: string, branch: string, checkedOut: string | undefined, timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("sh", ["-c", SYNC_SCRIPT, "git-sync", branch, checkedOut ?? ""], { cwd, timeout: timeoutMs, maxBuffer: 1 << 20, env: { ...process.env, GIT_TERMINAL_PROMPT: "0" } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`git fetch and checkout of ${branch} failed: ${String(stderr).trim() || error.message}`, { cause: error }));
      else resolve(String(stdout).trim());
    });
  });
}
