import { formatManifestError } from "../api/errors.ts";
import type { AgentStatusStore } from "../store/agent-status-store.ts";
import type { ApprovalStore } from "../store/approval-store.ts";
import type { RevisionStore } from "../store/revision-store.ts";
import { summarizeRuntime } from "./agent-health.ts";
import { phaseOf } from "./conditions.ts";

export interface StatusReportSources {
  status: AgentStatusStore;
  approvals: ApprovalStore;
  revisions: RevisionStore;
  instance: string;
}

/**
 * The status of the whole installation as one JSON document: what `ruriko status --output json` prints
 * and what `GET /api/v1/status` serves. Built from the state database only, so the CLI can read it while
 * `serve` runs.
 */
export function buildStatusReport(sources: StatusReportSources) {
  const latest = sources.revisions.latest();
  const applied = sources.revisions.latestApplied();
  const rejected = latest && latest.outcome === "rejected" ? latest : undefined;
  return {
    instance: sources.instance,
    source: {
      appliedRevision: applied?.revision ?? null,
      appliedAt: applied?.receivedAt ?? null,
      rejectedRevision: rejected?.revision ?? null,
      errors: rejected ? rejected.errors.map((e) => ({ ...e, text: formatManifestError(e) })) : [],
    },
    agents: sources.status.list().map((s) => ({
      name: s.agent,
      phase: phaseOf(s.conditions),
      conditions: s.conditions,
      observedRevision: s.observedRevision,
      appliedRevision: s.appliedRevision,
      container: s.containerId ? { id: s.containerId.slice(0, 12), state: s.containerState } : null,
      // What the agent itself reported over ACP (digests only: names and versions, never values)…
      agent: { gosutoDigest: s.gosutoDigest, secretsDigest: s.secretsDigest },
      // …and how its own parts are doing: Matrix, model, MCP servers, counters (null before it answered).
      runtime: s.runtime,
      lastError: s.lastError,
      failures: s.failures,
      updatedAt: s.updatedAt,
    })),
    approvals: sources.approvals.list({ status: "pending" }).map((r) => ({
      id: r.id,
      agent: r.agent,
      operation: r.operation,
      summary: r.summary,
      quorum: r.quorum,
      approvers: r.approvers,
      expiresAt: r.expiresAt,
    })),
  };
}

export type StatusReport = ReturnType<typeof buildStatusReport>;

export function renderStatusTable(report: StatusReport): string {
  const lines: string[] = [];
  lines.push(`instance ${report.instance}; applied revision ${report.source.appliedRevision ?? "(none yet)"}`);
  if (report.source.rejectedRevision) {
    lines.push(`revision ${report.source.rejectedRevision} was REFUSED (${report.source.errors.length} errors); the applied revision stays in force:`);
    for (const e of report.source.errors.slice(0, 20)) lines.push(`  ${e.text}`);
    if (report.source.errors.length > 20) lines.push(`  … and ${report.source.errors.length - 20} more`);
  }
  const rows = [["AGENT", "PHASE", "CONTAINER", "REVISION", "INSIDE", "MESSAGE"]];
  for (const a of report.agents) {
    const ready = a.conditions.find((c) => c.type === "Ready");
    const message = a.lastError ?? (ready?.status === "True" ? "" : (ready?.message ?? ""));
    rows.push([a.name, a.phase, a.container?.state ?? "-", shortRevision(a.appliedRevision), a.runtime ? summarizeRuntime(a.runtime) : "-", message]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const row of rows) lines.push(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd());
  if (report.agents.length === 0) lines.push("(no agents)");
  if (report.approvals.length > 0) {
    lines.push("", `${report.approvals.length} pending approval(s):`);
    for (const r of report.approvals) lines.push(`  ${r.id}  ${r.summary}  (quorum ${r.quorum}, expires ${r.expiresAt})`);
  }
  return lines.join("\n") + "\n";
}

function shortRevision(revision: string | null): string {
  if (!revision) return "-";
  return revision.startsWith("sha256:") ? revision.slice(7, 19) : revision.slice(0, 12);
}
