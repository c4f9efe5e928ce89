/**
 * Makes a running agent hold what Ruriko applied to it — its Gosuto, exactly its granted secrets (at their
 * current versions), its Matrix identity — pushing over ACP only what differs from what the agent reports.
 * No decision is taken here: what the agent should hold was decided by the plan and the gate, and recorded.
 * So a new container, a restart or a change made inside the agent behind Ruriko's back is put right without
 * asking anyone, and never beyond what was approved.
 */
import { parse } from "yaml";
import { AcpError, type AcpClient, type AcpEndpoint } from "../acp/client.ts";
import type { AcpEvent, AcpStatus, AgentManifest } from "../api/generated/types.ts";
import type { Logger } from "../observability/logger.ts";
import type { AgentNetworkMode, ObservedContainer } from "../runtime/runtime.ts";
import type { AgentEventCursorStore } from "../store/agent-event-cursor-store.ts";
import type { AgentTokenStore } from "../store/agent-token-store.ts";
import type { AppliedConfig } from "../store/applied-config-store.ts";
import type { AuditLog } from "../store/audit-log.ts";
import type { MatrixAccountStore } from "../store/matrix-account-store.ts";
import type { SecretStore } from "../store/secret-store.ts";
import { backoffDelay, type BackoffPolicy } from "../time/backoff.ts";
import { desiredMatrixOf, matrixTokenSecretOf, secretsDigestOf, type DesiredBinding, type MatrixProblem, type SecretVersion } from "./agent-config.ts";
import { collectAgentEvents } from "./agent-event-collector.ts";
import { acpAddressOf, agentModelUrlOf, DEFAULT_AGENT_NETWORK } from "./agent-network.ts";
import { runtimeOf } from "./agent-health.ts";
import type { AgentReport } from "./agent-status.ts";
import { ReconcileError } from "./container-executor.ts";

/**
 * Something Ruriko changed inside a running agent, or a decision the agent reported (a denial, an approval, a
 * limit), for people to hear about. Names and versions, never values; a decision carries the agent's trace id.
 */
export type AgentConfigEvent =
  | { agent: string; traceId: string; what: "gosuto"; gosuto: string; digest: string }
  | { agent: string; traceId: string; what: "secrets"; delivered: Array<{ name: string; version: number }>; revoked: string[] }
  | { agent: string; traceId: string; what: "decision"; event: AcpEvent };

/**
 * When to ask an agent that has not answered for `silentMs` again. Soon in its first second (a container that
 * just died reads as running for a moment; Gitai listens within ~200 ms of its start), then after as long again
 * as it has been silent, at most 10 s: an agent slow to boot is seen at most its boot time late, and a thousand
 * pods that never answer (kwok, a node that lost its network) cost 9 reconciles each in their first minute past
 * the boot wait, not 22 (a quarter of the silence, at most 5 s: the most of serve's work in the kwok bench) or
 * 236 (a fixed 250 ms, which kept every worker busy until their grace ran out).
 */
export function unansweredRequeueMs(silentMs: number): number {
  if (silentMs < 1000) return 50;
  return Math.min(10_000, Math.round(silentMs));
}

export interface AgentSyncOptions {
  acp: AcpClient;
  secrets: SecretStore;
  tokens: AgentTokenStore;
  matrixAccounts: MatrixAccountStore;
  audit: AuditLog;
  /** How far the audit log has read each agent's decision journal; without it, no journal is collected. */
  eventCursors?: AgentEventCursorStore;
  /** Writes to several stores land together or not at all (the audit entries and the cursor that covers them). */
  transaction?: <T>(fn: () => T) => T;
  /** Issues a new token and writes it into the container (the agent does not accept the one on record). */
  handOverToken: (agent: string, containerId: string, traceId: string) => Promise<string>;
  /** The same, for an agent that holds another token: restarts its container so that it takes the new one. */
  restartWithNewToken: (agent: string, containerId: string, traceId: string) => Promise<string>;
  /** The homeserver URL agents use; undefined when Ruriko runs without Matrix. */
  agentMatrixHomeserver?: string;
  /** How agents are networked, which says where their ACP is reached (default bridge). */
  agentNetwork?: AgentNetworkMode;
  /** How long a started agent may take to answer ACP before that is an error. */
  agentStartGraceMs: number;
  /** True when a newer trigger arrived for the agent: stop waiting for it to boot, it runs again. */
  hasNewerTrigger?: (agent: string) => boolean;
  /** Called in the transaction that appends the audit entry it tells of: what it writes lands with the entry. */
  onEvent?: (event: AgentConfigEvent) => void;
  now: () => Date;
}

