/**
 * Reading a manifest tree on a worker thread, so that `serve` keeps answering (its HTTP endpoints, the
 * controller, Matrix) while a revision is parsed and validated. Parsing is synchronous CPU work: within the
 * limits (budget.ts) a tree can still take seconds — 10,000 agents take about half a second, a tree of
 * costly-but-allowed YAML up to its byte limit much longer — and on the main thread every second of it is a
 * second in which nothing else answers. The worker also has a heap limit of its own: a tree that needs more
 * memory than that ends the worker, not Ruriko, and is refused like any invalid revision.
 */
import { Worker } from "node:worker_threads";
import type { ManifestError, ManifestErrorCode } from "./errors.ts";
import { DEFAULT_LOAD_LIMITS, type LoadedTree, type LoadOptions } from "./load.ts";
import { fileDigestsOf, objectsOf, type StoredTree } from "./object-store.ts";
import { fileSources } from "./parse.ts";
import { buildSnapshot, indexByKey, type Snapshot } from "./snapshot.ts";

/**
 * What crosses between the threads: plain data, and the buffers the objects are stored in (object-store.ts),
 * which are transferred, not copied.
 */
export interface WireSnapshot {
  revision: string;
  digest: string;
  errors: ManifestError[];
  warnings: ManifestError[];
  files: string[];
  stored: StoredTree | undefined;
}

export function toWire({ snapshot, stored }: LoadedTree): { wire: WireSnapshot; transfer: ArrayBuffer[] } {
  const wire = { revision: snapshot.revision, digest: snapshot.digest, errors: [...snapshot.errors], warnings: [...snapshot.warnings], files: [...snapshot.files], stored };
  return { wire, transfer: stored?.chunks ?? [] };
}

/**
 * The snapshot again, as the thread that read it had it: the same objects from the same stored text, whose
 * sources find positions in the files' bytes, on first use (nothing in the controller asks; error reports come
 * with theirs).
 */
export function fromWire(wire: WireSnapshot, options: LoadOptions = {}): Snapshot {
  const limits = { ...DEFAULT_LOAD_LIMITS, ...options.limits };
  return {
    revision: wire.revision,
    digest: wire.digest,
    objects: indexByKey(wire.stored ? objectsOf(wire.stored, fileSources(limits)) : []),
    errors: wire.errors,
    warnings: wire.warnings,
    files: wire.files,
    fileDigests: wire.stored ? fileDigestsOf(wire.stored) : new Map(),
  };
}

/** A revision that could not be read at all: refused, with the reason as its one error. */
export function unreadableSnapshot(code: ManifestErrorCode, message: string, options: LoadOptions = {}): Snapshot {
  const error: ManifestError = { code, file: ".", line: 1, column: 1, path: "", message };
  return buildSnapshot({ objects: [], files: [], errors: [error], ...(options.revision ? { revision: options.revision } : {}) });
}

export interface OffThreadLoaderOptions {
  /** The worker's old-generation heap limit, in MB: past it the worker ends and the revision is refused. */
  maxHeapMb?: number;
  /**
   * An idle worker ends after this long, giving its memory back (~20–45 MiB); the next load starts another (~0.3 s).
   * Short: a worker left for a minute overlapped the busiest part of what the load set off (1,000 agents rolled).
   */
  idleMs?: number;
}

type Reply = { id: number; snapshot: WireSnapshot } | { id: number; error: string };

const WORKER_URL = new URL(import.meta.url.endsWith(".ts") ? "./load-worker.ts" : "./load-worker.js", import.meta.url);

/**
 * One worker thread, started on first use and again after it ended (a crash, the heap limit, idleness).
 * Loads are posted to it as they come and answered in any order; the process is kept alive only while one
 * is in flight.
 */
export class OffThreadLoader {
  private readonly maxHeapMb: number;
  private readonly idleMs: number;
  private worker: Worker | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { options: LoadOptions; resolve: (snapshot: Snapshot) => void }>();

  constructor(options: OffThreadLoaderOptions = {}) {
    this.maxHeapMb = options.maxHeapMb ?? 1536;
    this.idleMs = options.idleMs ?? 5_000;
  }

  load(root: string, options: LoadOptions = {}): Promise<Snapshot> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const worker = this.worker ?? this.spawn();
    worker.ref();
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, { options, resolve });
      worker.postMessage({ id, root, options });
    });
  }

  /** Ends the worker; loads in flight are answered as unreadable. */
  async close(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const worker = this.worker;
    if (!worker) return;
    this.ended(worker, "the loader was closed");
    await worker.terminate();
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_URL, { resourceLimits: { maxOldGenerationSizeMb: this.maxHeapMb } });
    worker.on("message", (reply: Reply) => {
      const request = this.pending.get(reply.id);
      if (!request) return;
      this.pending.delete(reply.id);
      request.resolve("snapshot" in reply ? fromWire(reply.snapshot, request.options) : unreadableSnapshot("io", `reading the manifests failed: ${reply.error}`, request.options));
      if (this.pending.size === 0) this.idle(worker);
    });
    worker.on("error", (error: Error & { code?: string }) => {
      const message =
        error.code === "ERR_WORKER_OUT_OF_MEMORY"
          ? `reading the manifests needed more memory than the limit of ${this.maxHeapMb} MB`
          : `reading the manifests failed: ${error.message}`;
      this.ended(worker, message, error.code === "ERR_WORKER_OUT_OF_MEMORY" ? "too-large" : "io");
    });
    worker.on("exit", (code) => this.ended(worker, `the manifest reader stopped (exit code ${code})`));
    this.worker = worker;
    return worker;
  }

  private idle(worker: Worker): void {
    worker.unref();
    this.idleTimer = setTimeout(() => {
      if (this.worker !== worker || this.pending.size > 0) return;
      this.worker = undefined;
      void worker.terminate();
    }, this.idleMs);
    this.idleTimer.unref();
  }

  /** The worker is gone: every load it had is answered with the reason, and the next load starts another. */
  private ended(worker: Worker, message: string, code: ManifestErrorCode = "io"): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    for (const { options, resolve } of this.pending.values()) resolve(unreadableSnapshot(code, message, options));
    this.pending.clear();
  }
}

let shared: OffThreadLoader | undefined;

/** Loads `root` on the process's one loader thread (sources use this; the CLI loads in-process). */
export function loadSnapshotOffThread(root: string, options: LoadOptions = {}): Promise<Snapshot> {
  shared ??= new OffThreadLoader();
  return shared.load(root, options);
}
