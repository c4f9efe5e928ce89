/**
 * The controller: owns the snapshot in force and turns every trigger into "enqueue this key". Three
 * reconcilers, each with its own queue: agents, ApprovalPolicies (policies in force), secrets (their approved
 * deletions and rotations). Triggers: a new snapshot from the source; engine events (die, oom, stop, destroy;
 * a reconnect of the event stream resyncs everything); a periodic jittered resync; running agents whose ACP
 * /status has news (agent-probe.ts, every agent poll); and state changes any
 * process commits — approval decisions, secret writes — read from the state database's change feed the moment
 * they land (state-watcher.ts), and approval deadlines on a timer. Nothing polls for decisions.
 */
import { AcpClient } from "../acp/client.ts";
import { formatManifestError, type ManifestError } from "../api/errors.ts";
import type { AgentManifest } from "../api/generated/types.ts";
import { parseObjectKey } from "../api/kinds.ts";
import { objectsOfKind, type Snapshot } from "../api/snapshot.ts";
import type { ProposedChange } from "../approvals/gate.ts";
import { Gatekeeper } from "../approvals/gatekeeper.ts";
import { newTraceId, type Logger } from "../observability/logger.ts";
import type { AgentNetworkMode, EventSubscription, Runtime } from "../runtime/runtime.ts";
import { pullsWithSecret } from "../secrets/registry-credentials.ts";
import { reconcileSecret } from "../secrets/secret-changes.ts";
import type { ChangeAuthor } from "../store/approval-store.ts";
import type { ChangeFeed, StateChange } from "../store/change-feed.ts";
import type { PolicyStore } from "../store/policy-store.ts";
import type { RevisionStore } from "../store/revision-store.ts";
import { StateWatcher } from "../store/state-watcher.ts";
import { systemClock, type Clock } from "../time/clock.ts";
import { matrixTokenSecretOf } from "./agent-config.ts";
import { DEFAULT_AGENT_NETWORK } from "./agent-network.ts";
import { AgentProbe } from "./agent-probe.ts";
import { AgentReconciler, type AgentReconcilerOptions, type AppliedChange, type ReconcilerStores, type StatusTransition } from "./agent-reconciler.ts";
import { PolicyReconciler } from "./policy-reconciler.ts";
import { WorkQueue, type ReconcileResult } from "./work-queue.ts";

export interface ControllerOptions {
  runtime: Runtime;
  stores: ReconcilerStores & { revisions: RevisionStore; policies: PolicyStore; feed: ChangeFeed };
  vault: AgentReconcilerOptions["vault"];
  /** The state directory: its database's changes, by any process, are watched. */
  stateDir: string;
  acp?: AcpClient;
  logger: Logger;
  /** Who wrote a change (with a git source): their approval does not count on it. */
  authors?: (change: ProposedChange, revision: string) => Promise<ChangeAuthor[]>;
  /** How often to ask each Ready agent for its /status (drift inside the agent). */
  agentPollMs?: number;
  /** The homeserver URL agents use for their Matrix identity; undefined when Ruriko runs without Matrix. */
  agentMatrixHomeserver?: string;
  /** How agents' containers are networked (`serve --agent-network`): bridge (default) or host. */
  agentNetwork?: AgentNetworkMode;
  concurrency?: number;
  /** Look at every agent this often even without events; jittered ±10%. */
  resyncIntervalMs?: number;
  /** Let a snapshot with no agents prune every agent Ruriko runs (normally refused as a likely mistake). */
  allowEmpty?: boolean;
  stallAfterFailures?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Drives approval deadlines (a test moves it by hand). */
  clock?: Clock;
  /*
   * onTransition, onChange and onSnapshot are called inside the transaction that records what they tell of (the
   * status, the audit entry, the revision): a listener is synchronous and writes only to the state database (the
   * status room's outbox), so what it writes is kept exactly when the change is, whatever kill -9 interrupts.
   */
  onTransition?: (t: StatusTransition) => void;
  onChange?: (change: AppliedChange) => void;
  onSnapshot?: (event: SnapshotEvent) => void;
  onReconcile?: (agent: string, result: "success" | "error", durationMs: number) => void;
  /** State changes committed by any process (after the controller acted on them). */
  onStateChanges?: (changes: readonly StateChange[]) => void;
}

export type SnapshotEvent =
  | { outcome: "applied"; snapshot: Snapshot; traceId: string }
  | { outcome: "rejected"; snapshot: Snapshot; traceId: string; errors: readonly ManifestError[] };

