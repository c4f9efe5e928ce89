/**
 * reconcile(agent): the one idempotent step of the controller. It receives only the agent's name, reads
 * the desired state (the last good snapshot), the observed state (the engine) and its own records
 * (inventory, approvals), plans, lets risky actions wait behind approvals, carries out the rest, and writes
 * the agent's status once at the end. Running it twice in a row does nothing the second time.
 */
import { AcpError, type AcpClient, type AcpEndpoint } from "../acp/client.ts";
import { ACP_TOKEN_FILE } from "../acp/protocol.ts";
import type { AcpStatus, AgentManifest, ApprovalPolicyManifest } from "../api/generated/types.ts";
import { objectKey } from "../api/kinds.ts";
import { objectsOfKind, type Snapshot } from "../api/snapshot.ts";
import { evaluateGate, type GateDecision } from "../approvals/policy.ts";
import { withTrace, type Logger } from "../observability/logger.ts";
import { RuntimeError, type ContainerSpec, type ObservedContainer, type Runtime } from "../runtime/runtime.ts";
import type { AgentStatus, AgentStatusStore, Condition } from "../store/agent-status-store.ts";
import type { ApprovalRequest, ApprovalStore } from "../store/approval-store.ts";
import type { AgentTokenStore } from "../store/agent-token-store.ts";
import type { AuditLog } from "../store/audit-log.ts";
import type { InventoryStore } from "../store/inventory-store.ts";
import type { MatrixAccountStore } from "../store/matrix-account-store.ts";
import type { SecretStore } from "../store/secret-store.ts";
import { desiredBindingsOf, desiredGosutoOf, desiredMatrixOf, matrixTokenSecretOf, secretsDigestOf, type DesiredBinding, type MatrixProblem, type SecretVersion } from "./agent-config.ts";
import { conditionOf, setCondition } from "./conditions.ts";
import { containerSpecFor } from "./container-spec.ts";
import { planAgent, type Action, type AgentPlan } from "./planner.ts";
import type { ReconcileResult } from "./work-queue.ts";

export interface ReconcilerStores {
  status: AgentStatusStore;
  inventory: InventoryStore;
  approvals: ApprovalStore;
  audit: AuditLog;
  matrixAccounts: MatrixAccountStore;
}

export interface StatusTransition {
  agent: string;
  traceId: string;
  condition: Condition;
  previous?: Condition;
}

/**
 * Something Ruriko changed for an agent, for people to hear about (the status room): a container action,
 * a Gosuto pushed to a running agent, or a change in the secrets it holds. Names and versions, never values.
 */
export type AppliedChange =
  | { agent: string; traceId: string; what: "container"; action: Action["type"]; reason: string; drift: boolean; approval?: string }
  | { agent: string; traceId: string; what: "gosuto"; gosuto: string; digest: string }
  | { agent: string; traceId: string; what: "secrets"; delivered: Array<{ name: string; version: number }>; revoked: string[] };

/** The encrypted parts of the state: secret values and agents' ACP tokens. */
export interface ReconcilerVault {
  secrets: SecretStore;
  tokens: AgentTokenStore;
}

export interface ReconcilerOptions {
  runtime: Runtime;
  stores: ReconcilerStores;
  vault: ReconcilerVault;
  acp: AcpClient;
  /** How often to ask a Ready agent for its /status, to catch drift inside it. */
  agentPollMs?: number;
  /** The homeserver URL agents use for their Matrix identity; undefined when Ruriko runs without Matrix. */
  agentMatrixHomeserver?: string;
  /** How long a started agent may take to answer ACP before that is an error. */
  agentStartGraceMs?: number;
  /** How long one reconcile waits for a starting agent to answer before handing back its worker. */
  agentBootWaitMs?: number;
  /** True when a newer trigger (an engine event, say) arrived for the agent: stop waiting, it runs again. */
  hasNewerTrigger?: (agent: string) => boolean;
  /** The snapshot in force (the last good one), or undefined before the first. */
  desired: () => Snapshot | undefined;
  logger: Logger;
  /** Consecutive failures after which the agent is reported Stalled (retries go on, backed off). */
  stallAfterFailures?: number;
  /** How often to look again at a Ready agent even without events. */
  resyncAfterMs?: number;
  onTransition?: (transition: StatusTransition) => void;
  onChange?: (change: AppliedChange) => void;
  now?: () => Date;
}

