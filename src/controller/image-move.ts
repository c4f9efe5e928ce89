/**
 * A moved tag: the agent's image reference now resolves to another image than the one its running container
 * was created from (someone pushed a new image under the same tag, and it was pulled or built here). The
 * manifest did not change, yet the agent would run something else after any recreate: so it is a planned change
 * of the `image` field, shown with the digests it goes from and to, and gated like any image change. Pure.
 *
 * Example: `127.0.0.1:5000/agent:v1` ran as image id sha256:b27e…, a pull now resolves it to sha256:7eb2… →
 * recreate "image 127.0.0.1:5000/agent:v1 moved: digest sha256:a2bab3d3791c → sha256:5f0c2e4d1a9b", from
 * `image:sha256:b27e…` to `image:sha256:7eb2…` (what an approval is bound to).
 */
import type { ObservedContainer } from "../runtime/runtime.ts";
import type { Action } from "./changes.ts";

/** An image as the plan names it: the engine's id, and its registry digest in the reference's repository when known. */
export interface ImageIdentity {
  id: string;
  digest?: string;
}

/** What the observe step found for an agent whose tag moved (image-observer.ts). */
export interface ImageObservation {
  /** The reference, as the manifest gives it. */
  reference: string;
  /** The image the running container was created from. */
  running: ImageIdentity;
  /** The image the reference resolves to now. */
  resolved: ImageIdentity;
}

/** Prefix of a moved tag's from/to digests, which name images rather than specs. */
export const IMAGE_DIGEST_PREFIX = "image:";
export const imageDigestOf = (image: ImageIdentity): string => `${IMAGE_DIGEST_PREFIX}${image.id}`;

/** The move, when the observation is about this very container and reference and the image really differs. */
export function movedImage(observation: ImageObservation | undefined, current: Pick<ObservedContainer, "imageId">, image: string): ImageObservation | undefined {
  if (!observation || observation.reference !== image || current.imageId !== observation.running.id) return undefined;
  return observation.resolved.id !== observation.running.id ? observation : undefined;
}

const short = (digest: string) => digest.replace(/^(sha256:[a-f0-9]{12})[a-f0-9]*$/, "$1");

/** "image R moved: digest sha256:aaaaaaaaaaaa → sha256:bbbbbbbbbbbb" (registry digests when both are known, else image ids). */
export function describeImageMove(move: ImageObservation): string {
  const { running, resolved } = move;
  const [from, to, kind] = running.digest && resolved.digest ? [running.digest, resolved.digest, "digest"] : [running.id, resolved.id, "image id"];
  return `image ${move.reference} moved: ${kind} ${short(from)} → ${short(to)}`;
}

/** A recreate that follows a moved tag: its image is the one just resolved, so it is created without pulling again. */
export const isImageMove = (action: Action): boolean => action.type === "recreate" && action.toDigest.startsWith(IMAGE_DIGEST_PREFIX);
