import { watch, type FSWatcher } from "chokidar";
import { resolve } from "node:path";
import { formatManifestError } from "../api/errors.ts";
import { loadSnapshotOffThread } from "../api/load-off-thread.ts";
import type { Snapshot } from "../api/snapshot.ts";
import { systemClock, type Clock } from "../time/clock.ts";
import { QuietPeriod } from "../time/quiet-period.ts";
import { coalescing, type Source } from "./source.ts";

interface Log {
  debug?(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface DirectorySourceOptions {
  root: string;
  /**
   * Quiet time after the last change before reloading (a burst of saves becomes one snapshot): minMs after a
   * lone save, growing with a burst's length up to maxMs (time/quiet-period.ts).
   */
  quiet?: { minMs: number; maxMs: number };
  clock?: Clock;
  log?: Log;
}

/** A lone save is read 25 ms after it; a long burst (a checkout, a copy) waits up to 300 ms of quiet. */
const DEFAULT_QUIET = { minMs: 25, maxMs: 300 };

/**
 * Watches a manifest directory. The revision is the content digest, and a snapshot is delivered only when
 * the content or the list of errors changed: saving a file unchanged, or editing only a comment, yields
 * nothing.
 */
export class DirectorySource implements Source {
  readonly kind = "directory" as const;
  private readonly root: string;
  private readonly quiet: QuietPeriod;
  private readonly log: Log | undefined;
  private watcher: FSWatcher | undefined;
  private lastKey: string | undefined;
  private lastWarnings = "";
  private onSnapshot: ((s: Snapshot) => void) | undefined;
  private readonly reload = coalescing(() => this.load());

  constructor(options: DirectorySourceOptions) {
    this.root = resolve(options.root);
    this.quiet = new QuietPeriod({ ...DEFAULT_QUIET, ...options.quiet, clock: options.clock ?? systemClock, onQuiet: () => void this.reload() });
    this.log = options.log;
  }

  describe(): string {
    return `directory ${this.root}`;
  }

  async start(onSnapshot: (s: Snapshot) => void): Promise<void> {
    this.onSnapshot = onSnapshot;
    this.watcher = watch(this.root, {
      ignoreInitial: true,
      // The loader does not follow symbolic links, so neither does the watcher: a link to /usr in the tree
      // once meant 16,894 inotify watches and 600 MB. A link is still seen (added, removed), not entered.
      followSymlinks: false,
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
    this.quiet.stop();
    await this.watcher?.close();
    this.watcher = undefined;
    this.onSnapshot = undefined;
  }

  async refresh(_reason: string): Promise<void> {
    await this.reload();
  }

  private schedule(): void {
    this.quiet.poke();
  }

  /** The paths the watcher holds, by directory (chokidar's own list): what it costs in watches. */
  watched(): Record<string, string[]> {
    return this.watcher?.getWatched() ?? {};
  }

  private async load(): Promise<void> {
    this.log?.debug?.({ root: this.root }, `reading the manifests in ${this.root}`);
    // On a worker thread: parsing a large or hostile tree must not stop everything else from answering.
    const snapshot = await loadSnapshotOffThread(this.root);
    this.warnAbout(snapshot);
    const key = `${snapshot.digest}\n${snapshot.errors.map(formatManifestError).join("\n")}`;
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.log?.info({ revision: snapshot.revision, objects: snapshot.objects.size, errors: snapshot.errors.length }, `new snapshot from ${this.root}`);
    this.onSnapshot?.(snapshot);
  }

  /** Warnings (a symbolic link skipped) are said once, when they change, not with every reload. */
  private warnAbout(snapshot: Snapshot): void {
    const text = snapshot.warnings.map(formatManifestError).join("\n");
    if (text === this.lastWarnings) return;
    this.lastWarnings = text;
    if (text) this.log?.warn({ warnings: snapshot.warnings.map(formatManifestError) }, `${snapshot.warnings.length} warning(s) in ${this.root}`);
  }
}
