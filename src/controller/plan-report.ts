/**
 * `ruriko plan`: what `serve` would do now, with reasons and which actions need approval. Pure: the
 * caller observes the engine and reads the stores.
 */
import { objectKey } from "../api/kinds.ts";
import { objectsOfKind, type Snapshot } from "../api/snapshot.ts";
import type { AgentManifest } from "../api/generated/types.ts";
import { evaluateGate, type GateDecision } from "../approvals/policy.ts";
import type { ObservedContainer } from "../runtime/runtime.ts";
import type { ApprovalRequest } from "../store/approval-store.ts";
import type { InventoryEntry } from "../store/inventory-store.ts";
import { containerSpecFor } from "./container-spec.ts";
import { planAgent, type Action } from "./planner.ts";

export interface PlannedItem {
  agent: string;
  action: Action["type"];
  operation: string;
  reason: string;
  drift: boolean;
  approval: GateDecision;
  /** An existing request for exactly this change, if any. */
  request?: Pick<ApprovalRequest, "id" | "status">;
}

export interface PlanReport {
  revision: string;
  items: PlannedItem[];
  reported: Array<{ agent: string; message: string }>;
  errors: string[];
}

export function buildPlan(input: {
  snapshot: Snapshot;
  observed: readonly ObservedContainer[];
  inventory: readonly InventoryEntry[];
  findRequest?: (agent: string, operation: string, from: string, to: string) => ApprovalRequest | undefined;
}): PlanReport {
  const { snapshot } = input;
  const policies = objectsOfKind(snapshot, "ApprovalPolicy").map((o) => o.object);
  const names = new Set<string>([...objectsOfKind(snapshot, "Agent").map((a) => a.name), ...input.inventory.map((e) => e.agent), ...input.observed.map((c) => c.agent)]);
  const report: PlanReport = { revision: snapshot.revision, items: [], reported: [], errors: [] };
  for (const agent of [...names].sort()) {
    const manifest = snapshot.objects.get(objectKey("Agent", agent))?.object as AgentManifest | undefined;
    const inventory = input.inventory.find((e) => e.agent === agent);
    const plan = planAgent({
      agent,
      observed: input.observed.filter((c) => c.agent === agent),
      ...(inventory ? { inventory } : {}),
      ...(manifest ? { desired: { manifest, spec: containerSpecFor(manifest, snapshot.revision) } } : {}),
    });
    report.reported.push(...plan.reported);
    for (const action of plan.actions) {
      const approval = evaluateGate(
        { kind: "Agent", name: agent, operation: action.operation, fields: action.fields, drift: action.drift, driftMode: manifest?.spec.drift ?? "heal" },
        policies,
      );
      const request = approval.required ? input.findRequest?.(agent, action.operation, action.fromDigest, action.toDigest) : undefined;
      report.items.push({
        agent,
        action: action.type,
        operation: action.operation,
        reason: action.reason,
        drift: action.drift,
        approval,
        ...(request ? { request: { id: request.id, status: request.status } } : {}),
      });
    }
  }
  return report;
}

function approvalText(item: PlannedItem): string {
  if (!item.approval.required) return "no";
  const who = item.approval.approvers.length > 0 ? `${item.approval.quorum} of ${item.approval.approvers.join(", ")}` : "the local operator";
  const request = item.request ? ` [request ${item.request.id}: ${item.request.status}]` : "";
  return `yes (${who}; ${item.approval.why})${request}`;
}

export function renderPlanText(report: PlanReport): string {
  const lines = [`Plan for revision ${report.revision}:`];
  if (report.items.length === 0 && report.reported.length === 0) lines.push("  nothing to do: everything is converged");
  for (const item of report.items) {
    lines.push(`  ${item.action.padEnd(8)} ${item.agent}: ${item.reason}${item.drift ? " (drift)" : ""}`);
    if (item.approval.required) lines.push(`           needs approval: ${approvalText(item)}`);
  }
  for (const r of report.reported) lines.push(`  report   ${r.agent}: ${r.message} (drift: report, nothing will be done)`);
  const gated = report.items.filter((i) => i.approval.required).length;
  lines.push(`${report.items.length} action(s), ${gated} needing approval.`);
  return lines.join("\n") + "\n";
}

export function renderPlanMarkdown(report: PlanReport): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const lines = [`### Ruriko plan for \`${report.revision}\``, ""];
  if (report.items.length === 0 && report.reported.length === 0) {
    lines.push("Nothing to do: everything is converged.");
    return lines.join("\n") + "\n";
  }
  lines.push("| Agent | Action | Reason | Needs approval |", "|---|---|---|---|");
  for (const item of report.items) {
    lines.push(`| \`${item.agent}\` | ${item.action} | ${esc(item.reason)}${item.drift ? " (drift)" : ""} | ${item.approval.required ? `⚠️ ${esc(approvalText(item))}` : "no"} |`);
  }
  for (const r of report.reported) lines.push(`| \`${r.agent}\` | report | ${esc(r.message)} | no (drift: report) |`);
  const gated = report.items.filter((i) => i.approval.required).length;
  lines.push("", `**${report.items.length}** action(s), **${gated}** needing approval.`);
  return lines.join("\n") + "\n";
}