/** Approval states the controller acts on: a decision, or a deadline passed. */
const DECIDED = new Set(["approved", "denied", "expired"]);

export class Controller {
  readonly queue: WorkQueue;
  readonly reconciler: AgentReconciler;
  private readonly policyQueue: WorkQueue;
  private readonly secretQueue: WorkQueue;
  private readonly policyReconciler: PolicyReconciler;
  private readonly gatekeeper: Gatekeeper;
  private readonly watcher: StateWatcher;
  private readonly probe: AgentProbe;
  private readonly clock: Clock;
  private readonly o: ControllerOptions;
  private current: Snapshot | undefined;
  private lastRejected: { revision: string; errors: readonly ManifestError[] } | undefined;
  private subscription: EventSubscription | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private cancelExpiry: (() => void) | undefined;
  private stopped = false;

  constructor(options: ControllerOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
    const { stores, logger } = options;
    const now = () => new Date(this.clock.now());
    this.gatekeeper = new Gatekeeper({ approvals: stores.approvals, audit: stores.audit, policies: () => stores.policies.manifests(), now, ...(options.authors ? { authors: options.authors } : {}) });
    const acp = options.acp ?? new AcpClient();
    this.reconciler = new AgentReconciler({
      ...options,
      acp,
      // Running agents are asked at every agent poll by the probe, which enqueues those whose answer has news; a
      // quiet agent's own requeue waits for the resync.
      agentPollMs: options.resyncIntervalMs ?? 5 * 60_000,
      gatekeeper: this.gatekeeper,
      desired: () => this.current,
      hasNewerTrigger: (agent) => this.queue.hasNewerTrigger(agent),
      ...(options.resyncIntervalMs !== undefined ? { resyncAfterMs: options.resyncIntervalMs } : {}),
      now,
    });
    this.policyReconciler = new PolicyReconciler({ ...stores, gatekeeper: this.gatekeeper, desired: () => this.current, logger, onChanged: (traceId) => this.enqueueAll(traceId, true), now });
    const queueOf = (kind: string, concurrency: number, handler: (key: string, traceId: string) => Promise<ReconcileResult>) =>
      new WorkQueue({
        concurrency,
        handler,
        ...(options.backoffBaseMs !== undefined ? { backoffBaseMs: options.backoffBaseMs } : {}),
        ...(options.backoffMaxMs !== undefined ? { backoffMaxMs: options.backoffMaxMs } : {}),
        onSuccess: (key, result, ms) => kind === "agent" && options.onReconcile?.(key, result.terminalError ? "error" : "success", ms),
        onFailure: (key, error, failures, retryInMs, ms) => {
          logger.warn({ [kind]: key, failures, retryInMs, err: error instanceof Error ? error.message : String(error) }, `${kind} reconcile failed; backing off`);
          if (kind === "agent") options.onReconcile?.(key, "error", ms);
        },
      });
    this.queue = queueOf("agent", options.concurrency ?? 4, (agent, traceId) => this.reconciler.reconcile(agent, traceId));
    this.policyQueue = queueOf("policy", 1, (name, traceId) => this.policyReconciler.reconcile(name, traceId));
    this.secretQueue = queueOf("secret", 1, async (name, traceId) => {
      await reconcileSecret({ secrets: options.vault.secrets, approvals: stores.approvals, audit: stores.audit, gatekeeper: this.gatekeeper, transaction: stores.transaction }, name, "controller", traceId);
      return {};
    });
    this.watcher = new StateWatcher({ dir: options.stateDir, feed: stores.feed, onChanges: (changes) => this.onStateChanges(changes), log: logger });
    this.probe = new AgentProbe({
      runtime: options.runtime,
      acp,
      status: stores.status,
      cursors: stores.eventCursors,
      tokens: options.vault.tokens,
      agentNetwork: options.agentNetwork ?? DEFAULT_AGENT_NETWORK,
      intervalMs: options.agentPollMs ?? 30_000,
      logger,
      enqueue: (agent, traceId) => this.queue.add(agent, traceId),
    });
  }

  /** The snapshot in force: the last one that validated. */
  get snapshot(): Snapshot | undefined {
    return this.current;
  }

  /** The newest snapshot that was refused, if it is newer than the one in force. */
  get rejected(): { revision: string; errors: readonly ManifestError[] } | undefined {
    return this.lastRejected;
  }

