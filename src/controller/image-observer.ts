/**
 * The agent's image, for the reconciler: made present per its pull policy before a container is created
 * (ContainerExecutor), and looked at while the agent runs, to notice a tag that moved (image-move.ts).
 *
 * Cost, on purpose: adding or changing an agent costs nothing here beyond the one image inspect the create
 * needs anyway (a new container is planned whatever the image resolves to). A running, converged agent costs
 * one image inspect per reconcile; with `Always`, also one registry check (a pull) per reference per resync
 * interval — not per reconcile, which the agent poll runs every 30 s. A failed check leaves the running agent
 * as it is: it is logged and tried again with backoff.
 */
import type { AgentManifest } from "../api/generated/types.ts";
import { objectsOfKind, type Snapshot } from "../api/snapshot.ts";
import { withTrace, type Logger } from "../observability/logger.ts";
import { digestIn, isPinned, parseImageReference } from "../runtime/image-reference.ts";
import { RuntimeError, type ContainerSpec, type ImagePullPolicy, type ObservedContainer, type RegistryCredentialLookup, type ResolvedImage, type Runtime } from "../runtime/runtime.ts";
import type { InventoryEntry } from "../store/inventory-store.ts";
import { BackoffTracker } from "../time/backoff.ts";
import { approvedImage, type ImageObservation } from "./image-move.ts";
import { currentContainer } from "./planner.ts";

export interface ImageObserverOptions {
  runtime: Pick<Runtime, "ensureImage" | "resolveImage">;
  credentials: RegistryCredentialLookup;
  /** How often an `Always` agent's registry is asked again while the agent runs (the resync interval). */
  recheckAfterMs: number;
  logger: Logger;
  now?: () => number;
}

/** Checks of a registry that failed are tried again after 30 s, 1 min, … up to the resync interval. */
const RECHECK_BACKOFF_BASE_MS = 30_000;

export class ImageObserver {
  private readonly o: ImageObserverOptions & { now: () => number };
  /** When each reference was last pulled with `Always` (by a create or a check). */
  private readonly checkedAt = new Map<string, number>();
  private readonly recheckFailures: BackoffTracker<string>;

  constructor(options: ImageObserverOptions) {
    this.o = { now: Date.now, ...options };
    this.recheckFailures = new BackoffTracker({ baseMs: RECHECK_BACKOFF_BASE_MS, maxMs: Math.max(RECHECK_BACKOFF_BASE_MS, options.recheckAfterMs) }, { now: this.o.now });
  }

  /**
   * Before a container is created from the spec's reference, and before anything is removed: the image present
   * per the spec's policy; returns it (undefined where the engine cannot tell).
   */
  ensure(agent: string, spec: ContainerSpec, traceId: string): Promise<ResolvedImage | undefined> {
    return this.ensureImage(agent, spec.image, spec.imagePullPolicy ?? "IfNotPresent", traceId);
  }

  /**
   * What the agent's reference resolves to now, when that is another image than the one the agent is approved
   * to run (image-move.ts approvedImage); undefined when it is not, or cannot matter: no container made yet, or a
   * reference pinned by digest (it cannot move). With the container gone, the reference checked is the applied
   * spec's: a heal puts that back.
   */
  async observe(agent: string, spec: ContainerSpec | undefined, current: ObservedContainer | undefined, inventory: InventoryEntry | undefined, traceId: string): Promise<ImageObservation | undefined> {
    if (!spec) return undefined;
    const image = !current && inventory ? inventory.spec.image : spec.image;
    const approved = approvedImage(image, current, inventory);
    if (!approved || isPinned(image)) return undefined;
    if (spec.imagePullPolicy === "Always" && image === spec.image) await this.recheck(agent, image, traceId);
    return imageMoveOf(this.o.runtime, image, approved);
  }

  private async ensureImage(agent: string, image: string, policy: ImagePullPolicy, traceId: string): Promise<ResolvedImage | undefined> {
    const log = withTrace(this.o.logger, traceId, { agent });
    const resolved = await this.o.runtime.ensureImage({ agent, image, policy, credentials: this.o.credentials, log });
    if (policy === "Always") {
      this.checkedAt.set(image, this.o.now());
      this.recheckFailures.succeeded(image);
    }
    return resolved;
  }

  /** `Always` while running: pulls again once the resync interval has passed since the last pull of the reference. */
  private async recheck(agent: string, image: string, traceId: string): Promise<void> {
    const last = this.checkedAt.get(image);
    if ((last !== undefined && this.o.now() - last < this.o.recheckAfterMs) || this.recheckFailures.waiting(image)) return;
    try {
      await this.ensureImage(agent, image, "Always", traceId);
    } catch (error) {
      if (error instanceof RuntimeError && (error.code === "engine-unavailable" || error.code === "interrupted")) throw error;
      const { retryAt } = this.recheckFailures.failed(image);
      withTrace(this.o.logger, traceId)
        .child({ agent })
        .warn({ image, retryAt: new Date(retryAt).toISOString(), err: error instanceof Error ? error.message : String(error) }, `checking image ${image} for a newer version failed; the agent keeps running what it runs`);
    }
  }
}

/**
 * What `image` resolves to on the engine now, when that is another image than `runningId`: one image inspect,
 * and a second (of the running image: still there? its registry digest) only when it moved. No pull.
 */
export async function imageMoveOf(runtime: Pick<Runtime, "resolveImage">, image: string, runningId: string): Promise<ImageObservation | undefined> {
  const resolved = await runtime.resolveImage(image);
  if (!resolved || resolved.id === runningId) return undefined;
  const reference = parseImageReference(image);
  const running = await runtime.resolveImage(runningId);
  const digestOf = (repoDigests: readonly string[] | undefined) => (reference && repoDigests ? digestIn(repoDigests, reference) : undefined);
  const [runningDigest, resolvedDigest] = [digestOf(running?.repoDigests), digestOf(resolved.repoDigests)];
  return {
    reference: image,
    running: { id: runningId, present: running !== undefined, ...(runningDigest ? { digest: runningDigest } : {}) },
    resolved: { id: resolved.id, ...(resolvedDigest ? { digest: resolvedDigest } : {}) },
  };
}

/**
 * For `ruriko plan` and `/ruriko plan`: the moved tags of the agents running here, as the engine resolves them
 * now (no pull: a plan changes nothing). One inspect per distinct reference and running image, however many
 * agents share them.
 */
export async function imageMovesFor(runtime: Pick<Runtime, "resolveImage">, snapshot: Snapshot, observed: readonly ObservedContainer[], inventory: (agent: string) => InventoryEntry | undefined): Promise<Map<string, ImageObservation>> {
  const byAgent = Map.groupBy(observed, (c) => c.agent);
  const memo = new Map<string, Promise<ImageObservation | undefined>>();
  const moves = new Map<string, ImageObservation>();
  for (const { name, object } of objectsOfKind(snapshot, "Agent")) {
    const entry = inventory(name);
    const current = currentContainer(byAgent.get(name) ?? [], entry?.containerId);
    // As ImageObserver.observe: with the container gone, a heal puts back the applied spec's reference.
    const image = !current && entry ? entry.spec.image : (object as AgentManifest).spec.image;
    const approved = approvedImage(image, current, entry);
    if (!approved || isPinned(image)) continue;
    const key = `${image}\0${approved}`;
    if (!memo.has(key)) memo.set(key, imageMoveOf(runtime, image, approved));
    const move = await memo.get(key);
    if (move) moves.set(name, move);
  }
  return moves;
}
