/**
 * What the status room is told, in words: pure functions from controller events to lines, and from lines
 * to one message (plain body and HTML). Deciding *when* to say it is status-reporter.ts's job.
 */
import type { SnapshotEvent } from "../controller/controller.ts";
import type { AppliedChange, StatusTransition } from "../controller/agent-reconciler.ts";
import { formatManifestError } from "../api/errors.ts";

export interface StatusLine {
  /** Lines with the same key repeat a fact (rate-limited); undefined never repeats. */
  key?: string;
  /** A recovery: clears the rate limit of earlier failures of the same agent. */
  clears?: string;
  text: string;
  traceId: string;
}

const FAILURE_REASONS = new Set(["ReconcileFailed", "GosutoRefused", "SecretMissing", "DriftReported", "ApprovalDenied", "ApprovalExpired", "MatrixUnavailable", "MatrixAccountFailed", "MatrixTokenMissing", "Degraded"]);
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
  }
}

export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** One line as itself; several as a counted list. The trace id goes last, for grepping logs. */
export function composeMessage(lines: readonly StatusLine[]): { body: string; html: string; traceId: string } {
  const traceId = lines[0]!.traceId;
  if (lines.length === 1) {
    return { body: `${lines[0]!.text} [trace ${traceId}]`, html: `${escapeHtml(lines[0]!.text)} <sub>trace ${escapeHtml(traceId)}</sub>`, traceId };
  }
  return {
    body: `${lines.length} changes:\n${lines.map((l) => `- ${l.text}`).join("\n")}\n[trace ${traceId}]`,
    html: `${lines.length} changes:<ul>${lines.map((l) => `<li>${escapeHtml(l.text)}</li>`).join("")}</ul><sub>trace ${escapeHtml(traceId)}</sub>`,
    traceId,
  };
}