  start(): void {
    const { runtime, logger } = this.o;
    this.subscription = runtime.subscribe(
      (event) => {
        // Not "kill": it comes before the container has exited, and "die" follows it anyway.
        if (["die", "oom", "stop", "destroy", "restart"].includes(event.action)) this.queue.add(event.agent, newTraceId());
      },
      () => {
        logger.info("engine event stream reconnected: resyncing every agent");
        // Urgent, and from a clean slate: the engine being back is what the agents backing off after its
        // outage wait for; a failure right after it (the engine still settling) retries soon, not minutes later.
        this.queue.resetBackoff();
        this.enqueueAll(newTraceId(), true);
      },
    );
    const resync = this.o.resyncIntervalMs ?? 5 * 60_000;
    const scheduleResync = () => {
      this.resyncTimer = setTimeout(() => {
        this.enqueueAll(newTraceId(), false);
        scheduleResync();
      }, resync * (0.9 + 0.2 * Math.random())).unref();
    };
    scheduleResync();
    this.watcher.start();
    this.probe.start();
    // Decided while Ruriko was stopped: secret changes are carried out now (agents and policies all run at the first snapshot).
    for (const r of this.o.stores.approvals.list({ status: "approved", limit: 1000 })) this.enqueueRequest(r.agent, r.objectKey, r.traceId);
    this.armExpiry();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // Reconciles waiting on the engine (a pod to run: up to the start timeout) give up now, not at their timeouts.
    this.o.runtime.stopWaiting?.();
    this.subscription?.close();
    this.watcher.stop();
    this.probe.stop();
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.cancelExpiry?.();
    await Promise.all([this.queue.stop(), this.policyQueue.stop(), this.secretQueue.stop()]);
  }

  /** Asks every running agent now, as each agent poll does; resolves once each was asked (tests). */
  probeAgents(): Promise<void> {
    return this.probe.probeAll();
  }

  /** Reads the state changes committed so far, now, instead of when the file system says so (tests, in-process writers). */
  flushStateChanges(): void {
    this.watcher.check();
  }

  /**
   * Takes a snapshot from the source. One with errors is recorded and refused: the last good snapshot
   * stays in force and nothing is pruned (DESIGN.md §2.7). So is one that would remove every agent.
   */
  offer(snapshot: Snapshot): SnapshotEvent {
    const traceId = newTraceId();
    const { revisions, audit, inventory } = this.o.stores;
    let errors = snapshot.errors;
    const running = inventory.list().length;
    if (errors.length === 0 && objectsOfKind(snapshot, "Agent").length === 0 && running > 0 && !this.o.allowEmpty) {
      const message = `the desired state has no agents but Ruriko runs ${running}; refusing to prune them all (an empty or broken checkout?). Start with --allow-empty to allow it.`;
      errors = [{ code: "io", file: ".", line: 1, column: 1, path: "", message }];
    }
    if (errors.length > 0) {
      const event: SnapshotEvent = { outcome: "rejected", snapshot, traceId, errors };
      this.o.stores.transaction(() => {
        revisions.record({ revision: snapshot.revision, digest: snapshot.digest, outcome: "rejected", errors: [...errors], objects: snapshot.objects.size, traceId });
        audit.append({ traceId, actor: "controller", action: "revision.rejected", target: `revision/${snapshot.revision}`, payload: { errors: errors.slice(0, 50).map(formatManifestError), count: errors.length }, result: "refused" });
        this.o.onSnapshot?.(event);
      });
      this.o.logger.warn({ traceId, revision: snapshot.revision, errors: errors.slice(0, 20).map(formatManifestError) }, `revision ${snapshot.revision} refused: ${errors.length} error(s); the last good revision stays in force`);
      this.lastRejected = { revision: snapshot.revision, errors };
      return event;
    }
    this.lastRejected = undefined;
    const changed = this.current?.digest !== snapshot.digest || this.current?.revision !== snapshot.revision;
    const previous = this.current;
    this.current = snapshot;
    const event: SnapshotEvent = { outcome: "applied", snapshot, traceId };
    // Told before the reconciles it starts, so the revision heads the lines of what it caused.
    try {
      this.o.stores.transaction(() => {
        if (changed) {
          revisions.record({ revision: snapshot.revision, digest: snapshot.digest, outcome: "applied", errors: [], objects: snapshot.objects.size, traceId });
          audit.append({ traceId, actor: "controller", action: "revision.accepted", target: `revision/${snapshot.revision}`, payload: { digest: snapshot.digest, objects: snapshot.objects.size }, result: "ok" });
        }
        this.o.onSnapshot?.(event);
      });
    } catch (error) {
      // Not recorded (the database was locked past its busy timeout): not in force either, so offering it again does it all.
      this.current = previous;
      throw error;
    }
    if (changed) this.o.logger.info({ traceId, revision: snapshot.revision, objects: snapshot.objects.size }, `revision ${snapshot.revision} accepted`);
    if (this.policyReconciler.bootstrap(snapshot, traceId)) this.o.logger.info({ traceId, revision: snapshot.revision }, "first start: the revision's approval policies are in force");
    this.enqueueAll(traceId, true);
    return event;
  }

