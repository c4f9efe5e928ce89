/**
 * An agent's status as a function of its previous status and what one reconcile found and did (kstatus
 * conditions: Ready, Reconciling, Stalled, AwaitingApproval). Pure: the reconciler writes it once, at the end.
 */
import type { ObservedContainer } from "../runtime/runtime.ts";
import type { AgentRuntime, AgentStatus, Condition } from "../store/agent-status-store.ts";
import type { ApprovalRequest } from "../store/approval-store.ts";
import type { MatrixProblem } from "./agent-config.ts";
import { problemsOf } from "./agent-health.ts";
import { conditionOf, setCondition } from "./conditions.ts";
import type { Change } from "./changes.ts";

/** What a running agent told over ACP: what it holds and how its parts are doing. */
export interface AgentReport {
  gosutoDigest: string | null;
  secretsDigest: string | null;
  runtime?: AgentRuntime;
}

/** What one reconcile of an agent found and did. */
export interface AgentOutcome {
  /** Changes carried out. */
  executed: Change[];
  /** Waiting for people. */
  parked: ApprovalRequest[];
  /** Denied or expired, not proposed again since. */
  blocked: ApprovalRequest[];
  /** Drift left alone (drift: report). */
  reported: string[];
  /** Things under way that need time (a crash-loop backoff, an agent booting). */
  waiting: string[];
  /** When to look again for what is waiting. */
  requeueAfterMs?: number;
  /** Everything planned was carried out, and the agent holds what it should (as far as it answered). */
  converged: boolean;
  observed?: ObservedContainer;
  /** What the agent holds, as it reported (or as just pushed). */
  agentReport?: AgentReport;
  /** The agent refused its Gosuto: its own words. */
  refused?: string;
  /** Granted secrets that are not in the store. */
  missingSecrets: string[];
  matrixProblem?: MatrixProblem;
  /** The reconcile failed; `terminal` failures (an image not on the host) are not retried until something changes. */
  error?: { message: string; terminal: boolean; reason?: string };
}

export interface StatusContext {
  agent: string;
  /** The revision in force. */
  revision: string;
  now: string;
  /** Consecutive failures after which the agent is Stalled (retries go on, backed off). */
  stallAfterFailures: number;
}

export function emptyOutcome(): AgentOutcome {
  return { executed: [], parked: [], blocked: [], reported: [], waiting: [], converged: false, missingSecrets: [] };
}

const whoApproves = (r: ApprovalRequest) => (r.approvers.length > 0 ? r.approvers.join(", ") : "the local operator");

