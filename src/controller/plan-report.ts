/**
 * `ruriko plan` and `/ruriko plan`: what `serve` would do now — the same planner, the same gate — with the
 * reason for each change, whether it needs approval and from whom, and the request it waits on. Pure: the
 * caller observes the engine and reads the stores.
 */
import { objectsOfKind, type Snapshot } from "../api/snapshot.ts";
import type { ProposedChange, Verdict } from "../approvals/gate.ts";
import type { GateDecision } from "../approvals/policy.ts";
import type { AgentNetworkMode, ObservedContainer } from "../runtime/runtime.ts";
import type { AppliedConfig } from "../store/applied-config-store.ts";
import type { ApprovalRequest } from "../store/approval-store.ts";
import type { InventoryEntry } from "../store/inventory-store.ts";
import type { PolicyInForce } from "../store/policy-store.ts";
import { desiredAgentOf } from "./agent-config.ts";
import { isNamedNetwork } from "./agent-network.ts";
import { proposalOf } from "./changes.ts";
import { containerSpecFor, expectedHostPort } from "./container-spec.ts";
import type { ImageObservation } from "./image-move.ts";
import { planAgent } from "./planner.ts";
import { desiredPolicyOf, planPolicy } from "./policy-reconciler.ts";

export interface PlannedItem {
  /** The agent the change is for; "" for a change of no agent (an ApprovalPolicy). */
  agent: string;
  /** create, recreate, start, stop, remove (the container); gosuto, grant, revoke, identity (inside the agent); policy. */
  action: string;
  operation: string;
  reason: string;
  drift: boolean;
  approval: GateDecision;
  /** The request it waits on (or was approved by, or refused by). */
  request?: Pick<ApprovalRequest, "id" | "status">;
  /** The object changed, e.g. `Gosuto/newsbot`, and what it goes from and to. */
  object: string;
  fromDigest: string;
  toDigest: string;
  fields: string[];
  /** run now, park (waits for people), block (denied or expired, not proposed again). */
  verdict: Verdict["verdict"];
}

export interface PlanReport {
  revision: string;
  items: PlannedItem[];
  reported: Array<{ agent: string; message: string }>;
  errors: string[];
  /** The revision's policies would be put in force as they are (a first start). */
  bootstrap?: boolean;
}

export interface PlanInputs {
  snapshot: Snapshot;
  observed: readonly ObservedContainer[];
  inventory: readonly InventoryEntry[];
  applied: (agent: string) => AppliedConfig;
  matrixAccount: (agent: string) => { state: string; userId: string | null } | undefined;
  /** The policies in force; undefined before any was put in force (the snapshot's then would be). */
  policiesInForce: readonly Pick<PolicyInForce, "name" | "manifest" | "digest">[] | undefined;
  /** The gate's verdicts, given the policies in force (Gatekeeper.preview). */
  preview: (changes: readonly ProposedChange[]) => Verdict[];
  /** How serve networks agents (default bridge); in host mode each agent's port is the one serve would give it. */
  agentNetwork?: AgentNetworkMode;
  /** Agents whose image's tag moved, as the engine resolves it now (image-observer.ts imageMovesFor). */
  imageMoves?: ReadonlyMap<string, ImageObservation>;
}

export function buildPlan(input: PlanInputs): PlanReport {
  const { snapshot } = input;
  const report: PlanReport = { revision: snapshot.revision, items: [], reported: [], errors: [], ...(input.policiesInForce ? {} : { bootstrap: true }) };
  const names = new Set<string>([...objectsOfKind(snapshot, "Agent").map((a) => a.name), ...input.inventory.map((e) => e.agent), ...input.observed.map((c) => c.agent)]);
  const inventoryOf = new Map(input.inventory.map((e) => [e.agent, e]));
  const observedOf = Map.groupBy(input.observed, (c) => c.agent);
  for (const agent of [...names].sort()) {
    let desired = desiredAgentOf(snapshot, agent, input.matrixAccount(agent));
    if (desired && input.agentNetwork === "host") {
      desired = { ...desired, spec: containerSpecFor(desired.manifest, snapshot.revision, { network: "host", port: expectedHostPort(agent, input.inventory) }) };
    } else if (desired && isNamedNetwork(input.agentNetwork)) {
      desired = { ...desired, spec: containerSpecFor(desired.manifest, snapshot.revision, { network: input.agentNetwork }) };
    }
    const inventory = inventoryOf.get(agent);
    const image = input.imageMoves?.get(agent);
    const plan = planAgent({ agent, observed: observedOf.get(agent) ?? [], ...(inventory ? { inventory } : {}), applied: input.applied(agent), desired, ...(image ? { image } : {}) });
    report.reported.push(...plan.reported);
    // Deferred changes come after this pass's, as serve makes them: listed in their place, said to wait.
    const changes = [...plan.changes, ...plan.deferred];
    const proposals = changes.map((c) => proposalOf(c, desired?.manifest.spec.drift ?? "heal"));
    input.preview(proposals).forEach((verdict, i) => {
      const change = changes[i]!;
      const reason = i < plan.changes.length ? change.reason : `${change.reason} (next, once the change above is made)`;
      report.items.push(item(agent, change.type, reason, change.drift, proposals[i]!, verdict));
    });
  }
  if (input.policiesInForce) {
    const inForce = input.policiesInForce;
    const policyNames = [...new Set([...objectsOfKind(snapshot, "ApprovalPolicy").map((p) => p.name), ...inForce.map((p) => p.name)])].sort();
    for (const name of policyNames) {
      const change = planPolicy(name, desiredPolicyOf(snapshot, name), inForce.find((p) => p.name === name));
      if (change) report.items.push(item("", "policy", change.reason, false, change, input.preview([change])[0]!));
    }
  }
  return report;
}

