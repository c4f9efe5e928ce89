import { watch, type FSWatcher } from "chokidar";
import { resolve } from "node:path";
import { formatManifestError } from "../api/errors.ts";
import { loadSnapshotFromDirectory } from "../api/load.ts";
import type { Snapshot } from "../api/snapshot.ts";
import { coalescing, type Source } from "./source.ts";

interface Log {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface DirectorySourceOptions {
  root: string;
  /** Quiet time after the last change before reloading: a burst of saves becomes one snapshot. */
  debounceMs?: number;
  log?: Log;
}

/**
 * Watches a manifest directory. The revision is the content digest, and a snapshot is delivered only when
 * the content or the list of errors changed: saving a file unchanged, or editing only a comment, yields
 * nothing.
 */
export class DirectorySource implements Source {
  readonly kind = "directory" as const;
  private readonly root: string;
  private readonly debounceMs: number;
  private readonly log: Log | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastKey: string | undefined;
  private onSnapshot: ((s: Snapshot) => void) | undefined;
  private readonly reload = coalescing(() => this.load());

  constructor(options: DirectorySourceOptions) {
    this.root = resolve(options.root);
    this.debounceMs = options.debounceMs ?? 300;
    this.log = options.log;
  }

  describe(): string {
    return `directory ${this.root}`;
  }

  async start(onSnapshot: (s: Snapshot) => void): Promise<void> {
    this.onSnapshot = onSnapshot;
    this.watcher = watch(this.root, {
      ignoreInitial: true,
      // Hidden entries (.git, editor swap files) are not manifests.
      ignored: (path: string) => path !== this.root && /(^|[/\\])\.[^/\\]/.test(path.slice(this.root.length)),
    });
    const onChange = (path: string) => {
      if (/\.ya?ml$/i.test(path) || !/\.[^/\\]*$/.test(path)) this.schedule();
    };
    this.watcher.on("add", onChange).on("change", onChange).on("unlink", onChange).on("unlinkDir", () => this.schedule()).on("addDir", () => this.schedule());
    this.watcher.on("error", (error) => this.log?.warn({ err: String(error) }, `watching ${this.root} failed`));
    await new Promise<void>((ready) => this.watcher!.once("ready", () => ready()));
    await this.reload();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    await this.watcher?.close();
    this.watcher = undefined;
    this.onSnapshot = undefined;
  }

  async refresh(_reason: string): Promise<void> {
    await this.reload();
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reload();
    }, this.debounceMs);
  }

  private async load(): Promise<void> {
    const snapshot = await loadSnapshotFromDirectory(this.root);
    const key = `${snapshot.digest}\n${snapshot.errors.map(formatManifestError).join("\n")}`;
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.log?.info({ revision: snapshot.revision, objects: snapshot.objects.size, errors: snapshot.errors.length }, `new snapshot from ${this.root}`);
    this.onSnapshot?.(snapshot);
  }
}
