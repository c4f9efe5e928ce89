/**
 * Carries out an agent's container actions on the Runtime (create, recreate, start, stop, remove), recording
 * each step in the inventory before the next so that a crash in between is read correctly, and hands the new
 * container its ACP token before its first start. A container that keeps crashing is started again with a
 * growing delay (crash-loop backoff) instead of at once.
 */
import { ACP_TOKEN_FILE } from "../acp/protocol.ts";
import type { Logger } from "../observability/logger.ts";
import { networkModeOf, RuntimeError, type AgentNetworkMode, type ContainerSpec, type ObservedContainer, type ResolvedImage, type Runtime } from "../runtime/runtime.ts";
import type { AgentTokenStore } from "../store/agent-token-store.ts";
import type { ApprovalRequest, ApprovalStore } from "../store/approval-store.ts";
import type { AppliedConfigStore } from "../store/applied-config-store.ts";
import type { AuditLog } from "../store/audit-log.ts";
import type { InventoryStore } from "../store/inventory-store.ts";
import { backoffDelay } from "../time/backoff.ts";
import type { Action } from "./changes.ts";

/** A failed action, with the agent and the action that failed. */
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

export interface ContainerExecutorOptions {
  runtime: Runtime;
  inventory: InventoryStore;
  approvals: ApprovalStore;
  audit: AuditLog;
  appliedConfig: AppliedConfigStore;
  tokens: AgentTokenStore;
  /** Writes to several stores land together or not at all. */
  transaction: <T>(fn: () => T) => T;
  now: () => Date;
  /** Makes the spec's image present per its pull policy and returns it (ImageObserver.ensure). */
  ensureImage: (agent: string, spec: ContainerSpec, traceId: string) => Promise<ResolvedImage | undefined>;
  /** Called in the transaction that appends the action's audit entry: what it writes lands with the entry. */
  onExecuted?: (action: Action, traceId: string, approval?: ApprovalRequest) => void;
}

/**
 * Whether a new container gets its ACP token before its first start: only where the engine cannot write into a
 * running agent (Kubernetes: the file reaches a pod at its start only, so a later one would cost a second pod).
 * Elsewhere the handover waits until after the start, where it costs the path to a running agent nothing.
 */
export function handOverBeforeStart(runtime: Pick<Runtime, "agentFilesWhileRunning">): boolean {
  return !runtime.agentFilesWhileRunning;
}

/** Crash-loop restarts: 1 s, 2 s, 4 s … up to 5 minutes; a container that stayed up 10 minutes starts afresh. */
const CRASH_BACKOFF = { baseMs: 1000, maxMs: 5 * 60_000, jitter: 0 };
const CRASH_RESET_MS = 10 * 60_000;

export class ContainerExecutor {
  private readonly o: ContainerExecutorOptions;
  private readonly crashes = new Map<string, { count: number; lastStartAt: number }>();
  /**
   * The network mode whose shared network and the like are made sure of; again after any failure (it may have been
   * removed), and for a spec of another mode (a container put back as recorded, from before serve's mode changed).
   */
  private preparedFor: AgentNetworkMode | undefined;

  constructor(options: ContainerExecutorOptions) {
    this.o = options;
  }

  /** How long a start that repairs a crash must still wait (0: go now, and counted as a restart). */
  crashLoopWait(action: Action): number {
    if (action.type !== "start" || !action.drift) return 0;
    const now = this.o.now().getTime();
    const entry = this.crashes.get(action.agent);
    if (!entry || now - entry.lastStartAt > CRASH_RESET_MS) {
      this.crashes.set(action.agent, { count: 1, lastStartAt: now });
      return 0;
    }
    const wait = entry.lastStartAt + backoffDelay(entry.count, CRASH_BACKOFF) - now;
    if (wait > 0) return wait;
    this.crashes.set(action.agent, { count: entry.count + 1, lastStartAt: now });
    return 0;
  }

  forget(agent: string): void {
    this.crashes.delete(agent);
  }

  /** The engine went away: make sure of the shared network again before the next create. */
  engineLost(): void {
    this.preparedFor = undefined;
  }