/** A failed reconcile, with the agent and the action that failed. */
export class ReconcileError extends Error {
  readonly agent: string;
  readonly action: string;
  constructor(agent: string, action: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ReconcileError";
    this.agent = agent;
    this.action = action;
  }
}

const MAX_PASSES = 3;
const CRASH_BACKOFF_BASE_MS = 1000;
const CRASH_BACKOFF_MAX_MS = 5 * 60_000;
/** A container that stayed up this long is no longer crash-looping. */
const CRASH_RESET_MS = 10 * 60_000;

interface Outcome {
  executed: Action[];
  parked: ApprovalRequest[];
  blocked: ApprovalRequest[];
  reported: string[];
  waiting: string[];
  requeueAfterMs?: number;
  observed?: ObservedContainer;
  converged: boolean;
  desired?: AgentManifest;
  /** What the agent holds, as it reported (or as just pushed). */
  agentReport?: { gosutoDigest: string | null; secretsDigest: string | null };
  /** The agent refused the Gosuto: its own words. */
  refused?: string;
  /** Bound secrets that are not in the store. */
  missingSecrets: string[];
  /** Why the agent lacks the Matrix identity it should have. */
  matrixProblem?: MatrixProblem;
}

export class Reconciler {
  private readonly o: Required<Omit<ReconcilerOptions, "onTransition" | "onChange" | "hasNewerTrigger" | "agentMatrixHomeserver">> &
    Pick<ReconcilerOptions, "onTransition" | "onChange" | "hasNewerTrigger" | "agentMatrixHomeserver">;
  private readonly crashes = new Map<string, { count: number; lastStartAt: number }>();
  /** Since when a running agent has not answered ACP. */
  private readonly unanswered = new Map<string, number>();
  private prepared = false;

  constructor(options: ReconcilerOptions) {
    this.o = { stallAfterFailures: 5, resyncAfterMs: 5 * 60_000, agentPollMs: 30_000, agentStartGraceMs: 60_000, agentBootWaitMs: 3000, now: () => new Date(), ...options };
  }

  async reconcile(agent: string, traceId: string): Promise<ReconcileResult> {
    const snapshot = this.o.desired();
    // Before the first good snapshot there is nothing to converge to, and nothing may be pruned.
    if (!snapshot) return {};
    const log = withTrace(this.o.logger, traceId).child({ agent });
    const previous = this.o.stores.status.get(agent);
    try {
      const outcome = await this.converge(agent, snapshot, traceId, log);
      if (!outcome.desired && outcome.converged) {
        this.o.stores.status.delete(agent);
        this.crashes.delete(agent);
        this.unanswered.delete(agent);
        return {};
      }
      this.writeStatus(agent, snapshot, outcome, previous, traceId, undefined);
      if (outcome.requeueAfterMs !== undefined) return { requeueAfterMs: outcome.requeueAfterMs };
      if (outcome.agentReport) return { requeueAfterMs: Math.min(this.o.agentPollMs, this.o.resyncAfterMs) };
      return outcome.converged ? { requeueAfterMs: this.o.resyncAfterMs } : {};
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log.warn({ err: message }, "reconcile failed");
      this.writeStatus(agent, snapshot, undefined, previous, traceId, message);
      if (error instanceof RuntimeError && error.code === "engine-unavailable") this.prepared = false;
      throw error;
    }
  }

  /** The approval policies in force in a snapshot. */
  static policiesOf(snapshot: Snapshot): ApprovalPolicyManifest[] {
    return objectsOfKind(snapshot, "ApprovalPolicy").map((o) => o.object);
  }