  /** Every agent Ruriko should look at (desired, in its inventory, or with a status row), and every policy. */
  private enqueueAll(traceId: string, urgent: boolean): void {
    if (this.stopped || !this.current) return;
    const names = new Set<string>();
    for (const a of objectsOfKind(this.current, "Agent")) names.add(a.name);
    for (const e of this.o.stores.inventory.list()) names.add(e.agent);
    for (const s of this.o.stores.status.list()) names.add(s.agent);
    for (const name of [...names].sort()) this.queue.add(name, traceId, { urgent });
    for (const name of this.policyReconciler.names(this.current)) this.policyQueue.add(name, traceId, { urgent });
  }

  /** What another part of Ruriko, or another process, committed: decisions and secret writes become triggers. */
  private onStateChanges(changes: readonly StateChange[]): void {
    if (this.stopped) return;
    const { approvals } = this.o.stores;
    let approvalsMoved = false;
    for (const change of changes) {
      if (change.topic === "approval") {
        approvalsMoved = true;
        const request = approvals.get(change.key);
        if (request && DECIDED.has(request.status)) this.enqueueRequest(request.agent, request.objectKey, request.traceId);
      } else {
        const traceId = newTraceId();
        for (const agent of this.agentsHolding(change.key)) this.queue.add(agent, traceId, { urgent: true });
        // Open requests about the secret's old value no longer apply.
        this.secretQueue.add(change.key, traceId);
      }
    }
    if (approvalsMoved) this.armExpiry();
    this.o.onStateChanges?.(changes);
  }

  private enqueueRequest(agent: string, key: string, traceId: string): void {
    const object = parseObjectKey(key);
    if (agent) this.queue.add(agent, traceId, { urgent: true });
    else if (object?.kind === "ApprovalPolicy") this.policyQueue.add(object.name, traceId, { urgent: true });
    else if (object?.kind === "Secret") this.secretQueue.add(object.name, traceId, { urgent: true });
  }

  /** Agents a write to secret `name` reaches: those granted it, those whose Matrix token it is, those whose image's registry credential it is. */
  private agentsHolding(name: string): string[] {
    const agents = new Set(this.o.stores.appliedConfig.agentsGranted(name));
    for (const a of this.current ? objectsOfKind(this.current, "Agent") : []) {
      if (matrixTokenSecretOf(a.object as AgentManifest, this.o.stores.matrixAccounts.current(a.name)) === name) agents.add(a.name);
      if (pullsWithSecret((a.object as AgentManifest).spec.image, name)) agents.add(a.name);
    }
    return [...agents].sort();
  }

  /** One timer, set for the next approval deadline: a request expires within moments of its expiresAt. */
  private armExpiry(minDelayMs = 0): void {
    this.cancelExpiry?.();
    const next = this.o.stores.approvals.nextDeadline();
    if (next === undefined || this.stopped) return;
    this.cancelExpiry = this.clock.after(Math.max(next - this.clock.now(), minDelayMs), () => {
      const { approvals, audit } = this.o.stores;
      try {
        for (const r of approvals.expireDue(new Date(this.clock.now()))) {
          audit.append({ traceId: r.traceId, actor: "controller", action: "approval.expired", target: `approval/${r.id}`, payload: { agent: r.agent, object: r.objectKey, summary: r.summary, reason: r.reason }, result: "info" });
        }
        this.watcher.check();
        this.armExpiry();
      } catch (error) {
        this.o.logger.warn({ err: (error as Error).message }, "cannot expire approval requests; trying again");
        this.armExpiry(1000);
      }
    });
  }
}