  /**
   * Carries out one action. An approval is claimed (approved → applied) before anything is changed: one that
   * expired meanwhile stops the action, and one claimed is never used twice, even if the action fails halfway
   * (what it started is then finished as applied, see the planner).
   */
  async execute(action: Action, traceId: string, log: Logger, approval: ApprovalRequest | undefined): Promise<void> {
    const { runtime, inventory, audit } = this.o;
    const target = `Agent/${action.agent}`;
    const payload: Record<string, unknown> = { reason: action.reason, drift: action.drift, ...(approval ? { approval: approval.id } : {}) };
    const claim = () => this.claim(action, approval);
    log.info({ action: action.type, reason: action.reason }, `${action.type} ${action.agent}: ${action.reason}`);
    try {
      switch (action.type) {
        case "create":
        case "recreate":
          Object.assign(payload, await this.createContainer(action.agent, action.spec, action.type === "recreate" ? action.containerId : null, action.start, traceId, claim, action.imageId));
          break;
        case "start":
          payload.containerId = action.containerId;
          claim();
          inventory.setStopped(action.agent, false);
          try {
            await runtime.start(action.containerId);
          } catch (error) {
            // A container the engine will not start again is replaced, with the same spec and the same data
            // volume: after an engine restart containerd may still hold its old task ("task … already exists"),
            // or its host port may have been taken meanwhile. Retrying the start would fail forever.
            const entry = inventory.get(action.agent);
            if (!(error instanceof RuntimeError) || error.code === "engine-unavailable" || error.code === "interrupted" || !entry) throw error;
            log.warn({ containerId: action.containerId, err: error.message }, `start ${action.agent}: the engine will not start this container; replacing it`);
            const replaced = await this.createContainer(action.agent, entry.spec, action.containerId, true, traceId, () => {}, entry.imageId ?? undefined);
            Object.assign(payload, { replaced: action.containerId, startError: error.message }, replaced);
          }
          break;
        case "stop":
          claim();
          await runtime.stop(action.containerId);
          inventory.setStopped(action.agent, true);
          payload.containerId = action.containerId;
          break;
        case "remove":
          claim();
          if (action.containerId) await runtime.remove(action.containerId);
          payload.containerId = action.containerId;
          if (action.operation === "delete") {
            await runtime.removeAgentVolume(action.agent);
            inventory.forget(action.agent);
            this.o.appliedConfig.forget(action.agent);
            this.o.tokens.forget(action.agent);
          }
          break;
      }
      this.o.transaction(() => {
        audit.append({ traceId, actor: "controller", action: `agent.${action.type}`, target, payload, result: "ok" });
        this.o.onExecuted?.(action, traceId, approval);
      });
    } catch (error) {
      this.preparedFor = undefined;
      const message = error instanceof Error ? error.message : String(error);
      audit.append({ traceId, actor: "controller", action: `agent.${action.type}`, target, payload: { ...payload, error: message }, result: "error" });
      if (error instanceof RuntimeError) throw error;
      throw new ReconcileError(action.agent, action.type, `${action.type} ${action.agent}: ${message}`, { cause: error });
    }
  }

  private claim(action: Action, approval: ApprovalRequest | undefined): void {
    if (!approval || this.o.approvals.markApplied(approval.id, this.o.now())) return;
    const status = this.o.approvals.get(approval.id)?.status ?? "gone";
    throw new ReconcileError(action.agent, action.type, `approval ${approval.id} is ${status}, no longer approved: the change was not made and waits for a new decision`);
  }

  /** Gives the agent a new ACP token: sealed in the state database, written as a file into its data volume. */
  async handOverToken(agent: string, containerId: string, traceId: string): Promise<string> {
    const token = this.o.tokens.issue(agent, this.o.now());
    await this.o.runtime.writeAgentFile(containerId, ACP_TOKEN_FILE, Buffer.from(token, "utf8"));
    this.recordTokenIssued(agent, containerId, traceId);
    return token;
  }

  private recordTokenIssued(agent: string, containerId: string, traceId: string): void {
    this.o.audit.append({ traceId, actor: "controller", action: "agent.token.issued", target: `Agent/${agent}`, payload: { containerId }, result: "ok" });
  }

  /**
   * An agent that holds another token than Ruriko's (Ruriko's state restored from an older backup) takes no new
   * one while it runs (gitai/acp/control-token.ts): its container is stopped, handed a new token, and started again.
   * Nothing the agent holds is lost that Ruriko does not push again at once.
   */
  async restartWithNewToken(agent: string, containerId: string, traceId: string): Promise<string> {
    await this.o.runtime.stop(containerId);
    const token = await this.handOverToken(agent, containerId, traceId);
    await this.o.runtime.start(containerId);
    this.o.audit.append({ traceId, actor: "controller", action: "agent.token.restart", target: `Agent/${agent}`, payload: { containerId, reason: "the agent refused the token on record and the one handed over" }, result: "ok" });
    return token;
  }

