/**
 * reconcile(agent): the one idempotent step of the controller for an agent. It receives only the agent's name
 * and reads as five named steps:
 *
 *   observe → plan → gate → act → status
 *
 * observe reads the desired state (the snapshot in force), the engine and Ruriko's records of what it applied;
 * plan (planner.ts, pure) lists every change that converges them; gate (approvals/) decides which run now,
 * which wait for people and which stay refused; act carries out those that run and makes the running agent
 * hold what was applied (agent-sync.ts); status (agent-status.ts, pure) is written once, at the end. Running it
 * twice in a row does nothing the second time.
 */
import { createServer } from "node:net";
import type { AcpClient } from "../acp/client.ts";
import type { Snapshot } from "../api/snapshot.ts";
import type { Gatekeeper } from "../approvals/gatekeeper.ts";
import type { Verdict } from "../approvals/gate.ts";
import { withTrace, type Logger } from "../observability/logger.ts";
import { ImagePullError, RuntimeError, type AgentNetworkMode, type ObservedContainer, type Runtime } from "../runtime/runtime.ts";
import { registryCredentialsFrom } from "../secrets/registry-credentials.ts";
import type { AgentEventCursorStore } from "../store/agent-event-cursor-store.ts";
import type { AgentStatusStore, Condition } from "../store/agent-status-store.ts";
import type { AgentTokenStore } from "../store/agent-token-store.ts";
import type { ApprovalRequest, ApprovalStore } from "../store/approval-store.ts";
import type { AppliedConfig, AppliedConfigStore } from "../store/applied-config-store.ts";
import type { AuditLog } from "../store/audit-log.ts";
import type { InventoryEntry, InventoryStore } from "../store/inventory-store.ts";
import type { MatrixAccountStore } from "../store/matrix-account-store.ts";
import type { SecretStore } from "../store/secret-store.ts";
import { desiredAgentOf, type DesiredAgent } from "./agent-config.ts";
import { DEFAULT_AGENT_NETWORK, isNamedNetwork } from "./agent-network.ts";
import { emptyOutcome, nextAgentStatus, transitionsOf, type AgentOutcome } from "./agent-status.ts";
import { AgentSync, type AgentConfigEvent } from "./agent-sync.ts";
import { ContainerExecutor, ReconcileError } from "./container-executor.ts";
import { ImageObserver } from "./image-observer.ts";
import { appliedHostPort, containerSpecFor, HOST_PORT_RANGE, hostPortCandidates } from "./container-spec.ts";
import { isContainerAction, proposalOf, type Action, type Change, type ConfigChange } from "./changes.ts";
import { currentContainer, planAgent, type AgentPlan, type AgentPlanInput } from "./planner.ts";
import type { ReconcileResult } from "./work-queue.ts";

