/**
 * The controller: turns every trigger into "enqueue this agent's name" and owns the snapshot in force.
 * Triggers: a new snapshot from the source, engine events (die, oom, stop, destroy; a reconnect of the
 * event stream resyncs everything), a periodic jittered resync, and approval decisions and expiries
 * (found by polling the state database, which the CLI and the Matrix bot write to).
 */
import { AcpClient } from "../acp/client.ts";
import { formatManifestError, type ManifestError } from "../api/errors.ts";
import { objectsOfKind, type Snapshot } from "../api/snapshot.ts";
import { newTraceId, type Logger } from "../observability/logger.ts";
import { applySecretDeletion } from "../secrets/secret-deletion.ts";
import type { EventSubscription, Runtime } from "../runtime/runtime.ts";
import type { RevisionStore } from "../store/revision-store.ts";
import { Reconciler, type AppliedChange, type ReconcilerStores, type ReconcilerVault, type StatusTransition } from "./reconciler.ts";
import { WorkQueue } from "./work-queue.ts";

export interface ControllerOptions {
  runtime: Runtime;
  stores: ReconcilerStores & { revisions: RevisionStore };
  vault: ReconcilerVault;
  acp?: AcpClient;
  logger: Logger;
  /** How often to ask each Ready agent for its /status (drift inside the agent). */
  agentPollMs?: number;
  /** The homeserver URL agents use for their Matrix identity; undefined when Ruriko runs without Matrix. */
  agentMatrixHomeserver?: string;
  concurrency?: number;
  /** Look at every agent this often even without events; jittered ±10%. */
  resyncIntervalMs?: number;
  /** How often to look for approval decisions, expiries and reminders. */
  approvalPollMs?: number;
  /** Let a snapshot with no agents prune every agent Ruriko runs (normally refused as a likely mistake). */
  allowEmpty?: boolean;
  stallAfterFailures?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  onTransition?: (t: StatusTransition) => void;
  onChange?: (change: AppliedChange) => void;
  onSnapshot?: (event: SnapshotEvent) => void;
  onReconcile?: (agent: string, result: "success" | "error", durationMs: number) => void;
}

export type SnapshotEvent =
  | { outcome: "applied"; snapshot: Snapshot; traceId: string }
  | { outcome: "rejected"; snapshot: Snapshot; traceId: string; errors: readonly ManifestError[] };

export class Controller {
  readonly queue: WorkQueue;
  readonly reconciler: Reconciler;
  private readonly o: ControllerOptions;
  private current: Snapshot | undefined;
  private lastRejected: { revision: string; errors: readonly ManifestError[] } | undefined;
  private subscription: EventSubscription | undefined;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private secretsFingerprint = "";

