import { userInfo } from "node:os";
import { newTraceId } from "../observability/logger.ts";
import type { ApprovalRequest, ApprovalStatus } from "../store/approval-store.ts";
import { openState } from "../store/state.ts";

export type Output = "text" | "json";

/** The local operator, as recorded in the audit log. */
export function localActor(): string {
  return `cli:${process.env.SUDO_USER ?? userInfo().username}`;
}

function line(r: ApprovalRequest): string {
  return `${r.id}  ${r.status.padEnd(10)}  ${r.summary}  (quorum ${r.quorum}; expires ${r.expiresAt})`;
}

export function approvalsList(stateDir: string, opts: { output: Output; status?: ApprovalStatus; all?: boolean }): number {
  const state = openState(stateDir);
  try {
    const list = state.approvals.list(opts.all ? {} : { status: opts.status ?? "pending" });
    if (opts.output === "json") console.log(JSON.stringify(list, null, 2));
    else if (list.length === 0) console.log(opts.all ? "no approval requests" : `no ${opts.status ?? "pending"} approval requests`);
    else for (const r of list) console.log(line(r));
    return 0;
  } finally {
    state.close();
  }
}

export function approvalsShow(stateDir: string, id: string, opts: { output: Output }): number {
  const state = openState(stateDir);
  try {
    const r = state.approvals.resolve(id);
    if (!r) {
      console.error(`no approval request ${id}`);
      return 1;
    }
    const votes = state.approvals.votes(r.id);
    if (opts.output === "json") {
      console.log(JSON.stringify({ ...r, votes }, null, 2));
      return 0;
    }
    console.log(
      [
        `request   ${r.id}`,
        `status    ${r.status}${r.decidedBy ? ` (by ${r.decidedBy} at ${r.decidedAt})` : ""}${r.reason ? `: ${r.reason}` : ""}`,
        `change    ${r.summary}`,
        `operation ${r.operation} on ${r.objectKey}`,
        `from      ${r.fromDigest}`,
        `to        ${r.toDigest}`,
        `revision  ${r.revision}`,
        `policy    ${r.policy ?? "(none: local operator only)"}${r.room ? ` in ${r.room}` : ""}`,
        `approvers ${r.approvers.length > 0 ? r.approvers.join(", ") : "(local operator)"}; quorum ${r.quorum}`,
        `created   ${r.createdAt}; expires ${r.expiresAt}`,
        ...(r.authors.length > 0 ? [`authors   ${r.authors.map((a) => `${a.name} <${a.email}>`).join(", ")}${r.excluded.length > 0 ? ` (their approval does not count: ${r.excluded.join(", ")})` : ""}`] : []),
        `trace     ${r.traceId}`,
        ...votes.map((v) => `vote      ${v.approver} ${v.decision} via ${v.source} at ${v.at}`),
      ].join("\n"),
    );
    return 0;
  } finally {
    state.close();
  }
}

/** The break-glass path: a local decision is final at once, and audited with the local actor. */
export function approvalsDecide(stateDir: string, id: string, decision: "approve" | "deny", opts: { reason?: string }): number {
  const state = openState(stateDir);
  try {
    const request = state.approvals.resolve(id);
    if (!request) {
      console.error(`no approval request ${id}`);
      return 1;
    }
    const actor = localActor();
    const result = state.approvals.vote(request.id, { approver: actor, decision, source: "cli", override: true, ...(opts.reason ? { reason: opts.reason } : {}) });
    const traceId = request.traceId || newTraceId();
    if (result.outcome === "ignored") {
      state.audit.append({ traceId, actor, action: `approval.${decision}`, target: `approval/${request.id}`, payload: { ignored: result.reason }, result: "refused" });
      console.error(`approval ${request.id} not ${decision === "approve" ? "approved" : "denied"}: ${result.reason === "not-pending" ? `it is already ${result.request?.status}` : result.reason}`);
      return 1;
    }
    state.audit.append({
      traceId,
      actor,
      action: `approval.${decision === "approve" ? "approved" : "denied"}`,
      target: `approval/${request.id}`,
      payload: { agent: request.agent, summary: request.summary, source: "cli", ...(opts.reason ? { reason: opts.reason } : {}) },
      result: "ok",
    });
    console.log(`${request.id} ${decision === "approve" ? "approved" : "denied"} by ${actor}: ${request.summary}`);
    return 0;
  } finally {
    state.close();
  }
}
