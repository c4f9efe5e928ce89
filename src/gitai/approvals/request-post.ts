/**
 * What approvers read in an agent's approval room: the request for one tool call, and its outcome. Pure. The
 * request carries a namespaced content key, as Ruriko's own requests do, so clients and bots can tell it from a
 * copy typed by someone else (only the agent's own post takes votes).
 */
import { escapeHtml } from "../../matrix/html.ts";

/** The namespaced content key of a tool-call request post. */
export const TOOL_APPROVAL_KEY = "dev.ruriko.tool_approval";

/** Arguments shown to approvers are cut here: enough to judge, not a wall of text. */
const MAX_ARGS_CHARS = 1500;

export interface ToolApprovalRequest {
  id: string;
  agent: string;
  mcp: string;
  tool: string;
  rule: string;
  /** The arguments as approvers see them: secrets redacted, cut to a readable length. */
  argsShown: string;
  argsDigest: string;
  /** Who asked: a Matrix user id, or `schedule:NAME` for a scheduled run. */
  askedBy: string;
  /** The conversation the call belongs to. */
  room: string;
  approvers: readonly string[];
  expiresAt: string;
}

export type ToolApprovalStatus = "pending" | "approved" | "denied" | "expired" | "cancelled";

export interface PostContent {
  msgtype: "m.notice";
  body: string;
  format: "org.matrix.custom.html";
  formatted_body: string;
  [key: string]: unknown;
}

/** The call's arguments as approvers may see them: every secret value the agent holds replaced, then cut. */
export function shownArguments(args: Record<string, unknown>, secretValues: readonly string[]): string {
  let text = JSON.stringify(args);
  // Longest first, so a secret that contains another is redacted whole. Very short values would redact ordinary text.
  for (const secret of [...secretValues].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length)) {
    text = text.split(secret).join("[redacted]");
    // The JSON-escaped form too (a secret with a quote or a backslash in it).
    const escaped = JSON.stringify(secret).slice(1, -1);
    if (escaped !== secret) text = text.split(escaped).join("[redacted]");
  }
  return text.length > MAX_ARGS_CHARS ? `${text.slice(0, MAX_ARGS_CHARS)}… (${text.length} characters)` : text;
}

const keyContent = (r: ToolApprovalRequest, status: ToolApprovalStatus) => ({ id: r.id, agent: r.agent, mcp: r.mcp, tool: r.tool, rule: r.rule, argsDigest: r.argsDigest, status });

export function requestPost(r: ToolApprovalRequest): PostContent {
  const lines = [
    `Tool approval needed ${r.id}: agent ${r.agent} wants to call ${r.mcp}.${r.tool} (rule ${r.rule}).`,
    `Arguments: ${r.argsShown}`,
    `Asked by ${r.askedBy} in ${r.room}.`,
    `Approvers: ${r.approvers.join(", ")}; expires ${r.expiresAt}. Whoever asked cannot approve it.`,
    `React ✅ to approve or ❌ to deny, or reply "approve ${r.id}" / "deny ${r.id} REASON".`,
  ];
  const html = [
    `<b>Tool approval needed</b> <code>${r.id}</code>: agent <b>${escapeHtml(r.agent)}</b> wants to call <code>${escapeHtml(`${r.mcp}.${r.tool}`)}</code> (rule ${escapeHtml(r.rule)}).`,
    `Arguments: <code>${escapeHtml(r.argsShown)}</code>`,
    `Asked by ${escapeHtml(r.askedBy)} in ${escapeHtml(r.room)}.`,
    `Approvers: ${escapeHtml(r.approvers.join(", "))}; expires ${escapeHtml(r.expiresAt)}. Whoever asked cannot approve it.`,
    `React ✅ to approve or ❌ to deny, or reply <code>approve ${r.id}</code> / <code>deny ${r.id} REASON</code>.`,
  ];
  return { msgtype: "m.notice", body: lines.join("\n"), format: "org.matrix.custom.html", formatted_body: html.join("<br>"), [TOOL_APPROVAL_KEY]: keyContent(r, "pending") };
}

/** One line saying how a request ended. */
export function outcomeText(r: ToolApprovalRequest, status: Exclude<ToolApprovalStatus, "pending">, by?: string, reason?: string): string {
  const call = `${r.mcp}.${r.tool}`;
  switch (status) {
    case "approved":
      return `Tool approval ${r.id} approved by ${by}: ${call} runs.`;
    case "denied":
      return `Tool approval ${r.id} denied by ${by}${reason ? ` (${reason})` : ""}: ${call} was not run.`;
    case "expired":
      return `Tool approval ${r.id} expired without a decision: ${call} was not run.`;
    case "cancelled":
      return `Tool approval ${r.id} cancelled${reason ? ` (${reason})` : ""}: ${call} was not run.`;
  }
}

/**
 * The request post edited (m.replace) to state its outcome, so nobody reacts to a closed request; the namespaced
 * key is kept, with the new status. Sent with a reply stating the same, which clients show under the request.
 */
export function decidedPost(r: ToolApprovalRequest, postEventId: string, status: Exclude<ToolApprovalStatus, "pending">, outcome: string): PostContent {
  const body = `[${status.toUpperCase()}] Tool approval ${r.id}: ${r.agent} → ${r.mcp}.${r.tool}\n${outcome}`;
  const html = `<b>[${status.toUpperCase()}]</b> Tool approval <code>${r.id}</code>: ${escapeHtml(`${r.agent} → ${r.mcp}.${r.tool}`)}<br>${escapeHtml(outcome)}`;
  const key = { [TOOL_APPROVAL_KEY]: keyContent(r, status) };
  return {
    msgtype: "m.notice",
    body: `* ${body}`,
    format: "org.matrix.custom.html",
    formatted_body: `* ${html}`,
    ...key,
    "m.new_content": { msgtype: "m.notice", body, format: "org.matrix.custom.html", formatted_body: html, ...key },
    "m.relates_to": { rel_type: "m.replace", event_id: postEventId },
  };
}

export function notice(text: string, inReplyTo?: string): PostContent {
  return { msgtype: "m.notice", body: text, format: "org.matrix.custom.html", formatted_body: escapeHtml(text), ...(inReplyTo ? { "m.relates_to": { "m.in_reply_to": { event_id: inReplyTo } } } : {}) };
}
