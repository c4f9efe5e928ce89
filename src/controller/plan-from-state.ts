import { objectsOfKind, type Snapshot } from "../api/snapshot.ts";
import { verdictsFor } from "../approvals/gate.ts";
import type { ObservedContainer } from "../runtime/runtime.ts";
import type { StateStores } from "../store/state.ts";
import { recordedAgentNetwork } from "./agent-network.ts";
import { AGENT_NETWORK_META } from "./container-spec.ts";
import type { ImageObservation } from "./image-move.ts";
import { buildPlan, type PlanReport } from "./plan-report.ts";

const NOTHING_APPLIED = { gosuto: null, matrixUserId: null, grants: [] };

/**
 * The plan as `serve` would act on it now, from a state database — or from none: a first start, where the
 * revision's own policies would be put in force before anything else.
 */
export function planFromState(snapshot: Snapshot, observed: readonly ObservedContainer[], state: StateStores | undefined, imageMoves?: ReadonlyMap<string, ImageObservation>): PlanReport {
  const inForce = state?.policies.bootstrapped() ? state.policies.list() : undefined;
  const policies = inForce ? inForce.map((p) => p.manifest) : objectsOfKind(snapshot, "ApprovalPolicy").map((p) => p.object);
  return buildPlan({
    snapshot,
    observed,
    inventory: state?.inventory.list() ?? [],
    applied: (agent) => state?.appliedConfig.get(agent) ?? NOTHING_APPLIED,
    matrixAccount: (agent) => state?.matrixAccounts.current(agent),
    policiesInForce: inForce,
    preview: (changes) => verdictsFor(changes, policies, (binding) => state?.approvals.forChange(binding) ?? []),
    agentNetwork: recordedAgentNetwork(state?.meta.get(AGENT_NETWORK_META)),
    ...(imageMoves ? { imageMoves } : {}),
  });
}
