import { existsSync } from "node:fs";
import { join } from "node:path";
import { objectKey } from "../api/kinds.ts";
import { loadSnapshotFromDirectory } from "../api/load.ts";
import { renderHistoryText } from "../controller/history-report.ts";
import { agentHistory } from "../sources/git-history.ts";
import { openState, STATE_DB_FILE } from "../store/state.ts";

export type HistoryOutput = "text" | "json";

/** `ruriko history AGENT`: the commits that changed an agent in serve's git checkout, the applied one marked. */
export async function runHistory(agent: string, opts: { stateDir: string; path?: string; output: HistoryOutput }): Promise<number> {
  const workDir = join(opts.stateDir, "sources", "git");
  if (!existsSync(join(workDir, ".git"))) {
    console.error(`history needs a git source: no checkout in ${workDir}`);
    return 1;
  }
  // openState would create an empty database; a read-only command must not.
  if (!existsSync(join(opts.stateDir, STATE_DB_FILE))) {
    console.error(`no Ruriko state in ${opts.stateDir} (start \`ruriko serve\` first, or pass --state-dir)`);
    return 1;
  }
  const state = openState(opts.stateDir);
  try {
    // serve records the sub-path it follows, so the operator need not repeat it.
    const path = opts.path ?? state.meta.get("source.git.path") ?? ".";
    const snapshot = await loadSnapshotFromDirectory(join(workDir, path));
    if (!snapshot.objects.has(objectKey("Agent", agent))) {
      console.error(`no agent ${agent} in the checked-out revision`);
      return 1;
    }
    const appliedRevision = state.status.get(agent)?.appliedRevision ?? null;
    const history = await agentHistory({ workDir, path, snapshot, agent, appliedRevision });
    process.stdout.write(opts.output === "json" ? JSON.stringify({ agent, ...history }, null, 2) + "\n" : renderHistoryText(agent, history) + "\n");
    return 0;
  } finally {
    state.close();
  }
}