  /**
   * Creates the agent's container beside `replacing` (stopped just before the new one starts, then removed),
   * starts it if asked, and hands it its ACP token. Every step is recorded in the inventory before the next, so a
   * crash in between is read correctly: the planner takes the recorded container as the agent's and removes others.
   */
  private async createContainer(agent: string, spec: ContainerSpec, replacing: string | null, start: boolean, traceId: string, claim: () => void, imageId?: string): Promise<Record<string, unknown>> {
    const { runtime, inventory } = this.o;
    if (this.preparedFor !== networkModeOf(spec)) {
      await runtime.prepare(spec);
      this.preparedFor = networkModeOf(spec);
    }
    // Before anything is removed: an image that cannot be had (missing, a failed pull) leaves the running agent as it was.
    const image: { id: string | null; byId?: boolean } = imageId ? await this.approvedImage(agent, spec, imageId, traceId) : { id: (await this.o.ensureImage(agent, spec, traceId))?.id ?? null };
    claim();
    // Forget the old id first: a crash from here until the new id is recorded reads as an interrupted change.
    inventory.record(agent, { containerId: null, spec, imageId: image.id, stopped: !start });
    const handOverFirst = handOverBeforeStart(runtime);
    // Where the token must be in place before the start, a container to start at once is created running with it:
    // on Kubernetes one write for the cluster to act on instead of a create and a scale.
    const token = handOverFirst && start ? this.o.tokens.issue(agent, this.o.now()) : undefined;
    // The new container is created beside the old one (which moves aside and keeps running meanwhile), so a
    // replace costs the old one's downtime only from its stop to the new one's start.
    let created: ObservedContainer;
    let running = token !== undefined;
    try {
      created = await runtime.create(spec, { ...(replacing ? { replacing } : {}), ...(image.byId && image.id ? { image: image.id } : {}), ...(token ? { running: { files: { [ACP_TOKEN_FILE]: Buffer.from(token, "utf8") } } } : {}) });
    } catch (error) {
      // A container of that name exists: an earlier run crashed after creating it. Adopt it if it matches.
      if (!(error instanceof RuntimeError && error.code === "conflict")) throw error;
      const existing = (await runtime.list(agent)).find((c) => c.agent === agent && c.specDigest === spec.specDigest);
      if (!existing) throw error;
      created = existing;
      running = false;
    }
    inventory.record(agent, { containerId: created.id, spec, imageId: image.id, stopped: !start });
    if (running) this.recordTokenIssued(agent, created.id, traceId);
    // Adopted instead: it gets a token of its own, and is started below.
    if (handOverFirst && !running) await this.handOverToken(agent, created.id, traceId);
    // The old container lets go of the data volume before the new one starts on it (SIGKILL, as removal did).
    if (replacing && !running) await runtime.stop(replacing, 0);
    if (start && !running) await runtime.start(created.id);
    // Where the engine can write into a running agent, after the start, beside the old container's removal, off
    // the path to a running agent: Gitai takes its token at its first request if it was not there at start
    // (gitai/acp/control-token.ts), and the first request is Ruriko's, made after this. Nothing else runs in the
    // container before Ruriko has configured it.
    await Promise.all([handOverFirst ? undefined : this.handOverToken(agent, created.id, traceId), replacing ? runtime.remove(replacing) : undefined]);
    return { containerId: created.id, specDigest: spec.specDigest, image: spec.image, ...(image.id ? { imageId: image.id } : {}), revision: spec.revision };
  }

  /**
   * Exactly the image `imageId`, for a container made without a gated image change (or after one was approved):
   * from the spec's reference while it names that image (what `docker ps` then shows), else from the id itself.
   * Never pulled past: a pull is made only when neither is on the engine, and must bring back that very image.
   * When it cannot be had, nothing is made: the planner sees the image gone and plans the move as a change.
   */
  private async approvedImage(agent: string, spec: ContainerSpec, imageId: string, traceId: string): Promise<{ id: string; byId: boolean }> {
    const named = await this.o.runtime.resolveImage(spec.image);
    if (named?.id === imageId) return { id: imageId, byId: false };
    if (await this.o.runtime.resolveImage(imageId)) return { id: imageId, byId: true };
    if (!named && (await this.o.ensureImage(agent, spec, traceId))?.id === imageId) return { id: imageId, byId: false };
    throw new ReconcileError(agent, "create", `the image ${agent} is approved to run (${imageId.slice(0, 19)}) is no longer on this host, and ${spec.image} names another image now: that change is planned, and waits for approval where the policy asks for it`);
  }
}
