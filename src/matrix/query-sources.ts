import type { AgentManifest } from "../api/generated/types.ts";
import { objectKey } from "../api/kinds.ts";
import type { Snapshot } from "../api/snapshot.ts";
import { imageMovesFor } from "../controller/image-observer.ts";
import { planFromState } from "../controller/plan-from-state.ts";
import { buildStatusReport } from "../controller/status-report.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { agentHistory } from "../sources/git-history.ts";
import type { StateStores } from "../store/state.ts";
import type { QuerySources } from "./queries.ts";

/** What the chat queries read: the snapshot in force, the engine and the state database. `git` when the source is a repository. */
export function querySourcesFor(deps: { state: StateStores; snapshot: () => Snapshot | undefined; runtime: Runtime; git?: { workDir: string; path: string } }): QuerySources {
  const { state, runtime, git } = deps;
  return {
    status: () => buildStatusReport(state),
    agentStatus: (name) => state.status.get(name),
    agentMatrix(name) {
      const manifest = deps.snapshot()?.objects.get(objectKey("Agent", name))?.object as AgentManifest | undefined;
      const matrix = manifest?.spec.matrix;
      if (matrix?.userId) return `${matrix.userId} (existing account)`;
      if (!matrix?.provision) return undefined;
      const account = state.matrixAccounts.current(name);
      return account?.userId ? `${account.userId} (provisioned)` : `being provisioned${account?.lastError ? `: ${account.lastError}` : ""}`;
    },
    async plan() {
      const snapshot = deps.snapshot();
      if (!snapshot) throw new Error("no revision is in force yet");
      const observed = await runtime.list();
      return planFromState(snapshot, observed, state, await imageMovesFor(runtime, snapshot, observed, (agent) => state.inventory.get(agent)));
    },
    pendingApprovals: () => state.approvals.list({ status: "pending" }),
    audit: (limit) => state.audit.tail(limit),
    trace: (traceId) => state.audit.byTrace(traceId),
    decisions: (agent, limit) => state.audit.byActor(`agent:${agent}`, limit),
    async history(agent) {
      const snapshot = deps.snapshot();
      if (!git || !snapshot) return undefined;
      return agentHistory({ workDir: git.workDir, path: git.path, snapshot, agent, appliedRevision: state.status.get(agent)?.appliedRevision ?? null });
    },
  };
}
