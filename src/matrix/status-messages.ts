/**
 * What the status room is told, in words: pure functions from controller events to lines, and from lines
 * to one message (plain body and HTML). Whether a line is said is status-reporter.ts's decision; which lines
 * go out together is outbox-deliverer.ts's, when it sends them.
 */
import { escapeHtml } from "./html.ts";
import type { SnapshotEvent } from "../controller/controller.ts";
import type { AppliedChange, StatusTransition } from "../controller/agent-reconciler.ts";
import { formatManifestError } from "../api/errors.ts";
import type { AcpEvent } from "../api/generated/types.ts";

export interface StatusLine {
  /** Lines with the same key repeat a fact (rate-limited); undefined never repeats. */
  key?: string;
  /** A recovery: clears the rate limit of earlier failures of the same agent. */
  clears?: string;
  text: string;
  traceId: string;
  /** Coalesced with lines of other traces, it still names its own (an agent's decision: its turn's trace). */
  ownTrace?: boolean;
}

const FAILURE_REASONS = new Set(["ReconcileFailed", "ImageMissing", "ImagePullFailed", "GosutoRefused", "SecretMissing", "DriftReported", "ApprovalDenied", "ApprovalExpired", "MatrixUnavailable", "MatrixAccountFailed", "MatrixTokenMissing", "Degraded"]);
const short = (revision: string) => revision.replace(/^sha256:/, "").slice(0, 12);

export function describeSnapshot(event: SnapshotEvent): StatusLine {
  const revision = short(event.snapshot.revision);
  if (event.outcome === "applied") {
    return { text: `revision ${revision} applied (${event.snapshot.objects.size} objects)`, traceId: event.traceId };
  }
  const [first] = event.errors;
  const more = event.errors.length > 1 ? ` (and ${event.errors.length - 1} more)` : "";
  return {
    key: `revision-refused|${event.snapshot.revision}`,
    text: `revision ${revision} refused, nothing changed: ${first ? formatManifestError(first) : "invalid"}${more}`,
    traceId: event.traceId,
  };
}

/** Undefined for transitions nobody needs to hear about (progress, retries that are not yet failures). */
export function describeTransition(t: StatusTransition): StatusLine | undefined {
  const { agent, condition, previous } = t;
  if (condition.type === "Ready" && condition.status === "True") {
    const recovered = previous && previous.status === "False" && FAILURE_REASONS.has(previous.reason);
    return { clears: agent, text: `${agent} is Ready${recovered ? ` again (was ${previous.reason})` : ""}`, traceId: t.traceId };
  }
  if (condition.type === "Stalled" && condition.status === "True") {
    return { key: `${agent}|Stalled|${condition.reason}`, text: `${agent} is Stalled (${condition.reason}): ${condition.message}`, traceId: t.traceId };
  }
  if (condition.type === "Ready" && condition.status === "False" && FAILURE_REASONS.has(condition.reason)) {
    return { key: `${agent}|NotReady|${condition.reason}`, text: `${agent} is not Ready (${condition.reason}): ${condition.message}`, traceId: t.traceId };
  }
  return undefined;
}

const PAST: Record<Extract<AppliedChange, { what: "container" }>["action"], string> = {
  create: "created",
  recreate: "recreated",
  start: "started",
  stop: "stopped",
  remove: "removed",
};

/** "container exited with code 137: start" → "container exited with code 137": the verb is said apart. */
const why = (reason: string) => reason.replace(/: (create|recreate|recreate as applied|start|stop|remove)$/, "");

/**
 * What Ruriko did, in words: these lines, coalesced with the revision that caused them, are the summary
 * of a revision's actions. A repaired drift is told as healed, once per window (a crash loop is one story).
 */