export interface ReconcilerStores {
  status: AgentStatusStore;
  inventory: InventoryStore;
  approvals: ApprovalStore;
  audit: AuditLog;
  matrixAccounts: MatrixAccountStore;
  appliedConfig: AppliedConfigStore;
  /** How far the audit log has read each agent's decision journal (GET /events). */
  eventCursors: AgentEventCursorStore;
  /** Writes to several stores land together or not at all. */
  transaction<T>(fn: () => T): T;
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
export type AppliedChange = { agent: string; traceId: string; what: "container"; action: Action["type"]; reason: string; drift: boolean; approval?: string } | AgentConfigEvent;

export interface AgentReconcilerOptions {
  runtime: Runtime;
  stores: ReconcilerStores;
  vault: { secrets: SecretStore; tokens: AgentTokenStore };
  acp: AcpClient;
  gatekeeper: Gatekeeper;
  /** The snapshot in force (the last good one), or undefined before the first. */
  desired: () => Snapshot | undefined;
  logger: Logger;
  /** How often to ask a Ready agent for its /status, to catch drift inside it. */
  agentPollMs?: number;
  /** The homeserver URL agents use for their Matrix identity; undefined when Ruriko runs without Matrix. */
  agentMatrixHomeserver?: string;
  /** How agents' containers are networked (`serve --agent-network`); default bridge. */
  agentNetwork?: AgentNetworkMode;
  /** How long a started agent may take to answer ACP before that is an error. */
  agentStartGraceMs?: number;
  /**
   * How long one reconcile waits for a starting agent to answer before handing back its worker (default 1 s:
   * Gitai answers 150–200 ms after its start; past that a requeue asks again, and a fleet starting at once does
   * not hold every worker on agents that are slow to boot).
   */
  agentBootWaitMs?: number;
  /** True when a newer trigger arrived for the agent: stop waiting, it runs again. */
  hasNewerTrigger?: (agent: string) => boolean;
  /** Consecutive failures after which the agent is reported Stalled (retries go on, backed off). */
  stallAfterFailures?: number;
  /** How often to look again at a Ready agent even without events. */
  resyncAfterMs?: number;
  /** Called in the transaction that writes the status (see ControllerOptions). */
  onTransition?: (transition: StatusTransition) => void;
  /** Called in the transaction that records the change in the audit log (see ControllerOptions). */
  onChange?: (change: AppliedChange) => void;
  now?: () => Date;
}

/** Everything reconcile reads about one agent. */
type World = Omit<AgentPlanInput, "desired" | "applied"> & { desired: DesiredAgent | undefined; applied: AppliedConfig };

export class AgentReconciler {
  private readonly o: AgentReconcilerOptions & { now: () => Date };
  private readonly executor: ContainerExecutor;
  private readonly sync: AgentSync;
  private readonly images: ImageObserver;
  /**
   * Host mode: the port chosen for each agent whose container does not record one yet (its create or recreate
   * not carried out yet, parked for approval, say). Held so every reconcile until then plans the same spec.
   */
  private readonly chosenHostPorts = new Map<string, number>();

  constructor(options: AgentReconcilerOptions) {
    this.o = { now: () => new Date(), ...options };
    const { stores, vault, now } = this.o;
    this.images = new ImageObserver({ runtime: options.runtime, credentials: registryCredentialsFrom(vault.secrets), recheckAfterMs: options.resyncAfterMs ?? 5 * 60_000, logger: options.logger, now: () => now().getTime() });
    this.executor = new ContainerExecutor({
      runtime: options.runtime,
      inventory: stores.inventory,
      approvals: stores.approvals,
      audit: stores.audit,
      appliedConfig: stores.appliedConfig,
      tokens: vault.tokens,
      transaction: (fn) => stores.transaction(fn),
      now,
      ensureImage: (agent, spec, traceId) => this.images.ensure(agent, spec, traceId),
      onExecuted: (a, traceId, approval) => this.o.onChange?.({ agent: a.agent, traceId, what: "container", action: a.type, reason: a.reason, drift: a.drift, ...(approval ? { approval: approval.id } : {}) }),
    });
    this.sync = new AgentSync({
      acp: options.acp,
      secrets: vault.secrets,
      tokens: vault.tokens,
      matrixAccounts: stores.matrixAccounts,
      audit: stores.audit,
      eventCursors: stores.eventCursors,
      transaction: (fn) => stores.transaction(fn),
      handOverToken: (agent, containerId, traceId) => this.executor.handOverToken(agent, containerId, traceId),
      restartWithNewToken: (agent, containerId, traceId) => this.executor.restartWithNewToken(agent, containerId, traceId),
      ...(options.agentMatrixHomeserver !== undefined ? { agentMatrixHomeserver: options.agentMatrixHomeserver } : {}),
      agentNetwork: options.agentNetwork ?? DEFAULT_AGENT_NETWORK,
      agentStartGraceMs: options.agentStartGraceMs ?? 60_000,
      ...(options.hasNewerTrigger ? { hasNewerTrigger: options.hasNewerTrigger } : {}),
      onEvent: (event) => this.o.onChange?.(event),
      now,
    });
  }

