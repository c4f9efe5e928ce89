/**
 * Turns committed writes to the state database — by this process or any other, such as `ruriko approvals
 * approve` or `ruriko secret rotate` — into events. The kernel tells us the database's files changed (inotify,
 * through fs.watch on the state directory); the change feed (change-feed.ts) says what changed. A slow fallback
 * look covers a file system that cannot watch.
 */
import { watch, type FSWatcher } from "node:fs";
import type { ChangeFeed, StateChange } from "./change-feed.ts";

export interface StateWatcherOptions {
  dir: string;
  feed: ChangeFeed;
  onChanges: (changes: StateChange[]) => void;
  log: { warn(obj: object, msg?: string): void };
  /** How often to look even without a file event. */
  fallbackMs?: number;
}

/** How long file events are gathered into one look at the feed: a decision is heard this much later at most. */
const FILE_EVENT_BATCH_MS = 20;

/** Changes older than this are forgotten (at start, then daily). */
const FEED_KEPT_MS = 7 * 24 * 3600_000;

export class StateWatcher {
  private readonly o: Required<StateWatcherOptions>;
  private cursor = 0;
  private watcher: FSWatcher | undefined;
  private timers: NodeJS.Timeout[] = [];
  /** The look at the feed the file events so far will make, if one is pending. */
  private look: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(options: StateWatcherOptions) {
    this.o = { fallbackMs: 30_000, ...options };
  }

  /** Starts after the changes made so far: what happened before is the caller's to read at start. */
  start(): void {
    this.prune();
    this.cursor = this.o.feed.latest();
    try {
      this.watcher = watch(this.o.dir, { persistent: false }, () => this.schedule());
      this.watcher.on("error", (error) => this.o.log.warn({ err: error.message }, "cannot watch the state directory; changes from other processes are noticed every few seconds"));
    } catch (error) {
      this.o.log.warn({ err: (error as Error).message }, "cannot watch the state directory; changes from other processes are noticed every few seconds");
    }
    // Periodic even while watching, but rare and cheap (one indexed SELECT): the kernel may drop events (a full
    // inotify queue) and some mounts do not report another process's writes. Not watching at all: every 2 s.
    const fallback = this.watcher ? this.o.fallbackMs : Math.min(this.o.fallbackMs, 2000);
    this.timers.push(setInterval(() => this.schedule(), fallback).unref(), setInterval(() => this.prune(), 24 * 3600_000).unref());
  }

  /**
   * Reads what changed now (also what an in-process writer calls to be heard without waiting for the kernel).
   * The cursor moves past a batch only once it was handled: a batch whose handling failed is read again.
   */
  check(): void {
    if (this.stopped) return;
    for (;;) {
      const changes = this.o.feed.since(this.cursor);
      if (changes.length === 0) return;
      this.o.onChanges(changes);
      this.cursor = changes[changes.length - 1]!.seq;
    }
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    clearTimeout(this.look);
    for (const t of this.timers) clearInterval(t);
  }

  /**
   * File events within FILE_EVENT_BATCH_MS become one look: one commit touches the WAL several times, and serve's
   * own commits (hundreds a second while it creates a fleet, nearly all of them none of the feed's) wake the watch
   * as much as another process's. Looking once per event was ~2 % of serve's CPU creating 1,000 agents.
   */
  private schedule(): void {
    if (this.look || this.stopped) return;
    this.look = setTimeout(() => {
      this.look = undefined;
      try {
        this.check();
      } catch (error) {
        this.o.log.warn({ err: (error as Error).message }, "cannot read the state change feed; trying again on the next change");
      }
    }, FILE_EVENT_BATCH_MS);
  }

  private prune(): void {
    try {
      this.o.feed.prune(new Date(Date.now() - FEED_KEPT_MS));
    } catch (error) {
      this.o.log.warn({ err: (error as Error).message }, "cannot prune the state change feed");
    }
  }
}
