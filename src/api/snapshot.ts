import { createHash } from "node:crypto";
import { compareManifestErrors, type ManifestError } from "./errors.ts";
import type { Kind, ManifestByKind, ObjectKey } from "./kinds.ts";
import type { LoadedObject } from "./parse.ts";
import { checkAcrossObjects, warningsAbout } from "./references.ts";

/**
 * A snapshot is one revision of desired state as a source produced it: the objects, a digest per object
 * and for the whole, and every error found. A snapshot with errors is never applied (DESIGN.md §2.7).
 */
export interface Snapshot {
  /** Where the revision came from: a commit SHA for git, the content digest for a directory. */
  revision: string;
  /** Digest of all object digests: changes exactly when some object's content changes. */
  digest: string;
  objects: ReadonlyMap<ObjectKey, LoadedObject>;
  errors: readonly ManifestError[];
  /** What is valid but deserves a word (a deprecated field): never a reason to refuse the revision. */
  warnings: readonly ManifestError[];
  /** Manifest files read, relative to the root. */
  files: readonly string[];
  /**
   * Digest of each file's bytes, comments included: a change proposed again from a touched file is a new
   * proposal (a denied change is asked about again), while the object digests above ignore formatting.
   */
  fileDigests: ReadonlyMap<string, string>;
}

export function buildSnapshot(input: {
  objects: readonly LoadedObject[];
  errors: readonly ManifestError[];
  files: readonly string[];
  fileDigests?: ReadonlyMap<string, string>;
  revision?: string;
  /** Warnings found while reading the tree (a symbolic link skipped), beside those about the objects. */
  warnings?: readonly ManifestError[];
}): Snapshot {
  const errors = [...input.errors, ...checkAcrossObjects(input.objects)].sort(compareManifestErrors);
  const objects = indexByKey(input.objects);
  const digest = digestOfObjects(objects.values());
  const warnings = [...(input.warnings ?? []), ...warningsAbout([...objects.values()])].sort(compareManifestErrors);
  return { revision: input.revision ?? digest, digest, objects, errors, warnings, files: [...input.files].sort(), fileDigests: input.fileDigests ?? new Map() };
}

/** The objects by key, in key order; of two with one key, the first (a duplicate, which is an error). */
export function indexByKey(objects: readonly LoadedObject[]): Map<ObjectKey, LoadedObject> {
  const index = new Map<ObjectKey, LoadedObject>();
  for (const obj of [...objects].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    if (!index.has(obj.key)) index.set(obj.key, obj);
  }
  return index;
}

/** sha256 of each object's `key digest` line, in key order: fed to the hash line by line, not joined first. */
function digestOfObjects(objects: Iterable<LoadedObject>): string {
  const hash = createHash("sha256");
  for (const o of objects) hash.update(`${o.key} ${o.digest}\n`);
  return `sha256:${hash.digest("hex")}`;
}

/** All objects of one kind, in name order, typed by kind. */
export function objectsOfKind<K extends Kind>(snapshot: Snapshot, kind: K): Array<LoadedObject & { object: ManifestByKind[K] }> {
  const out: Array<LoadedObject & { object: ManifestByKind[K] }> = [];
  for (const obj of snapshot.objects.values()) if (obj.kind === kind) out.push(obj as LoadedObject & { object: ManifestByKind[K] });
  return out;
}

export function isValid(snapshot: Snapshot): boolean {
  return snapshot.errors.length === 0;
}