export function nextAgentStatus(previous: AgentStatus | undefined, outcome: AgentOutcome, ctx: StatusContext): AgentStatus {
  let conditions = previous?.conditions ?? [];
  const set = (type: Condition["type"], status: Condition["status"], reason: string, message: string) => {
    conditions = setCondition(conditions, type, status, reason, message, ctx.now);
  };
  let failures = 0;
  let appliedRevision = previous?.appliedRevision ?? null;
  let appliedSpecDigest = previous?.appliedSpecDigest ?? null;
  const { error } = outcome;
  if (error) {
    failures = (previous?.failures ?? 0) + 1;
    const stalled = error.terminal || failures >= ctx.stallAfterFailures;
    // An image that cannot be had says so in Ready's own reason (ImageMissing, ImagePullFailed): the first thing read.
    set("Ready", "False", error.reason ?? "ReconcileFailed", error.message);
    if (error.terminal) {
      set("Reconciling", "False", "Stalled", "retried on the next revision or resync");
      set("Stalled", "True", error.reason ?? "TerminalError", error.message);
    } else {
      set("Reconciling", stalled ? "False" : "True", stalled ? "Stalled" : "RetryingAfterFailure", `attempt ${failures} failed; retrying with backoff`);
      set("Stalled", stalled ? "True" : "False", stalled ? "RepeatedFailure" : "Progressing", stalled ? `${failures} consecutive failures; last: ${error.message}` : "");
    }
  } else {
    const awaiting = outcome.parked.length > 0;
    set(
      "AwaitingApproval",
      awaiting ? "True" : "False",
      awaiting ? "ApprovalRequired" : "NoPendingApproval",
      outcome.parked.map((r) => `approval ${r.id}: ${r.summary} (${r.quorum} of ${whoApproves(r)}, expires ${r.expiresAt})`).join("; "),
    );
    set("Stalled", outcome.refused ? "True" : "False", outcome.refused ? "GosutoRefused" : "Progressing", outcome.refused ? `the agent refused its Gosuto: ${outcome.refused}` : "");
    if (outcome.refused) {
      set("Ready", "False", "GosutoRefused", `the agent refused its Gosuto (the previous config stays in force): ${outcome.refused}`);
      set("Reconciling", "False", "Stalled", "fix the Gosuto in the manifests");
    } else if (outcome.converged && outcome.blocked.length === 0 && outcome.reported.length === 0 && !awaiting && outcome.missingSecrets.length === 0 && !outcome.matrixProblem) {
      const c = outcome.observed;
      // Ruriko's work is done; whether the agent works is the agent's to say. It retries its own parts.
      const problems = outcome.agentReport?.runtime ? problemsOf(outcome.agentReport.runtime, previous?.runtime) : [];
      if (problems.length > 0) {
        set("Ready", "False", "Degraded", problems.join("; "));
        set("Reconciling", "False", "Degraded", "the agent retries its own parts; its /status says more");
      } else {
        set("Ready", "True", "Converged", c ? `container ${c.state}, image ${c.image}` : "converged");
        set("Reconciling", "False", "Converged", "");
      }
      appliedRevision = ctx.revision;
      appliedSpecDigest = c?.specDigest ?? null;
    } else if (outcome.blocked.length > 0) {
      const r = outcome.blocked[0]!;
      set(
        "Ready",
        "False",
        r.status === "denied" ? "ApprovalDenied" : "ApprovalExpired",
        `approval ${r.id} ${r.status}${r.decidedBy && r.status === "denied" ? ` by ${r.decidedBy}` : ""}: ${r.summary}; to propose it again, change or touch its file in the manifests`,
      );
      set("Reconciling", "False", "Blocked", "");
    } else if (outcome.reported.length > 0) {
      set("Ready", "False", "DriftReported", `${outcome.reported.join("; ")} (drift: report, nothing done)`);
      set("Reconciling", "False", "DriftReported", "");
    } else if (awaiting) {
      set("Ready", "False", "AwaitingApproval", outcome.parked.map((r) => r.summary).join("; "));
      set("Reconciling", "False", "AwaitingApproval", "");
    } else if (outcome.missingSecrets.length > 0) {
      const names = outcome.missingSecrets.join(", ");
      set("Ready", "False", "SecretMissing", `bound secret${outcome.missingSecrets.length > 1 ? "s" : ""} not in the store: ${names} (ruriko secret set NAME); the others were delivered`);
      set("Reconciling", "False", "SecretMissing", "");
    } else if (outcome.matrixProblem) {
      const { reason, message } = outcome.matrixProblem;
      set("Ready", "False", reason, message);
      // Pending is work under way (the provisioner enqueues the agent when it is done); the others need a person or the homeserver.
      set("Reconciling", reason === "MatrixAccountPending" ? "True" : "False", reason, "");
    } else {
      const executed = outcome.executed.map((c) => c.reason);
      set("Ready", "False", "Progressing", outcome.waiting.join("; ") || executed.join("; ") || "converging");
      set("Reconciling", "True", outcome.waiting.some((w) => w.includes("crash loop")) ? "CrashLoopBackOff" : "Progressing", outcome.waiting.join("; "));
    }
  }
  return {
    agent: ctx.agent,
    conditions,
    observedRevision: ctx.revision,
    appliedRevision,
    appliedSpecDigest,
    lastError: error?.message ?? outcome.refused ?? (outcome.blocked.length === 0 ? null : (previous?.lastError ?? null)),
    failures,
    containerId: outcome.observed?.id ?? previous?.containerId ?? null,
    containerState: outcome.observed?.state ?? (error ? (previous?.containerState ?? null) : null),
    gosutoDigest: outcome.agentReport?.gosutoDigest ?? previous?.gosutoDigest ?? null,
    secretsDigest: outcome.agentReport?.secretsDigest ?? previous?.secretsDigest ?? null,
    // Kept while the agent does not answer (the conditions say why); gone with its container.
    runtime: outcome.agentReport?.runtime ?? (outcome.observed || error ? (previous?.runtime ?? null) : null),
    updatedAt: ctx.now,
  };
}

/** The conditions people hear about (Ready, Stalled, AwaitingApproval) whose status or reason moved. */
export function transitionsOf(previous: AgentStatus | undefined, next: AgentStatus): Array<{ condition: Condition; previous?: Condition }> {
  const moved: Array<{ condition: Condition; previous?: Condition }> = [];
  for (const type of ["Ready", "Stalled", "AwaitingApproval"] as const) {
    const before = previous && conditionOf(previous.conditions, type);
    const after = conditionOf(next.conditions, type);
    if (after && (before?.status !== after.status || before.reason !== after.reason)) moved.push({ condition: after, ...(before ? { previous: before } : {}) });
  }
  return moved;
}
