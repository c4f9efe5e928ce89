/**
 * The last known state of each owned object of one kind, by name: what the watch delivered, and what Ruriko's own
 * writes and reads returned. Pure (no client): kubernetes-informers.ts feeds it.
 *
 * Writes go in as well as watch events so that Ruriko reads its own writes (a create is in the next list, a scale
 * in the next start) before the watch delivers them. An event can then arrive older than what is held (the watch
 * is behind the write): the newer object wins, by resourceVersion.
 */
import type { KubernetesObject } from "@kubernetes/client-node";

/**
 * Kubernetes calls resourceVersions opaque, but etcd's are one growing integer per cluster, and the objects
 * of one list and watch all come from it: ordered when both are integers, else undefined (unordered).
 */
export function compareResourceVersions(a: string | undefined, b: string | undefined): number | undefined {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return undefined;
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** One object's change as held: absent before (added), absent after (deleted). */
export interface Change<T> {
  before: T | undefined;
  after: T | undefined;
}

export class ObjectStore<T extends KubernetesObject> {
  private readonly objects = new Map<string, T>();
  /** Names by the index key (an agent's objects, found without going through every agent's). */
  private readonly index = new Map<string, Set<string>>();
  private readonly keyOf: (object: T) => string | undefined;

  constructor(keyOf: (object: T) => string | undefined = () => undefined) {
    this.keyOf = keyOf;
  }

  get(name: string): T | undefined {
    return this.objects.get(name);
  }

  /** The objects whose index key is `key`. */
  *indexed(key: string): IterableIterator<T> {
    for (const name of this.index.get(key) ?? []) yield this.objects.get(name)!;
  }

  values(): IterableIterator<T> {
    return this.objects.values();
  }

  get size(): number {
    return this.objects.size;
  }

  clear(): void {
    this.objects.clear();
    this.index.clear();
  }

  private set(name: string, object: T, held: T | undefined): void {
    if (held) this.unindex(name, held);
    this.objects.set(name, object);
    const key = this.keyOf(object);
    if (key === undefined) return;
    const names = this.index.get(key) ?? new Set<string>();
    names.add(name);
    this.index.set(key, names);
  }

  private remove(name: string, held: T): void {
    this.unindex(name, held);
    this.objects.delete(name);
  }

  private unindex(name: string, held: T): void {
    const key = this.keyOf(held);
    const names = key === undefined ? undefined : this.index.get(key);
    names?.delete(name);
    if (names?.size === 0) this.index.delete(key!);
  }

  /** An object as watched, written or read: taken unless what is held is newer. Undefined: nothing changed. */
  put(object: T): Change<T> | undefined {
    const name = object.metadata?.name;
    if (!name) return undefined;
    const held = this.objects.get(name);
    if (held) {
      const order = compareResourceVersions(object.metadata?.resourceVersion, held.metadata?.resourceVersion);
      // Unordered versions: the one arriving is taken when it differs (as the client's own cache does).
      if (order === undefined ? object.metadata?.resourceVersion === held.metadata?.resourceVersion : order <= 0) return undefined;
    }
    this.set(name, object, held);
    return { before: held, after: object };
  }

  /**
   * Deleted: the object held under its name goes only if it is the one deleted (same uid). Another uid is a newer
   * one of the same name (Ruriko made it again and recorded it before the watch told of the old one's end).
   */
  delete(object: T): Change<T> | undefined {
    const name = object.metadata?.name;
    const held = name === undefined ? undefined : this.objects.get(name);
    if (!held || held.metadata?.uid !== object.metadata?.uid) return undefined;
    this.remove(name!, held);
    return { before: held, after: undefined };
  }

  /**
   * Read as absent (404) by a read that began while `seen` was held: dropped only if it still is, since an
   * event that arrived meanwhile is newer than what the read could know.
   */
  forget(name: string, seen: T | undefined): Change<T> | undefined {
    const held = this.objects.get(name);
    if (!held || held !== seen) return undefined;
    this.remove(name, held);
    return { before: held, after: undefined };
  }

  /**
   * A full list, as of `listVersion`: what it lacks is gone, unless held at a newer version (written after the
   * list was taken); what it has is put.
   */
  replace(items: readonly T[], listVersion: string | undefined): Array<Change<T>> {
    const changes: Array<Change<T>> = [];
    const listed = new Set(items.map((o) => o.metadata?.name));
    for (const [name, held] of this.objects) {
      if (listed.has(name)) continue;
      if ((compareResourceVersions(held.metadata?.resourceVersion, listVersion) ?? 0) > 0) continue;
      this.remove(name, held);
      changes.push({ before: held, after: undefined });
    }
    for (const item of items) {
      const change = this.put(item);
      if (change) changes.push(change);
    }
    return changes;
  }
}