  constructor(options: ControllerOptions) {
    this.o = options;
    this.reconciler = new Reconciler({
      runtime: options.runtime,
      stores: options.stores,
      vault: options.vault,
      acp: options.acp ?? new AcpClient(),
      desired: () => this.current,
      hasNewerTrigger: (agent) => this.queue.hasNewerTrigger(agent),
      ...(options.agentPollMs !== undefined ? { agentPollMs: options.agentPollMs } : {}),
      ...(options.agentMatrixHomeserver !== undefined ? { agentMatrixHomeserver: options.agentMatrixHomeserver } : {}),
      logger: options.logger,
      ...(options.stallAfterFailures !== undefined ? { stallAfterFailures: options.stallAfterFailures } : {}),
      ...(options.resyncIntervalMs !== undefined ? { resyncAfterMs: options.resyncIntervalMs } : {}),
      ...(options.onTransition ? { onTransition: options.onTransition } : {}),
      ...(options.onChange ? { onChange: options.onChange } : {}),
    });
    this.queue = new WorkQueue({
      concurrency: options.concurrency ?? 4,
      handler: (agent, traceId) => this.reconciler.reconcile(agent, traceId),
      ...(options.backoffBaseMs !== undefined ? { backoffBaseMs: options.backoffBaseMs } : {}),
      ...(options.backoffMaxMs !== undefined ? { backoffMaxMs: options.backoffMaxMs } : {}),
      onSuccess: (agent, _result, ms) => options.onReconcile?.(agent, "success", ms),
      onFailure: (agent, error, failures, retryInMs, ms) => {
        options.logger.warn({ agent, failures, retryInMs, err: error instanceof Error ? error.message : String(error) }, "reconcile failed; backing off");
        options.onReconcile?.(agent, "error", ms);
      },
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
        if (["die", "oom", "stop", "destroy"].includes(event.action)) {
          this.queue.add(event.agent, newTraceId());
        }
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
      const t = setTimeout(() => {
        this.enqueueAll(newTraceId(), false);
        scheduleResync();
      }, resync * (0.9 + 0.2 * Math.random()));
      t.unref();
      this.timers[0] = t;
    };
    scheduleResync();
    this.secretsFingerprint = this.o.vault.secrets.fingerprint();
    const poll = setInterval(() => {
      this.pollApprovals();
      this.pollSecrets();
    }, this.o.approvalPollMs ?? 2000);
    poll.unref();
    this.timers.push(poll);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.subscription?.close();
    for (const t of this.timers) clearTimeout(t);
    await this.queue.stop();
  }

  /**
   * Takes a snapshot from the source. One with errors is recorded and refused: the last good snapshot
   * stays in force and nothing is pruned (DESIGN.md §2.7). So is one that would remove every agent.
   */
  offer(snapshot: Snapshot): SnapshotEvent {
    const traceId = newTraceId();
    const { revisions, audit, inventory } = this.o.stores;
    let errors = snapshot.errors;
    const agents = objectsOfKind(snapshot, "Agent").length;
    const running = inventory.list().length;
    if (errors.length === 0 && agents === 0 && running > 0 && !this.o.allowEmpty) {
      errors = [
        {
          code: "io",
          file: ".",
          line: 1,
          column: 1,
          path: "",
          message: `the desired state has no agents but Ruriko runs ${running}; refusing to prune them all (an empty or broken checkout?). Start with --allow-empty to allow it.`,
        },
      ];
    }
    if (errors.length > 0) {
      revisions.record({ revision: snapshot.revision, digest: snapshot.digest, outcome: "rejected", errors: [...errors], objects: snapshot.objects.size, traceId });
      audit.append({ traceId, actor: "controller", action: "revision.rejected", target: `revision/${snapshot.revision}`, payload: { errors: errors.slice(0, 50).map(formatManifestError), count: errors.length }, result: "refused" });
      this.o.logger.warn({ traceId, revision: snapshot.revision, errors: errors.slice(0, 20).map(formatManifestError) }, `revision ${snapshot.revision} refused: ${errors.length} error(s); the last good revision stays in force`);
      this.lastRejected = { revision: snapshot.revision, errors };
      const event: SnapshotEvent = { outcome: "rejected", snapshot, traceId, errors };
      this.o.onSnapshot?.(event);
      return event;
    }
    this.lastRejected = undefined;
    const changed = this.current?.digest !== snapshot.digest || this.current?.revision !== snapshot.revision;
    this.current = snapshot;
    if (changed) {
      revisions.record({ revision: snapshot.revision, digest: snapshot.digest, outcome: "applied", errors: [], objects: snapshot.objects.size, traceId });
      audit.append({ traceId, actor: "controller", action: "revision.accepted", target: `revision/${snapshot.revision}`, payload: { digest: snapshot.digest, objects: snapshot.objects.size }, result: "ok" });
      this.o.logger.info({ traceId, revision: snapshot.revision, objects: snapshot.objects.size }, `revision ${snapshot.revision} accepted`);
    }
    this.enqueueAll(traceId, true);
    const event: SnapshotEvent = { outcome: "applied", snapshot, traceId };
    this.o.onSnapshot?.(event);
    return event;
  }

  /** Every agent Ruriko should look at: desired, in its inventory, or with a status row. */
  private enqueueAll(traceId: string, urgent: boolean): void {
    if (this.stopped || !this.current) return;
    const names = new Set<string>();
    for (const a of objectsOfKind(this.current, "Agent")) names.add(a.name);
    for (const e of this.o.stores.inventory.list()) names.add(e.agent);
    for (const s of this.o.stores.status.list()) names.add(s.agent);
    for (const name of [...names].sort()) this.queue.add(name, traceId, { urgent });
  }

  /**
   * `ruriko secret set|rotate|delete` writes from another process: when the store changed, every agent with
   * a binding or a Matrix identity is looked at again, so a rotation reaches it in its next reconcile.
   */
  private pollSecrets(): void {
    if (this.stopped || !this.current) return;
    try {
      const fingerprint = this.o.vault.secrets.fingerprint();
      if (fingerprint === this.secretsFingerprint) return;
      this.secretsFingerprint = fingerprint;
      const traceId = newTraceId();
      // Agents with a binding, and those with a Matrix identity (their token is in the store too).
      const bound = new Set(objectsOfKind(this.current, "SecretBinding").map((b) => b.object.spec.agent));
      for (const a of objectsOfKind(this.current, "Agent")) if (a.object.spec.matrix?.userId || a.object.spec.matrix?.provision) bound.add(a.name);
      this.o.logger.info({ traceId, agents: [...bound].sort() }, "secret store changed: reconciling bound agents");
      for (const agent of [...bound].sort()) this.queue.add(agent, traceId, { urgent: true });
    } catch (error) {
      this.o.logger.warn({ err: error instanceof Error ? error.message : String(error) }, "secret store poll failed");
    }
  }

  private pollApprovals(): void {
    if (this.stopped) return;
    const { approvals, audit } = this.o.stores;
    try {
      for (const expired of approvals.expireDue()) {
        audit.append({ traceId: expired.traceId, actor: "controller", action: "approval.expired", target: `approval/${expired.id}`, payload: { agent: expired.agent, summary: expired.summary }, result: "info" });
        this.queue.add(expired.agent, expired.traceId, { urgent: true });
      }
      for (const approved of approvals.list({ status: "approved", limit: 1000 })) {
        if (approved.objectKey.startsWith("Secret/")) {
          applySecretDeletion({ secrets: this.o.vault.secrets, approvals, audit }, approved, "controller", approved.traceId);
        } else this.queue.add(approved.agent, approved.traceId, { urgent: true });
      }
      for (const denied of approvals.list({ status: "denied", limit: 50 })) {
        const status = this.o.stores.status.get(denied.agent);
        if (status && status.conditions.some((c) => c.type === "AwaitingApproval" && c.status === "True" && c.message.includes(denied.id))) {
          this.queue.add(denied.agent, denied.traceId, { urgent: true });
        }
      }
    } catch (error) {
      this.o.logger.warn({ err: error instanceof Error ? error.message : String(error) }, "approval poll failed");
    }
  }
}