export interface SyncResult {
  /** What the agent holds now (as it reported, or as just pushed) and how its parts are doing; undefined when it did not answer yet. */
  report?: AgentReport;
  waiting?: string;
  requeueAfterMs?: number;
  refused?: string;
  missingSecrets: string[];
  matrixProblem?: MatrixProblem;
}

const isUnauthorized = (error: unknown) => error instanceof AcpError && error.code === "unauthorized";

/**
 * Health checks of a container just started: 25, then every 50 ms for half a second (Gitai answers 150–200 ms after
 * its start), then every 250 ms: 13 checks in a second that goes unanswered, not 20.
 */
const HEALTH_POLL: BackoffPolicy = { baseMs: 25, maxMs: 50, jitter: 0 };
const HEALTH_POLL_LATE = { afterMs: 500, everyMs: 250 };

export class AgentSync {
  private readonly o: AgentSyncOptions;
  /** Since when a running agent has not answered ACP. */
  private readonly unanswered = new Map<string, number>();

  constructor(options: AgentSyncOptions) {
    this.o = options;
  }

  /** An audit entry and what is told of it, together (in one transaction when the stores give one). */
  private record<T>(fn: () => T): T {
    return this.o.transaction ? this.o.transaction(fn) : fn();
  }

  /** The agent is gone (its container and volume removed). */
  forget(agent: string): void {
    this.unanswered.delete(agent);
    this.o.eventCursors?.forget(agent);
  }

  /**
   * `bootWaitMs`: how long to wait for a container this reconcile started to answer (one that merely looks
   * running may be dying, so 0 for those). `bindings`: the desired bindings, naming the secret of a grant
   * applied before Ruriko kept its name.
   */
  async sync(input: { manifest: AgentManifest; observed: ObservedContainer; applied: AppliedConfig; bindings: readonly DesiredBinding[]; bootWaitMs: number; traceId: string; log: Logger }): Promise<SyncResult> {
    const { manifest, observed, applied, traceId, log } = input;
    const agent = manifest.metadata.name;
    const result: SyncResult = { missingSecrets: [] };
    const address = acpAddressOf(this.o.agentNetwork ?? DEFAULT_AGENT_NETWORK, observed);
    if (!address.ok) throw new ReconcileError(agent, "configure", address.problem);
    const endpoint: AcpEndpoint = { agent, baseUrl: address.value, token: this.o.tokens.get(agent) ?? (await this.o.handOverToken(agent, observed.id, traceId)) };

    let report: AcpStatus;
    const asked = this.o.now().getTime();
    try {
      report = await this.agentStatus(endpoint, observed.id, traceId, input.bootWaitMs);
      this.unanswered.delete(agent);
    } catch (error) {
      if (!(error instanceof AcpError && (error.code === "unreachable" || error.code === "timeout"))) throw error;
      const now = this.o.now().getTime();
      // Silent since it was first asked: a boot wait it did not answer in counts.
      const since = this.unanswered.get(agent) ?? asked;
      this.unanswered.set(agent, since);
      if (now - since > this.o.agentStartGraceMs) throw error;
      // Just started: Gitai takes a moment to listen.
      return { ...result, waiting: "waiting for the agent to answer on its control port", requeueAfterMs: unansweredRequeueMs(now - since) };
    }

    const gosutoDigest = await this.syncGosuto(endpoint, report, applied, traceId, log, result);
    const secretsDigest = await this.syncSecrets(endpoint, report, applied, input.bindings, traceId, log, result);
    await this.syncMatrixIdentity(manifest, endpoint, report, applied, traceId, log, result);
    // Last: the agent's config comes first. Only a journal that moved past the cursor costs a request.
    const cursors = this.o.eventCursors;
    if (cursors) {
      const onDecision = (_agent: string, event: AcpEvent) => this.o.onEvent?.({ agent, traceId: event.traceId, what: "decision", event });
      await collectAgentEvents({ acp: this.o.acp, audit: this.o.audit, cursors, transaction: (fn) => this.record(fn), now: this.o.now, onDecision }, endpoint, report.events?.last, traceId, log);
    }
    result.report = { gosutoDigest, secretsDigest, runtime: runtimeOf(report) };
    return result;
  }