  async reconcile(agent: string, traceId: string): Promise<ReconcileResult> {
    const snapshot = this.o.desired();
    // Before the first good snapshot there is nothing to converge to, and nothing may be pruned.
    if (!snapshot) return {};
    const log = withTrace(this.o.logger, traceId, { agent });
    const previous = this.o.stores.status.get(agent);
    let outcome = emptyOutcome();
    let world: World | undefined;
    let failure: unknown;
    try {
      world = await this.observe(agent, snapshot, traceId);
      const plan = planAgent(world);
      const verdicts = await this.gate(plan, world, snapshot.revision, traceId);
      outcome = await this.act(world, plan, verdicts, snapshot.revision, traceId, log);
    } catch (error) {
      // Serve is stopping (runtime.stopWaiting): what this reconcile did is recorded step by step, and the next start
      // goes on from there. Not a failure to report: no status, no warning, no message in the status room.
      if (error instanceof RuntimeError && error.code === "interrupted") return {};
      failure = error;
      outcome.error = failureOf(error);
      if (error instanceof RuntimeError && error.code === "engine-unavailable") this.executor.engineLost();
      log.warn({ err: outcome.error.message, terminal: outcome.error.terminal }, "reconcile failed");
    }
    if (world && !world.desired && outcome.converged) {
      this.o.stores.status.delete(agent);
      this.executor.forget(agent);
      this.sync.forget(agent);
      return {};
    }
    this.writeStatus(agent, previous, outcome, snapshot.revision, traceId);
    if (outcome.error) {
      // A terminal failure waits for something to change (a revision, a resync), never for a backoff timer.
      if (outcome.error.terminal) return { terminalError: outcome.error.message };
      throw failure;
    }
    if (outcome.requeueAfterMs !== undefined) return { requeueAfterMs: outcome.requeueAfterMs };
    const resyncAfterMs = this.o.resyncAfterMs ?? 5 * 60_000;
    if (outcome.agentReport) return { requeueAfterMs: Math.min(this.o.agentPollMs ?? 30_000, resyncAfterMs) };
    return outcome.converged ? { requeueAfterMs: resyncAfterMs } : {};
  }

  private async observe(agent: string, snapshot: Snapshot, traceId: string): Promise<World> {
    const { inventory, appliedConfig, matrixAccounts } = this.o.stores;
    const observed = (await this.o.runtime.list(agent)).filter((c) => c.agent === agent);
    const entry = inventory.get(agent);
    let desired = desiredAgentOf(snapshot, agent, matrixAccounts.current(agent));
    if (!desired) this.chosenHostPorts.delete(agent);
    else if (this.o.agentNetwork === "host") desired = { ...desired, spec: containerSpecFor(desired.manifest, snapshot.revision, { network: "host", port: await this.hostPortFor(agent, entry) }) };
    else if (isNamedNetwork(this.o.agentNetwork)) desired = { ...desired, spec: containerSpecFor(desired.manifest, snapshot.revision, { network: this.o.agentNetwork }) };
    // Has the tag of the image it is approved to run moved? (One image inspect; none before its first container.)
    const image = await this.images.observe(agent, desired?.spec, currentContainer(observed, entry?.containerId), entry, traceId);
    return { agent, observed, applied: appliedConfig.get(agent), ...(entry ? { inventory: entry } : {}), desired, ...(image ? { image } : {}) };
  }

