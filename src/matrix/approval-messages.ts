/** What approvers read in the policy room: the request, its reminder, its outcome. Pure. */
import type { ApprovalRequest } from "../store/approval-store.ts";
import { escapeHtml } from "./html.ts";

/** The namespaced content key of a request post (after Mjolnir/Draupnir): which request, bound to which change. */
export const APPROVAL_KEY = "dev.ruriko.approval";

const who = (r: ApprovalRequest) => (r.approvers.length > 0 ? r.approvers.join(", ") : "the local operator (ruriko approvals)");

export interface PostContent {
  body: string;
  html: string;
  extra: Record<string, unknown>;
}

export function requestMessage(r: ApprovalRequest): PostContent {
  const authors = r.authors.map((a) => a.email || a.name);
  const wrote = authors.length > 0 ? [`Written by ${authors.join(", ")}${r.excluded.length > 0 ? `; the approval of ${r.excluded.join(", ")} does not count on it` : ""}.`] : [];
  const lines = [
    `Approval needed ${r.id}: ${r.summary}`,
    `Approvers: ${who(r)}; ${r.quorum} needed; expires ${r.expiresAt}.`,
    ...wrote,
    `React ✅ to approve or ❌ to deny, or reply "approve ${r.id}" / "deny ${r.id} REASON".`,
  ];
  return {
    body: lines.join("\n"),
    html: [
      `<b>Approval needed</b> <code>${r.id}</code>: ${escapeHtml(r.summary)}`,
      `Approvers: ${escapeHtml(who(r))}; <b>${r.quorum}</b> needed; expires ${escapeHtml(r.expiresAt)}.`,
      ...wrote.map(escapeHtml),
      `React ✅ to approve or ❌ to deny, or reply <code>approve ${r.id}</code> / <code>deny ${r.id} REASON</code>.`,
    ].join("<br>"),
    extra: { [APPROVAL_KEY]: approvalKeyContent(r) },
  };
}

const approvalKeyContent = (r: ApprovalRequest) => ({ id: r.id, object: r.objectKey, operation: r.operation, from: r.fromDigest, to: r.toDigest, revision: r.revision, status: r.status });

/**
 * The outcome, as a reply to the request post: clients show it threaded under the request, with the request quoted.
 */
export function outcomeReply(r: ApprovalRequest, postEventId: string, text: string): PostContent {
  return { body: text, html: escapeHtml(text), extra: { "m.relates_to": { "m.in_reply_to": { event_id: postEventId } } } };
}

/**
 * An edit (m.replace) of the request post that states its outcome, so the request itself reads as decided and
 * nobody reacts to a closed request. The namespaced key is kept, with the new status.
 */
export function annotatedRequest(r: ApprovalRequest, postEventId: string, outcome: string): PostContent {
  const body = `[${r.status.toUpperCase()}] Approval ${r.id}: ${r.summary}\n${outcome}`;
  const html = `<b>[${escapeHtml(r.status.toUpperCase())}]</b> Approval <code>${r.id}</code>: ${escapeHtml(r.summary)}<br>${escapeHtml(outcome)}`;
  const key = { [APPROVAL_KEY]: approvalKeyContent(r) };
  return {
    body: `* ${body}`,
    html: `* ${html}`,
    extra: {
      ...key,
      "m.new_content": { msgtype: "m.notice", body, format: "org.matrix.custom.html", formatted_body: html, ...key },
      "m.relates_to": { rel_type: "m.replace", event_id: postEventId },
    },
  };
}

export function reminderMessage(r: ApprovalRequest): string {
  return `Reminder: approval ${r.id} expires at ${r.expiresAt}: ${r.summary}`;
}

/** Undefined for a status nobody needs told (pending). */
export function outcomeMessage(r: ApprovalRequest): string | undefined {
  switch (r.status) {
    case "approved":
      return `Approval ${r.id} approved by ${r.decidedBy ?? "?"}: ${r.summary}`;
    case "applied":
      // Claimed as the change starts: the status room says when it is done.
      return `Approval ${r.id} approved by ${r.decidedBy ?? "?"}; the change is carried out: ${r.summary}`;
    case "denied":
      return `Approval ${r.id} denied by ${r.decidedBy ?? "?"}${r.reason ? ` (${r.reason})` : ""}: ${r.summary}`;
    case "expired":
      return r.decidedBy
        ? `Approval ${r.id} expired: approved by ${r.decidedBy} but not carried out in time; nothing was applied: ${r.summary}`
        : `Approval ${r.id} expired without a decision: ${r.summary}`;
    case "superseded":
      return `Approval ${r.id} superseded: the planned change or the policy in force moved on, nothing was applied: ${r.summary}`;
    default:
      return undefined;
  }
}