  /**
   * The agent's /status. An agent that does not accept the token on record is handed a new one: a restarted
   * process takes it; one that holds another token is restarted to take it.
   */
  private async agentStatus(endpoint: AcpEndpoint, containerId: string, traceId: string, bootWaitMs: number): Promise<AcpStatus> {
    await this.waitForHealth(endpoint, traceId, bootWaitMs);
    try {
      return await this.o.acp.status(endpoint, traceId, { retries: 0 });
    } catch (error) {
      if (!isUnauthorized(error)) throw error;
    }
    endpoint.token = await this.o.handOverToken(endpoint.agent, containerId, traceId);
    try {
      return await this.o.acp.status(endpoint, traceId);
    } catch (error) {
      if (!isUnauthorized(error)) throw error;
    }
    endpoint.token = await this.o.restartWithNewToken(endpoint.agent, containerId, traceId);
    await this.waitForHealth(endpoint, traceId, Math.max(bootWaitMs, 3000));
    return await this.o.acp.status(endpoint, traceId);
  }

  /**
   * A container that just started answers within a second or so: wait for it here, on loopback only (polling
   * the engine instead would load it while it starts the others). Longer than that, the requeue takes over.
   * Soon at first, then every 50 ms, then every 250 ms: a thousand agents starting at once (kwok, docs/performance.md)
   * made their refused attempts most of what serve allocated at a steady 25 ms.
   */
  private async waitForHealth(endpoint: AcpEndpoint, traceId: string, waitMs: number): Promise<void> {
    // In the reconcile's worker slot, unlike the runtime's waits: each wait polls, and a thousand pods that came up
    // together polling side by side were 20,000 refused connections a second (kwok); a second of boot is short.
    const start = performance.now();
    for (let attempt = 1; performance.now() - start < waitMs && !this.o.hasNewerTrigger?.(endpoint.agent); attempt++) {
      if (await this.o.acp.health(endpoint, traceId).then(() => true, () => false)) return;
      const late = performance.now() - start >= HEALTH_POLL_LATE.afterMs;
      await new Promise((r) => setTimeout(r, late ? HEALTH_POLL_LATE.everyMs : backoffDelay(attempt, HEALTH_POLL)));
    }
  }

  private async syncGosuto(endpoint: AcpEndpoint, report: AcpStatus, applied: AppliedConfig, traceId: string, log: Logger, result: SyncResult): Promise<string | null> {
    const gosuto = applied.gosuto;
    // Nothing applied yet (its first Gosuto waits for approval), or applied before Ruriko kept its text: leave it.
    if (!gosuto?.yaml || report.gosutoDigest === gosuto.digest) return report.gosutoDigest;
    const agent = endpoint.agent;
    try {
      await this.o.acp.putConfig(endpoint, { gosuto: gosuto.yaml, digest: gosuto.digest }, traceId);
    } catch (error) {
      if (!(error instanceof AcpError && error.code === "refused")) throw error;
      result.refused = error.details.length > 0 ? error.details.join("; ") : error.message;
      log.warn({ gosuto: gosuto.name, refusal: result.refused }, `configure ${agent}: the agent refused Gosuto ${gosuto.name}`);
      this.o.audit.append({ traceId, actor: "controller", action: "agent.configure", target: `Agent/${agent}`, payload: { gosuto: gosuto.name, toDigest: gosuto.digest, error: result.refused }, result: "error" });
      return report.gosutoDigest;
    }
    log.info({ gosuto: gosuto.name, from: report.gosutoDigest, to: gosuto.digest }, `configure ${agent}: Gosuto ${gosuto.name} applied`);
    // Its model server as the agent sees it: a loopback URL is the agent's own container but in host mode. Said, not
    // refused: the Gosuto is valid, and an agent whose model does not answer reports itself Degraded.
    const model = agentModelUrlOf(this.o.agentNetwork ?? DEFAULT_AGENT_NETWORK, parse(gosuto.yaml));
    if (model?.problem) log.warn({ gosuto: gosuto.name }, `configure ${agent}: Gosuto ${gosuto.name}: ${model.problem}`);
    this.record(() => {
      this.o.audit.append({
        traceId,
        actor: "controller",
        action: "agent.configure",
        target: `Agent/${agent}`,
        payload: { gosuto: gosuto.name, fromDigest: report.gosutoDigest, toDigest: gosuto.digest, ...(model?.problem ? { warning: model.problem } : {}) },
        result: "ok",
      });
      // A first Gosuto is part of bringing the agent up; an edit reaching a running agent is news.
      if (report.gosutoDigest !== null && gosuto.name) this.o.onEvent?.({ agent, traceId, what: "gosuto", gosuto: gosuto.name, digest: gosuto.digest });
    });
    return gosuto.digest;
  }

