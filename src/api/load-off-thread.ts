/**
 * Reading a manifest tree on a worker thread, so that `serve` keeps answering (its HTTP endpoints, the
 * controller, Matrix) while a revision is parsed and validated. Parsing is synchronous CPU work: within the
 * limits (budget.ts) a tree can still take seconds — 10,000 agents take 1.5 s, a tree of costly-but-allowed
 * YAML up to its byte limit much longer — and on the main thread every second of it is a second in which
 * nothing else answers. The worker also has a heap limit of its own: a tree that needs more memory than that
 * ends the worker, not Ruriko, and is refused like any invalid revision.
 */
import { Worker } from "node:worker_threads";
import { DEFAULT_LOAD_LIMITS, type LoadedTree, type LoadOptions } from "./load.ts";
import type { ManifestError, ManifestErrorCode } from "./errors.ts";
import { positionLocator, type LoadedObject } from "./parse.ts";
import { buildSnapshot, type Snapshot } from "./snapshot.ts";

/** What crosses between the threads: plain data (functions cannot), texts only of files that hold objects. */
export interface WireSnapshot {
  revision: string;
  digest: string;
  objects: Array<Omit<LoadedObject, "source"> & { file: string }>;
  errors: ManifestError[];
  warnings: ManifestError[];
  files: string[];
  fileDigests: Array<[string, string]>;
  texts: Array<[string, string]>;
}

export function toWire({ snapshot, texts }: LoadedTree): WireSnapshot {
  const objects = [...snapshot.objects.values()].map(({ source, ...rest }) => ({ ...rest, file: source.file }));
  const decoder = new TextDecoder("utf-8");
  const withObjects = new Set(objects.map((o) => o.file));
  return {
    revision: snapshot.revision,
    digest: snapshot.digest,
    objects,
    errors: [...snapshot.errors],
    warnings: [...snapshot.warnings],
    files: [...snapshot.files],
    fileDigests: [...snapshot.fileDigests],
    texts: [...texts].filter(([file]) => withObjects.has(file)).map(([file, bytes]) => [file, decoder.decode(bytes)]),
  };
}

/**
 * The snapshot again, as the thread that read it had it. Each object finds its positions by parsing its
 * file's text once more, on first use only (nothing in the controller asks; error reports come with theirs).
 */
export function fromWire(wire: WireSnapshot, options: LoadOptions = {}): Snapshot {
  const limits = { ...DEFAULT_LOAD_LIMITS, ...options.limits };
  const texts = new Map(wire.texts);
  const locators = new Map<string, ReturnType<typeof positionLocator>>();
  const locatorOf = (file: string) => {
    let locator = locators.get(file);
    if (!locator) locators.set(file, (locator = positionLocator(file, texts.get(file) ?? "", limits)));
    return locator;
  };
  const objects = new Map(
    wire.objects.map(({ file, ...rest }) => [rest.key, { ...rest, source: { file, locate: (path?: string) => locatorOf(file)(rest.kind, rest.name, path) } }] as const),
  );
  return {
    revision: wire.revision,
    digest: wire.digest,
    objects,
    errors: wire.errors,
    warnings: wire.warnings,
    files: wire.files,
    fileDigests: new Map(wire.fileDigests),
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
  /** An idle worker ends after this long, giving its memory back; the next load starts another (~0.3 s). */
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
    this.idleMs = options.idleMs ?? 60_000;
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