  /**
   * The 127.0.0.1 port of a host-networked agent: the one its applied spec records (kept, so a re-plan sees no
   * difference), else the one chosen for it earlier, else the first free one of its candidates, chosen now.
   */
  private async hostPortFor(agent: string, entry: InventoryEntry | undefined): Promise<number> {
    const applied = appliedHostPort(entry?.spec);
    if (applied !== undefined) {
      this.chosenHostPorts.delete(agent);
      return applied;
    }
    const chosen = this.chosenHostPorts.get(agent);
    if (chosen !== undefined) return chosen;
    const taken = new Set<number | undefined>([...this.o.stores.inventory.list().map((e) => appliedHostPort(e.spec)), ...this.chosenHostPorts.values()]);
    for (const port of hostPortCandidates(agent)) {
      if (taken.has(port)) continue;
      // Held before the probe: agents reconciled at the same time never pick the same port.
      this.chosenHostPorts.set(agent, port);
      if (await isFreeOnLoopback(port)) return port;
      this.chosenHostPorts.delete(agent);
    }
    const last = HOST_PORT_RANGE.first + HOST_PORT_RANGE.count - 1;
    throw new ReconcileError(agent, "observe", `no free 127.0.0.1 port in ${HOST_PORT_RANGE.first}–${last} for its host-networked container`);
  }

  /** The verdicts of the plan's changes, then of its deferred ones (gated too, so that their requests stay). */
  private gate(plan: AgentPlan, world: World, revision: string, traceId: string): Promise<Verdict[]> {
    const driftMode = world.desired?.manifest.spec.drift ?? "heal";
    return this.o.gatekeeper.decide({ agent: plan.agent }, [...plan.changes, ...plan.deferred].map((c) => proposalOf(c, driftMode)), { revision, traceId });
  }

  private async act(world: World, plan: AgentPlan, verdicts: readonly Verdict[], revision: string, traceId: string, log: Logger): Promise<AgentOutcome> {
    const outcome = emptyOutcome();
    outcome.reported = plan.reported.map((r) => r.message);
    const runnable: Array<{ change: Change; approval?: ApprovalRequest }> = [];
    plan.changes.forEach((change, i) => {
      const v = verdicts[i]!;
      if (v.verdict === "run") runnable.push({ change, ...(v.approval ? { approval: v.approval } : {}) });
      else if (v.verdict === "park") outcome.parked.push(v.request!);
      else outcome.blocked.push(v.request);
    });

    let containersChanged = false;
    for (const { change, approval } of runnable) {
      if (!isContainerAction(change)) continue;
      const wait = this.executor.crashLoopWait(change);
      if (wait > 0) {
        outcome.waiting.push(`${change.reason} (crash loop: next start in ${Math.ceil(wait / 1000)}s)`);
        outcome.requeueAfterMs = wait;
        continue;
      }
      await this.executor.execute(change, traceId, log, approval);
      outcome.executed.push(change);
      containersChanged = true;
    }
    const config = runnable.filter((r): r is { change: ConfigChange; approval?: ApprovalRequest } => !isContainerAction(r.change));
    if (config.length > 0) this.recordApplied(world.agent, config, revision, traceId);
    outcome.executed.push(...config.map((r) => r.change));
    // A deferred change runs in a later pass; one parked says so in the status now.
    for (const v of verdicts.slice(plan.changes.length)) {
      if (v.verdict === "park") outcome.parked.push(v.request!);
      else if (v.verdict === "block") outcome.blocked.push(v.request);
    }
    outcome.converged = runnable.length === plan.changes.length && plan.deferred.length === 0 && outcome.waiting.length === 0;

    const container: ObservedContainer | undefined = containersChanged
      ? currentContainer((await this.o.runtime.list(world.agent)).filter((c) => c.agent === world.agent), this.o.stores.inventory.get(world.agent)?.containerId)
      : currentContainer(world.observed, world.inventory?.containerId);
    if (container) outcome.observed = container;
    const desired = world.desired;
    if (desired && desired.manifest.spec.state !== "Stopped" && container?.state === "running") {
      const applied = containersChanged || config.length > 0 ? this.o.stores.appliedConfig.get(world.agent) : world.applied;
      // Wait for boot only for a container this reconcile started: one that merely looks running may be dying.
      const startedHere = outcome.executed.some((a) => a.type === "create" || a.type === "recreate" || a.type === "start");
      const synced = await this.sync.sync({ manifest: desired.manifest, observed: container, applied, bindings: desired.bindings, bootWaitMs: startedHere ? (this.o.agentBootWaitMs ?? 1000) : 0, traceId, log });
      if (synced.report) outcome.agentReport = synced.report;
      if (synced.refused) outcome.refused = synced.refused;
      if (synced.matrixProblem) outcome.matrixProblem = synced.matrixProblem;
      outcome.missingSecrets = synced.missingSecrets;
      if (synced.waiting) {
        outcome.waiting.push(synced.waiting);
        outcome.converged = false;
        if (synced.requeueAfterMs !== undefined) outcome.requeueAfterMs = synced.requeueAfterMs;
      }
    }
    return outcome;
  }