  private async syncSecrets(endpoint: AcpEndpoint, report: AcpStatus, applied: AppliedConfig, bindings: readonly DesiredBinding[], traceId: string, log: Logger, result: SyncResult): Promise<string | null> {
    const agent = endpoint.agent;
    const wanted = new Map<string, SecretVersion>();
    for (const grant of applied.grants) {
      const name = grant.secret ?? bindings.find((b) => b.binding === grant.binding && b.digest === grant.digest)?.secret;
      if (!name) continue;
      const info = this.o.secrets.info(name);
      if (info) wanted.set(info.name, info);
      else if (!result.missingSecrets.includes(name)) result.missingSecrets.push(name);
    }
    if (report.secretsDigest === secretsDigestOf([...wanted.values()])) return report.secretsDigest;
    const values: Record<string, string> = {};
    const versions: Record<string, number> = {};
    const delivered: SecretVersion[] = [];
    for (const name of wanted.keys()) {
      const revealed = this.o.secrets.reveal(name);
      if (!revealed) continue; // deleted this very moment: the next reconcile sees it missing
      values[name] = revealed.value.toString("utf8");
      versions[name] = revealed.info.version;
      delivered.push(revealed.info);
    }
    // The digest of what is actually sent (a rotation between listing and reading moves it on).
    const digest = secretsDigestOf(delivered);
    await this.o.acp.putSecrets(endpoint, { secrets: values, versions, digest }, traceId);
    const revoked = report.secrets.map((s) => s.name).filter((n) => !(n in values));
    const summary = delivered.map((d) => ({ name: d.name, version: d.version }));
    log.info({ delivered: summary, revoked }, `configure ${agent}: secrets delivered`);
    this.record(() => {
      this.o.audit.append({ traceId, actor: "controller", action: "agent.secrets", target: `Agent/${agent}`, payload: { delivered: summary, revoked, digest }, result: "ok" });
      // After a restart the agent holds nothing and gets everything again: only a change of what it held is news.
      if (report.secretsDigest !== null) this.o.onEvent?.({ agent, traceId, what: "secrets", delivered: summary, revoked });
    });
    return digest;
  }

  /**
   * The agent's Matrix identity: its account's user id and access token (provisioned by matrix/agent-accounts.ts,
   * or an existing account whose token the operator stored). Read from the state database only: syncing never
   * waits on the homeserver. A new identity waiting for approval is not delivered; the agent keeps what it has.
   */
  private async syncMatrixIdentity(manifest: AgentManifest, endpoint: AcpEndpoint, report: AcpStatus, applied: AppliedConfig, traceId: string, log: Logger, result: SyncResult): Promise<void> {
    const agent = manifest.metadata.name;
    const account = this.o.matrixAccounts.current(agent);
    const tokenSecret = matrixTokenSecretOf(manifest, account);
    // Read once: the digest and the value sent then belong to the same version of the token.
    const token = tokenSecret ? this.o.secrets.reveal(tokenSecret) : undefined;
    const desired = desiredMatrixOf(manifest, { homeserver: this.o.agentMatrixHomeserver, account, token: token?.info });
    if (desired.problem) result.matrixProblem = desired.problem;
    // A new identity, or dropping one, waits for its approval: the agent keeps what it holds meanwhile.
    if (desired.identity && desired.identity.userId !== applied.matrixUserId) return;
    if (!desired.identity && !desired.problem && applied.matrixUserId !== null) return;
    const want = desired.identity?.digest ?? null;
    if ((report.matrix?.digest ?? null) === want) return;
    const identity = desired.identity && token ? { homeserver: desired.identity.homeserver, userId: desired.identity.userId, accessToken: token.value.toString("utf8") } : null;
    await this.o.acp.putMatrix(endpoint, { identity, digest: want }, traceId);
    const userId = identity?.userId ?? null;
    log.info({ userId, matrixDigest: want }, `configure ${agent}: ${userId ? `Matrix identity ${userId} delivered` : "Matrix identity dropped"}`);
    this.o.audit.append({ traceId, actor: "controller", action: "agent.matrix", target: `Agent/${agent}`, payload: { userId, digest: want, previous: report.matrix?.userId ?? null }, result: "ok" });
  }
}