export function describeChange(change: AppliedChange): StatusLine {
  const { agent, traceId } = change;
  switch (change.what) {
    case "container": {
      const approved = change.approval ? `, approval ${change.approval}` : "";
      if (change.drift) return { key: `${agent}|healed`, text: `${agent} healed after drift: ${PAST[change.action]} (${why(change.reason)}${approved})`, traceId };
      return { text: `${PAST[change.action]} ${agent} (${why(change.reason)}${approved})`, traceId };
    }
    case "gosuto":
      return { text: `${agent}: Gosuto ${change.gosuto} applied (${short(change.digest)})`, traceId };
    case "secrets": {
      const held = change.delivered.length > 0 ? change.delivered.map((d) => `${d.name} v${d.version}`).join(", ") : "none";
      const revoked = change.revoked.length > 0 ? `; revoked ${change.revoked.join(", ")}` : "";
      return { text: `${agent}: secrets updated, holds ${held}${revoked}`, traceId };
    }
    case "decision":
      return describeDecision(agent, change.event);
  }
}

/** An agent's own words, made safe for one line: no control characters, bounded. */
const said = (text: string | undefined, max = 120): string => {
  const one = (text ?? "").replace(/\p{Cc}+/gu, " ").trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
};

/**
 * A decision an agent reported (a denial, an approval waited for or decided, a limit), in words, under the
 * agent's own trace id. Repeats of the same denial or limit are said once per window: a model that keeps
 * trying the same refused tool fills the audit log, not the room.
 */
export function describeDecision(agent: string, e: AcpEvent): StatusLine {
  const tool = e.tool ? `tool ${said(e.mcp ? `${e.mcp}.${e.tool}` : e.tool)}` : "a tool call";
  const approval = e.approval ? ` (approval ${said(e.approval, 40)})` : "";
  const by = e.sender ? ` by ${said(e.sender, 80)}` : "";
  const line = (text: string, key?: string): StatusLine => ({ ...(key ? { key } : {}), text, traceId: e.traceId, ownTrace: true });
  switch (e.kind) {
    case "tool.denied":
      return line(`${agent}: ${tool} denied by policy (${e.rule ? `rule ${said(e.rule, 80)}` : "no rule allows it"})`, `${agent}|denied|${tool}|${e.rule ?? ""}`);
    case "tool.waiting":
      return line(`${agent}: ${tool} waits for approval${approval}`);
    case "tool.approved":
      return line(`${agent}: ${tool} approved${by}${approval}`);
    case "tool.rejected":
      return line(`${agent}: ${tool} rejected${by}${e.reason ? ` (${said(e.reason, 40)})` : ""}${approval}`);
    case "tool.expired":
      return line(`${agent}: ${tool} not run: its approval expired${approval}`);
    case "limit.reached":
      return line(`${agent}: limit ${said(e.limit, 80) || "(unnamed)"} reached`, `${agent}|limit|${e.limit ?? ""}`);
    default:
      return line(`${agent}: ${e.kind}${e.tool ? ` (${tool})` : ""}`);
  }
}


/**
 * One line as itself; several as a counted list. The trace id goes last, for grepping logs; an agent's decision
 * coalesced with lines of another trace names its own.
 */
export function composeMessage(lines: readonly StatusLine[]): { body: string; html: string; traceId: string } {
  const traceId = lines[0]!.traceId;
  if (lines.length === 1) {
    return { body: `${lines[0]!.text} [trace ${traceId}]`, html: `${escapeHtml(lines[0]!.text)} <sub>trace ${escapeHtml(traceId)}</sub>`, traceId };
  }
  const own = (l: StatusLine) => (l.ownTrace && l.traceId !== traceId ? ` [trace ${l.traceId}]` : "");
  return {
    body: `${lines.length} changes:\n${lines.map((l) => `- ${l.text}${own(l)}`).join("\n")}\n[trace ${traceId}]`,
    html: `${lines.length} changes:<ul>${lines.map((l) => `<li>${escapeHtml(`${l.text}${own(l)}`)}</li>`).join("")}</ul><sub>trace ${escapeHtml(traceId)}</sub>`,
    traceId,
  };
}