  /** Records config changes the gate let through as applied (the agent sync then delivers them), in one transaction. */
  private recordApplied(agent: string, changes: ReadonlyArray<{ change: ConfigChange; approval?: ApprovalRequest }>, revision: string, traceId: string): void {
    const { appliedConfig, approvals, audit } = this.o.stores;
    const now = this.o.now();
    this.o.stores.transaction(() => {
      for (const { change, approval } of changes) {
        switch (change.type) {
          case "gosuto":
            appliedConfig.setGosuto(agent, change.gosuto, revision, now);
            break;
          case "grant":
            appliedConfig.grant(agent, { binding: change.binding.binding, secret: change.binding.secret, env: change.binding.env ?? null, digest: change.binding.digest, approvalId: approval?.id ?? null }, revision, now);
            break;
          case "revoke":
            appliedConfig.revoke(agent, change.binding);
            break;
          case "identity":
            appliedConfig.setMatrixUserId(agent, change.userId, revision, now);
            break;
        }
        // Claimed in the same transaction: an approval that expired since the gate rolls the whole record back.
        if (approval && !approvals.markApplied(approval.id, now)) throw new ReconcileError(agent, change.type, `approval ${approval.id} is no longer approved: ${change.reason} waits for a new decision`);
        audit.append({
          traceId,
          actor: "controller",
          action: `agent.${change.type}`,
          target: `Agent/${agent}`,
          payload: { object: `${change.kind}/${change.object}`, reason: change.reason, fromDigest: change.fromDigest, toDigest: change.toDigest, revision, ...(approval ? { approval: approval.id } : {}) },
          result: "ok",
        });
      }
    });
  }

  private writeStatus(agent: string, previous: ReturnType<AgentStatusStore["get"]>, outcome: AgentOutcome, revision: string, traceId: string): void {
    const next = nextAgentStatus(previous, outcome, { agent, revision, now: this.o.now().toISOString(), stallAfterFailures: this.o.stallAfterFailures ?? 5 });
    // The status and what the status room hears of it land together (a kill -9 keeps both or neither).
    this.o.stores.transaction(() => {
      this.o.stores.status.put(next);
      for (const t of transitionsOf(previous, next)) this.o.onTransition?.({ agent, traceId, ...t });
    });
  }
}

/** True when nothing listens on 127.0.0.1:port now (a host-networked agent's Gitai will listen there). */
function isFreeOnLoopback(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen({ port, host: "127.0.0.1", exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/**
 * A failure as the status tells it. Terminal (retried on the next revision, resync or registry credential write,
 * not with backoff): an image missing under `imagePullPolicy: Never`, and a pull the registry said no to.
 */
function failureOf(error: unknown): NonNullable<AgentOutcome["error"]> {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof RuntimeError && error.code === "image-missing") return { message, terminal: true, reason: "ImageMissing" };
  if (error instanceof ImagePullError) return { message, terminal: error.failure.definitive, reason: "ImagePullFailed" };
  return { message, terminal: false };
}