function item(agent: string, action: string, reason: string, drift: boolean, proposal: ProposedChange, verdict: Verdict): PlannedItem {
  const request = verdict.verdict === "run" ? verdict.approval : verdict.request;
  return {
    agent,
    action,
    operation: proposal.binding.operation,
    reason,
    drift,
    approval: verdict.requirement,
    ...(request ? { request: { id: request.id, status: request.status } } : {}),
    object: proposal.binding.objectKey,
    fromDigest: proposal.binding.fromDigest,
    toDigest: proposal.binding.toDigest,
    fields: [...proposal.subject.fields],
    verdict: verdict.verdict,
  };
}

function approvalText(item: PlannedItem): string {
  if (!item.approval.required) return "no";
  const who = item.approval.approvers.length > 0 ? `${item.approval.quorum} of ${item.approval.approvers.join(", ")}` : "the local operator";
  const request = item.request ? ` [request ${item.request.id}: ${item.request.status}]` : " [a request will be made]";
  return `yes (${who}; ${item.approval.why})${request}`;
}

const subjectOf = (item: PlannedItem) => (item.agent ? `${item.agent}` : item.object);
const detailOf = (item: PlannedItem) => (item.agent && item.object !== `Agent/${item.agent}` ? `${item.object}: ${item.reason}` : item.reason);

export function renderPlanText(report: PlanReport): string {
  const lines = [`Plan for revision ${report.revision}:`];
  if (report.bootstrap) lines.push("  (first start: the revision's approval policies are put in force as they are)");
  if (report.items.length === 0 && report.reported.length === 0) lines.push("  nothing to do: everything is converged");
  for (const item of report.items) {
    lines.push(`  ${item.action.padEnd(8)} ${subjectOf(item)}: ${detailOf(item)}${item.drift ? " (drift)" : ""}`);
    if (item.approval.required) lines.push(`           needs approval: ${approvalText(item)}`);
  }
  for (const r of report.reported) lines.push(`  report   ${r.agent}: ${r.message} (drift: report, nothing will be done)`);
  const gated = report.items.filter((i) => i.approval.required).length;
  lines.push(`${report.items.length} change(s), ${gated} needing approval.`);
  return lines.join("\n") + "\n";
}

export function renderPlanMarkdown(report: PlanReport): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const lines = [`### Ruriko plan for \`${report.revision}\``, ""];
  if (report.bootstrap) lines.push("_First start: the revision's approval policies are put in force as they are._", "");
  if (report.items.length === 0 && report.reported.length === 0) {
    lines.push("Nothing to do: everything is converged.");
    return lines.join("\n") + "\n";
  }
  lines.push("| Agent | Change | Reason | Needs approval |", "|---|---|---|---|");
  for (const item of report.items) {
    lines.push(`| \`${subjectOf(item)}\` | ${item.action} | ${esc(detailOf(item))}${item.drift ? " (drift)" : ""} | ${item.approval.required ? `⚠️ ${esc(approvalText(item))}` : "no"} |`);
  }
  for (const r of report.reported) lines.push(`| \`${r.agent}\` | report | ${esc(r.message)} | no (drift: report) |`);
  const gated = report.items.filter((i) => i.approval.required).length;
  lines.push("", `**${report.items.length}** change(s), **${gated}** needing approval.`);
  return lines.join("\n") + "\n";
}