  private async converge(agent: string, snapshot: Snapshot, traceId: string, log: Logger): Promise<Outcome> {
    const manifest = snapshot.objects.get(objectKey("Agent", agent))?.object as AgentManifest | undefined;
    const policies = Reconciler.policiesOf(snapshot);
    const outcome: Outcome = { executed: [], parked: [], blocked: [], reported: [], waiting: [], converged: false, missingSecrets: [], ...(manifest ? { desired: manifest } : {}) };
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      const observed = (await this.o.runtime.list(agent)).filter((c) => c.agent === agent);
      const inventory = this.o.stores.inventory.get(agent);
      const plan: AgentPlan = planAgent({
        agent,
        observed,
        ...(inventory ? { inventory } : {}),
        ...(manifest ? { desired: { manifest, spec: containerSpecFor(manifest, snapshot.revision) } } : {}),
      });
      outcome.observed = observed[0];
      log.debug({ pass, observed: observed.map((c) => ({ id: c.id.slice(0, 12), state: c.state, port: c.controlHostPort })), actions: plan.actions.map((a) => a.type) }, "planned");
      outcome.reported = plan.reported.map((r) => r.message);
      outcome.parked = [];
      outcome.blocked = [];
      outcome.waiting = [];
      const runnable = this.gate(plan, manifest, policies, snapshot.revision, traceId, outcome);
      if (runnable.length === 0) {
        outcome.converged = plan.actions.length === 0;
        const running = outcome.observed?.state === "running";
        if (outcome.converged && manifest && running && manifest.spec.state !== "Stopped") {
          await this.configureAgent(manifest, snapshot, outcome.observed!, policies, traceId, log, outcome);
        }
        return outcome;
      }
      for (const { action, approval } of runnable) {
        const wait = this.crashLoopWait(action);
        if (wait > 0) {
          outcome.waiting.push(`${action.reason} (crash loop: next start in ${Math.ceil(wait / 1000)}s)`);
          outcome.requeueAfterMs = wait;
          continue;
        }
        await this.execute(action, traceId, log, approval);
        outcome.executed.push(action);
      }
      if (outcome.waiting.length > 0) return outcome;
    }
    return outcome;
  }

  /** Splits planned actions into those that may run now and those parked or refused by approvals. */
  private gate(
    plan: AgentPlan,
    manifest: AgentManifest | undefined,
    policies: ApprovalPolicyManifest[],
    revision: string,
    traceId: string,
    outcome: Outcome,
  ): Array<{ action: Action; approval?: ApprovalRequest }> {
    const { approvals } = this.o.stores;
    const runnable: Array<{ action: Action; approval?: ApprovalRequest }> = [];
    const gated = plan.actions.map((action) => ({
      action,
      gate: evaluateGate(
        { kind: "Agent", name: plan.agent, operation: action.operation, fields: action.fields, drift: action.drift, driftMode: manifest?.spec.drift ?? "heal" },
        policies,
      ),
    }));
    // A pending request for a change no longer planned was overtaken by the desired state: never apply it.
    const keep = gated.filter((g) => g.gate.required).map((g) => g.action);
    this.supersede(plan.agent, keep, (r) => r.operation !== "grant", traceId);
    for (const { action, gate } of gated) {
      if (!gate.required) {
        runnable.push({ action });
        continue;
      }
      const existing = approvals.findForChange(plan.agent, action.operation, action.fromDigest, action.toDigest);
      if (existing?.status === "approved") runnable.push({ action, approval: existing });
      else if (existing?.status === "pending") outcome.parked.push(existing);
      else if (existing?.status === "denied" || existing?.status === "expired") outcome.blocked.push(existing);
      else {
        outcome.parked.push(
          this.park(plan.agent, { objectKey: objectKey("Agent", plan.agent), operation: action.operation, fromDigest: action.fromDigest, toDigest: action.toDigest, summary: `Agent/${plan.agent}: ${action.reason}` }, gate, revision, traceId),
        );
      }
    }
    return runnable;
  }

  private supersede(agent: string, keep: ReadonlyArray<{ operation: string; fromDigest: string; toDigest: string }>, among: (r: ApprovalRequest) => boolean, traceId: string): void {
    // A pending request for a change no longer planned was overtaken by the desired state: never apply it.
    for (const superseded of this.o.stores.approvals.supersedePending(agent, keep, this.o.now(), among)) {
      this.o.stores.audit.append({ traceId, actor: "controller", action: "approval.superseded", target: `approval/${superseded.id}`, payload: { agent, summary: superseded.summary }, result: "info" });
    }
  }

  /** Parks one change behind a new approval request, bound to exactly that change. */
  private park(
    agent: string,
    change: { objectKey: string; operation: string; fromDigest: string; toDigest: string; summary: string },
    gate: Extract<GateDecision, { required: true }>,
    revision: string,
    traceId: string,
  ): ApprovalRequest {
    const now = this.o.now();
    const expiresAt = new Date(now.getTime() + gate.ttlMs);
    const remindAt = new Date(expiresAt.getTime() - gate.remindBeforeMs);
    const request = this.o.stores.approvals.create(
      {
        agent,
        ...change,
        revision,
        policy: gate.policy,
        room: gate.room,
        approvers: gate.approvers,
        quorum: gate.quorum,
        expiresAt: expiresAt.toISOString(),
        remindAt: remindAt > now ? remindAt.toISOString() : null,
        traceId,
      },
      now,
    );
    this.o.stores.audit.append({
      traceId,
      actor: "controller",
      action: "approval.requested",
      target: `approval/${request.id}`,
      payload: { agent, operation: change.operation, summary: request.summary, why: gate.why, policy: gate.policy, quorum: gate.quorum, revision },
      result: "parked",
    });
    return request;
  }

  /**
   * Bindings whose grant may go ahead: exempted by policy, or approved. A grant waiting for people is parked
   * and its secret withheld; the agent's other secrets are delivered meanwhile.
   */
  private gateGrants(agent: string, bindings: readonly DesiredBinding[], policies: ApprovalPolicyManifest[], revision: string, traceId: string, outcome: Outcome): Array<{ binding: DesiredBinding; approval?: ApprovalRequest }> {
    const { approvals } = this.o.stores;
    const granted: Array<{ binding: DesiredBinding; approval?: ApprovalRequest }> = [];
    const gated = bindings.map((binding) => ({
      binding,
      change: { operation: "grant", fromDigest: "none", toDigest: binding.digest },
      gate: evaluateGate({ kind: "SecretBinding", name: binding.binding, operation: "grant", fields: [], drift: false }, policies),
    }));
    this.supersede(agent, gated.filter((g) => g.gate.required).map((g) => g.change), (r) => r.operation === "grant", traceId);
    for (const { binding, change, gate } of gated) {
      if (!gate.required) {
        granted.push({ binding });
        continue;
      }
      const existing = approvals.findForChange(agent, change.operation, change.fromDigest, change.toDigest);
      // A grant stays granted once applied, for as long as the binding is unchanged.
      if (existing?.status === "approved" || existing?.status === "applied") granted.push({ binding, approval: existing });
      else if (existing?.status === "pending") outcome.parked.push(existing);
      else if (existing?.status === "denied" || existing?.status === "expired") outcome.blocked.push(existing);
      else {
        outcome.parked.push(
          this.park(agent, { objectKey: objectKey("SecretBinding", binding.binding), ...change, summary: `SecretBinding/${binding.binding}: grant secret ${binding.secret} to agent ${agent}` }, gate, revision, traceId),
        );
      }
    }
    return granted;
  }

  /** Gives the agent a new ACP token: sealed in the state database, written as a file into its data volume. */
  private async handOverToken(agent: string, containerId: string, traceId: string): Promise<string> {
    const token = this.o.vault.tokens.issue(agent, this.o.now());
    await this.o.runtime.writeAgentFile(containerId, ACP_TOKEN_FILE, Buffer.from(token, "utf8"));
    this.o.stores.audit.append({ traceId, actor: "controller", action: "agent.token.issued", target: `Agent/${agent}`, payload: { containerId }, result: "ok" });
    return token;
  }

  /** The agent's /status; hands over a new token once when the agent does not accept the one on record. */
  private async agentStatus(endpoint: AcpEndpoint, containerId: string, traceId: string, bootWaitMs: number): Promise<AcpStatus> {
    // A container that just started answers within a second or so: wait for it here, on loopback only (polling the
    // engine instead would load it while it starts the others). Longer than that, the requeue takes over.
    const deadline = performance.now() + bootWaitMs;
    while (performance.now() < deadline && !this.o.hasNewerTrigger?.(endpoint.agent)) {
      if (await this.o.acp.health(endpoint, traceId).then(() => true, () => false)) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    try {
      return await this.o.acp.status(endpoint, traceId, { retries: 0 });
    } catch (error) {
      if (!(error instanceof AcpError && error.code === "unauthorized")) throw error;
      endpoint.token = await this.handOverToken(endpoint.agent, containerId, traceId);
      return await this.o.acp.status(endpoint, traceId);
    }
  }

  /**
   * Once the container runs: make the agent hold the desired Gosuto and exactly its granted secrets,
   * pushing over ACP only what differs from what the agent reports. Never recreates the container.
   */
  private async configureAgent(
    manifest: AgentManifest,
    snapshot: Snapshot,
    observed: ObservedContainer,
    policies: ApprovalPolicyManifest[],
    traceId: string,
    log: Logger,
    outcome: Outcome,
  ): Promise<void> {
    const agent = manifest.metadata.name;
    const { acp, vault } = this.o;
    const { audit, approvals } = this.o.stores;
    const gosuto = desiredGosutoOf(snapshot, manifest);
    if (!gosuto) throw new ReconcileError(agent, "configure", `Gosuto ${manifest.spec.gosuto} is not in the revision in force`);
    if (!observed.controlHostPort) throw new ReconcileError(agent, "configure", "the container's control port is not published");
    const endpoint: AcpEndpoint = { agent, baseUrl: `http://127.0.0.1:${observed.controlHostPort}`, token: vault.tokens.get(agent) ?? (await this.handOverToken(agent, observed.id, traceId)) };

    let report: AcpStatus;
    try {
      // Wait for boot only for a container this reconcile started: one that merely looks running may be dying.
      const startedHere = outcome.executed.some((a) => a.type === "create" || a.type === "recreate" || a.type === "start");
      report = await this.agentStatus(endpoint, observed.id, traceId, startedHere ? this.o.agentBootWaitMs : 0);
      this.unanswered.delete(agent);
    } catch (error) {
      if (!(error instanceof AcpError && (error.code === "unreachable" || error.code === "timeout"))) throw error;
      const now = this.o.now().getTime();
      const since = this.unanswered.get(agent) ?? now;
      this.unanswered.set(agent, since);
      if (now - since > this.o.agentStartGraceMs) throw error;
      // Just started: Gitai takes a moment to listen.
      outcome.converged = false;
      outcome.waiting.push("waiting for the agent to answer on its control port");
      // Soon at first (a container that just died reads as running for a moment), then less often.
      outcome.requeueAfterMs = now - since < 1000 ? 50 : 250;
      return;
    }

    let gosutoDigest = report.gosutoDigest;
    if (report.gosutoDigest !== gosuto.digest) {
      try {
        await acp.putConfig(endpoint, { gosuto: gosuto.yaml, digest: gosuto.digest }, traceId);
        gosutoDigest = gosuto.digest;
        log.info({ gosuto: gosuto.name, from: report.gosutoDigest, to: gosuto.digest }, `configure ${agent}: Gosuto ${gosuto.name} applied`);
        audit.append({ traceId, actor: "controller", action: "agent.configure", target: `Agent/${agent}`, payload: { gosuto: gosuto.name, fromDigest: report.gosutoDigest, toDigest: gosuto.digest, revision: snapshot.revision }, result: "ok" });
        // A first Gosuto is part of bringing the agent up; an edit reaching a running agent is news.
        if (report.gosutoDigest !== null) this.o.onChange?.({ agent, traceId, what: "gosuto", gosuto: gosuto.name, digest: gosuto.digest });
      } catch (error) {
        if (!(error instanceof AcpError && error.code === "refused")) throw error;
        outcome.refused = error.details.length > 0 ? error.details.join("; ") : error.message;
        log.warn({ gosuto: gosuto.name, refusal: outcome.refused }, `configure ${agent}: the agent refused Gosuto ${gosuto.name}`);
        audit.append({ traceId, actor: "controller", action: "agent.configure", target: `Agent/${agent}`, payload: { gosuto: gosuto.name, toDigest: gosuto.digest, error: outcome.refused }, result: "error" });
      }
    }

    const granted = this.gateGrants(agent, desiredBindingsOf(snapshot, agent), policies, snapshot.revision, traceId, outcome);
    const wanted = new Map<string, SecretVersion>();
    for (const { binding } of granted) {
      const info = vault.secrets.info(binding.secret);
      if (info) wanted.set(info.name, info);
      else if (!outcome.missingSecrets.includes(binding.secret)) outcome.missingSecrets.push(binding.secret);
    }
    let secretsDigest = report.secretsDigest;
    if (report.secretsDigest !== secretsDigestOf([...wanted.values()])) {
      const values: Record<string, string> = {};
      const versions: Record<string, number> = {};
      const delivered: SecretVersion[] = [];
      for (const name of wanted.keys()) {
        const revealed = vault.secrets.reveal(name);
        if (!revealed) continue; // deleted this very moment: the next reconcile sees it missing
        values[name] = revealed.value.toString("utf8");
        versions[name] = revealed.info.version;
        delivered.push(revealed.info);
      }
      // The digest of what is actually sent (a rotation between listing and reading moves it on).
      const digest = secretsDigestOf(delivered);
      await acp.putSecrets(endpoint, { secrets: values, versions, digest }, traceId);
      secretsDigest = digest;
      const revoked = report.secrets.map((s) => s.name).filter((n) => !(n in values));
      const summary = delivered.map((d) => ({ name: d.name, version: d.version }));
      log.info({ delivered: summary, revoked }, `configure ${agent}: secrets delivered`);
      audit.append({ traceId, actor: "controller", action: "agent.secrets", target: `Agent/${agent}`, payload: { delivered: summary, revoked, digest }, result: "ok" });
      // After a restart the agent holds nothing and gets everything again: only a change of what it held is news.
      if (report.secretsDigest !== null) this.o.onChange?.({ agent, traceId, what: "secrets", delivered: summary, revoked });
      for (const { approval } of granted) if (approval?.status === "approved") approvals.markApplied(approval.id, this.o.now());
    }
    await this.deliverMatrixIdentity(manifest, endpoint, report, traceId, log, outcome);
    outcome.agentReport = { gosutoDigest, secretsDigest };
  }

  /**
   * The agent's Matrix identity: its account's user id and access token (provisioned by matrix/agent-accounts.ts,
   * or an existing account whose token the operator stored). Read from the state database only: the reconciler
   * never waits on the homeserver.
   */
  private async deliverMatrixIdentity(manifest: AgentManifest, endpoint: AcpEndpoint, report: AcpStatus, traceId: string, log: Logger, outcome: Outcome): Promise<void> {
    const agent = manifest.metadata.name;
    const account = this.o.stores.matrixAccounts.current(agent);
    const tokenSecret = matrixTokenSecretOf(manifest, account);
    // Read once: the digest and the value sent then belong to the same version of the token.
    const token = tokenSecret ? this.o.vault.secrets.reveal(tokenSecret) : undefined;
    const desired = desiredMatrixOf(manifest, { homeserver: this.o.agentMatrixHomeserver, account, token: token?.info });
    if (desired.problem) outcome.matrixProblem = desired.problem;
    const want = desired.identity?.digest ?? null;
    if ((report.matrix?.digest ?? null) === want) return;
    const identity = desired.identity && token ? { homeserver: desired.identity.homeserver, userId: desired.identity.userId, accessToken: token.value.toString("utf8") } : null;
    await this.o.acp.putMatrix(endpoint, { identity, digest: want }, traceId);
    const userId = identity?.userId ?? null;
    log.info({ userId, matrixDigest: want }, `configure ${agent}: ${userId ? `Matrix identity ${userId} delivered` : "Matrix identity dropped"}`);
    this.o.stores.audit.append({ traceId, actor: "controller", action: "agent.matrix", target: `Agent/${agent}`, payload: { userId, digest: want, previous: report.matrix?.userId ?? null }, result: "ok" });
  }

  /** Crash-loop backoff for restarts of a container that keeps exiting. */
  private crashLoopWait(action: Action): number {
    if (action.type !== "start" || !action.drift) return 0;
    const now = this.o.now().getTime();
    const entry = this.crashes.get(action.agent);
    if (!entry || now - entry.lastStartAt > CRASH_RESET_MS) {
      this.crashes.set(action.agent, { count: 1, lastStartAt: now });
      return 0;
    }
    const delay = Math.min(CRASH_BACKOFF_BASE_MS * 2 ** (entry.count - 1), CRASH_BACKOFF_MAX_MS);
    const wait = entry.lastStartAt + delay - now;
    if (wait > 0) return wait;
    this.crashes.set(action.agent, { count: entry.count + 1, lastStartAt: now });
    return 0;
  }

  /**
   * Creates the agent's container (removing `replacing` first), hands it its ACP token, and starts it if
   * asked. Every step is recorded in the inventory before the next, so a crash in between is read correctly.
   */
  private async createContainer(agent: string, spec: ContainerSpec, replacing: string | null, start: boolean, traceId: string): Promise<Record<string, unknown>> {
    const { runtime } = this.o;
    const { inventory } = this.o.stores;
    if (!this.prepared) {
      await runtime.prepare();
      this.prepared = true;
    }
    // Forget the old id first: a crash between remove and create then reads as "missing", not as drift.
    inventory.record(agent, { containerId: null, spec });
    if (replacing) await runtime.remove(replacing);
    if (!(await runtime.imageExists(spec.image))) {
      throw new RuntimeError("create", agent, "image-missing", `image ${spec.image} is not present on this host; build or load it (no registry pull is attempted)`);
    }
    let created: ObservedContainer;
    try {
      created = await runtime.create(spec);
    } catch (error) {
      // A container of that name exists: an earlier run crashed after creating it. Adopt it if it matches.
      if (!(error instanceof RuntimeError && error.code === "conflict")) throw error;
      const existing = (await runtime.list(agent)).find((c) => c.agent === agent && c.specDigest === spec.specDigest);
      if (!existing) throw error;
      created = existing;
    }
    inventory.record(agent, { containerId: created.id, spec });
    // Before the first start, so Gitai finds its token as it comes up.
    await this.handOverToken(agent, created.id, traceId);
    if (start) await runtime.start(created.id);
    return { containerId: created.id, specDigest: spec.specDigest, image: spec.image, revision: spec.revision };
  }

  private async execute(action: Action, traceId: string, log: Logger, approval: ApprovalRequest | undefined): Promise<void> {
    const { runtime } = this.o;
    const { inventory, audit, approvals } = this.o.stores;
    const target = `Agent/${action.agent}`;
    const payload: Record<string, unknown> = { reason: action.reason, drift: action.drift, ...(approval ? { approval: approval.id } : {}) };
    log.info({ action: action.type, reason: action.reason }, `${action.type} ${action.agent}: ${action.reason}`);
    try {
      switch (action.type) {
        case "create":
        case "recreate":
          Object.assign(payload, await this.createContainer(action.agent, action.spec, action.type === "recreate" ? action.containerId : null, action.start, traceId));
          break;
        case "start":
          payload.containerId = action.containerId;
          try {
            await runtime.start(action.containerId);
          } catch (error) {
            // A container the engine will not start again is replaced, with the same spec and the same data
            // volume: after an engine restart containerd may still hold its old task ("task … already exists"),
            // or its host port may have been taken meanwhile. Retrying the start would fail forever.
            const spec = inventory.get(action.agent)?.spec;
            if (!(error instanceof RuntimeError) || error.code === "engine-unavailable" || !spec) throw error;
            log.warn({ containerId: action.containerId, err: error.message }, `start ${action.agent}: the engine will not start this container; replacing it`);
            Object.assign(payload, { replaced: action.containerId, startError: error.message }, await this.createContainer(action.agent, spec, action.containerId, true, traceId));
          }
          break;
        case "stop":
          await runtime.stop(action.containerId);
          payload.containerId = action.containerId;
          break;
        case "remove":
          if (action.containerId) await runtime.remove(action.containerId);
          payload.containerId = action.containerId;
          if (action.operation === "delete") {
            await runtime.removeAgentVolume(action.agent);
            inventory.forget(action.agent);
            this.o.vault.tokens.forget(action.agent);
          }
          break;
      }
      if (approval) approvals.markApplied(approval.id, this.o.now());
      audit.append({ traceId, actor: "controller", action: `agent.${action.type}`, target, payload, result: "ok" });
      this.o.onChange?.({ agent: action.agent, traceId, what: "container", action: action.type, reason: action.reason, drift: action.drift, ...(approval ? { approval: approval.id } : {}) });
    } catch (error) {
      // The shared network may have been removed behind our back: make sure of it again next time.
      this.prepared = false;
      const message = error instanceof Error ? error.message : String(error);
      audit.append({ traceId, actor: "controller", action: `agent.${action.type}`, target, payload: { ...payload, error: message }, result: "error" });
      if (error instanceof RuntimeError) throw error;
      throw new ReconcileError(action.agent, action.type, `${action.type} ${action.agent}: ${message}`, { cause: error });
    }
  }

  private writeStatus(
    agent: string,
    snapshot: Snapshot,
    outcome: Outcome | undefined,
    previous: AgentStatus | undefined,
    traceId: string,
    error: string | undefined,
  ): void {
    const now = this.o.now().toISOString();
    let conditions = previous?.conditions ?? [];
    const set = (type: Condition["type"], status: Condition["status"], reason: string, message: string) => {
      conditions = setCondition(conditions, type, status, reason, message, now);
    };
    let failures = 0;
    let appliedRevision = previous?.appliedRevision ?? null;
    let appliedSpecDigest = previous?.appliedSpecDigest ?? null;
    if (error !== undefined || !outcome) {
      failures = (previous?.failures ?? 0) + 1;
      const stalled = failures >= this.o.stallAfterFailures;
      set("Ready", "False", "ReconcileFailed", error ?? "reconcile failed");
      set("Reconciling", stalled ? "False" : "True", stalled ? "Stalled" : "RetryingAfterFailure", `attempt ${failures} failed; retrying with backoff`);
      set("Stalled", stalled ? "True" : "False", stalled ? "RepeatedFailure" : "Progressing", stalled ? `${failures} consecutive failures; last: ${error}` : "");
    } else {
      const awaiting = outcome.parked.length > 0;
      set(
        "AwaitingApproval",
        awaiting ? "True" : "False",
        awaiting ? "ApprovalRequired" : "NoPendingApproval",
        outcome.parked.map((r) => `approval ${r.id}: ${r.summary} (${r.quorum} of ${r.approvers.length > 0 ? r.approvers.join(", ") : "the local operator"}, expires ${r.expiresAt})`).join("; "),
      );
      set("Stalled", outcome.refused ? "True" : "False", outcome.refused ? "GosutoRefused" : "Progressing", outcome.refused ? `the agent refused its Gosuto: ${outcome.refused}` : "");
      if (outcome.refused) {
        set("Ready", "False", "GosutoRefused", `the agent refused its Gosuto (the previous config stays in force): ${outcome.refused}`);
        set("Reconciling", "False", "Stalled", "fix the Gosuto in the manifests");
      } else if (outcome.converged && outcome.blocked.length === 0 && outcome.reported.length === 0 && outcome.parked.length === 0 && outcome.missingSecrets.length === 0 && !outcome.matrixProblem) {
        const c = outcome.observed;
        set("Ready", "True", "Converged", c ? `container ${c.state}, image ${c.image}` : "converged");
        set("Reconciling", "False", "Converged", "");
        appliedRevision = snapshot.revision;
        appliedSpecDigest = c?.specDigest ?? null;
      } else if (outcome.blocked.length > 0) {
        const r = outcome.blocked[0]!;
        set("Ready", "False", r.status === "denied" ? "ApprovalDenied" : "ApprovalExpired", `approval ${r.id} ${r.status}${r.decidedBy ? ` by ${r.decidedBy}` : ""}: ${r.summary}; change the manifest to propose again`);
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
        set("Ready", "False", "Progressing", outcome.waiting.join("; ") || outcome.executed.map((a) => a.reason).join("; ") || "converging");
        set("Reconciling", "True", outcome.waiting.length > 0 ? "CrashLoopBackOff" : "Progressing", outcome.waiting.join("; "));
      }
    }
    const status: AgentStatus = {
      agent,
      conditions,
      observedRevision: snapshot.revision,
      appliedRevision,
      appliedSpecDigest,
      lastError: error ?? outcome?.refused ?? (outcome && outcome.blocked.length === 0 ? null : (previous?.lastError ?? null)),
      failures,
      containerId: outcome?.observed?.id ?? previous?.containerId ?? null,
      containerState: outcome?.observed?.state ?? (outcome ? null : (previous?.containerState ?? null)),
      gosutoDigest: outcome?.agentReport?.gosutoDigest ?? previous?.gosutoDigest ?? null,
      secretsDigest: outcome?.agentReport?.secretsDigest ?? previous?.secretsDigest ?? null,
      updatedAt: now,
    };
    this.o.stores.status.put(status);
    if (this.o.onTransition) {
      for (const type of ["Ready", "Stalled", "AwaitingApproval"] as const) {
        const before = previous && conditionOf(previous.conditions, type);
        const after = conditionOf(conditions, type);
        if (after && (before?.status !== after.status || before.reason !== after.reason)) {
          this.o.onTransition({ agent, traceId, condition: after, ...(before ? { previous: before } : {}) });
        }
      }
    }
  }
}
