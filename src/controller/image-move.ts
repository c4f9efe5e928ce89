/**
 * A moved tag: the agent's image reference now resolves to another image than the one its running container
 * was created from (someone pushed a new image under the same tag, and it was pulled or built here). The
 * manifest did not change, yet the agent would run something else after any recreate: so it is a planned change
 * of the `image` field, shown with the digests it goes from and to, and gated like any image change. Pure.
 *
 * Example: `127.0.0.1:5000/agent:v1` ran as image id sha256:b27e…, a pull now resolves it to sha256:7eb2… →
 * recreate "image 127.0.0.1:5000/agent:v1 moved: digest sha256:a2bab3d3791c → sha256:5f0c2e4d1a9b", from
 * `image:sha256:b27e…` to `image:sha256:7eb2…` (what an approval is bound to).
 *
 * Until that change is approved, every container Ruriko makes for the agent (a heal after the container was
 * removed, another field's change) is made from the image it was approved to run, not from what the tag names
 * now: otherwise removing the container would walk the new image past the gate. Only when that image is gone
 * from the engine does the move become part of such a change (and is gated with it).
 */
import type { ObservedContainer } from "../runtime/runtime.ts";
import type { InventoryEntry } from "../store/inventory-store.ts";

/** An image as the plan names it: the engine's id, and its registry digest in the reference's repository when known. */
export interface ImageIdentity {
  id: string;
  digest?: string;
}

/** What the observe step found for an agent whose tag moved (image-observer.ts). */
export interface ImageObservation {
  /** The reference, as the manifest gives it. */
  reference: string;
  /** The image the agent is approved to run (approvedImage): the one its container was created from. */
  running: ImageIdentity & {
    /** Still on the engine, so a container can be made from it again (a heal) while the move waits. */
    present: boolean;
  };
  /** The image the reference resolves to now. */
  resolved: ImageIdentity;
}

/** Prefix of a moved tag's from/to digests, which name images rather than specs. */
export const IMAGE_DIGEST_PREFIX = "image:";
export const imageDigestOf = (image: ImageIdentity): string => `${IMAGE_DIGEST_PREFIX}${image.id}`;

/**
 * The image the agent is approved to run, while its spec names `image`: the one Ruriko last created its container
 * from (the inventory), else the one its container runs (rows older than that record). Undefined where nothing
 * was made yet, the engine cannot tell, or the reference changed (a new reference is a change of its own).
 */
export function approvedImage(image: string, current: Pick<ObservedContainer, "imageId"> | undefined, inventory: Pick<InventoryEntry, "spec" | "imageId"> | undefined): string | undefined {
  if (!inventory || inventory.spec.image !== image) return undefined;
  return inventory.imageId ?? current?.imageId;
}

/** The move, when the observation is about this very approved image and reference and the image really differs. */
export function movedImage(observation: ImageObservation | undefined, approved: string | undefined, image: string): ImageObservation | undefined {
  if (!observation || !approved || observation.reference !== image || approved !== observation.running.id) return undefined;
  return observation.resolved.id !== observation.running.id ? observation : undefined;
}

const short = (digest: string) => digest.replace(/^(sha256:[a-f0-9]{12})[a-f0-9]*$/, "$1");

/** "image R moved: digest sha256:aaaaaaaaaaaa → sha256:bbbbbbbbbbbb" (registry digests when both are known, else image ids). */
export function describeImageMove(move: ImageObservation): string {
  const { running, resolved } = move;
  const [from, to, kind] = running.digest && resolved.digest ? [running.digest, resolved.digest, "digest"] : [running.id, resolved.id, "image id"];
  return `image ${move.reference} moved: ${kind} ${short(from)} → ${short(to)}`;
}

