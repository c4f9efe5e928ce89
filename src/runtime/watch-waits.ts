/**
 * Waiting for watched objects to reach a state (a pod running, a pod gone) without polling the API server: a
 * wait is judged again whenever one of its objects changes in the store (kubernetes-informers.ts calls
 * `changed`), and reads its objects from the API server itself only every `rereadMs`, in case the watch missed
 * something, and when it begins if the store is not yet fed by a live watch. Pure apart from the clock, which a
 * test drives.
 */
import type { Clock } from "../time/clock.ts";
import { waitOutsideSlot } from "../time/worker-slots.ts";

/** Where a wait stands: reached, still waiting (and why, for the timeout's message), or never to be reached. */
export type Progress = { state: "done" } | { state: "waiting"; reason: string } | { state: "failed"; error: Error };

export interface WaitOptions {
  /** The objects (store keys) whose changes can settle the wait. */
  keys: readonly string[];
  /** Judged from the store: at once, after each change of a key, after each reread. */
  check(): Progress;
  /** Reads the objects from the API server into the store (which calls `changed`); a failure fails the wait. */
  reread(): Promise<void>;
  timeoutMs: number;
  /** The error for a wait that timed out, given the last reason it was waiting for. */
  timedOut(reason: string): Error;
}

export class Waits {
  private readonly waiting = new Map<string, Set<() => void>>();
  private readonly clock: Clock;
  private readonly rereadMs: number;
  private readonly storeIsLive: () => boolean;
  /** How each pending wait ends early (stop). */
  private readonly finishers = new Set<(error: Error) => void>();
  private stopped: (() => Error) | undefined;

  /**
   * `storeIsLive`: the store has listed and a watch keeps it current, so a wait that begins trusts it (a thousand
   * waits beginning together made a thousand reads of objects that mostly did not exist yet).
   */
  constructor(o: { clock: Clock; rereadMs: number; storeIsLive?: () => boolean }) {
    this.clock = o.clock;
    this.rereadMs = o.rereadMs;
    this.storeIsLive = o.storeIsLive ?? (() => false);
  }

  /** The object under `key` changed in the store: the waits on it are judged again. */
  changed(key: string): void {
    const waits = this.waiting.get(key);
    if (waits) for (const judge of [...waits]) judge();
  }

  /** How many waits are pending (for tests and metrics). */
  get pending(): number {
    return this.finishers.size;
  }

  /** Ends every pending wait now with `error()`, and every later one at once: the process is stopping. */
  stop(error: () => Error): void {
    this.stopped = error;
    for (const finish of [...this.finishers]) finish(error());
  }

  /**
   * Resolves when `check` says done, rejects when it says failed, when a read fails or when the time is up. Settled
   * from the store alone when it already is; otherwise the objects are read every `rereadMs`, and at once when the
   * store is not live (it may be behind). A reconcile that has to wait gives its worker slot to another meanwhile
   * (worker-slots.ts); one settled at once keeps it.
   */
  until(o: WaitOptions): Promise<void> {
    if (this.stopped) return Promise.reject(this.stopped());
    if (this.storeIsLive()) {
      const now = o.check();
      if (now.state === "done") return Promise.resolve();
      if (now.state === "failed") return Promise.reject(now.error);
    }
    return waitOutsideSlot(() => this.settled(o));
  }

  private settled(o: WaitOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      let reason = "";
      let settled = false;
      let cancelReread: (() => void) | undefined;
      const cancelTimeout = this.clock.after(o.timeoutMs, () => finish(o.timedOut(reason)));
      const finish = (error?: Error) => {
        if (settled) return;
        settled = true;
        this.finishers.delete(finish);
        cancelTimeout();
        cancelReread?.();
        for (const key of o.keys) {
          const waits = this.waiting.get(key);
          waits?.delete(judge);
          if (waits?.size === 0) this.waiting.delete(key);
        }
        if (error) reject(error);
        else resolve();
      };
      const judge = () => {
        if (settled) return;
        const progress = o.check();
        if (progress.state === "done") finish();
        else if (progress.state === "failed") finish(progress.error);
        else reason = progress.reason;
      };
      const reread = () => {
        o.reread().then(
          () => {
            judge();
            if (!settled) cancelReread = this.clock.after(this.rereadMs, reread);
          },
          (error: unknown) => finish(error instanceof Error ? error : new Error(String(error))),
        );
      };
      judge();
      if (settled) return;
      this.finishers.add(finish);
      for (const key of o.keys) {
        const waits = this.waiting.get(key) ?? new Set();
        waits.add(judge);
        this.waiting.set(key, waits);
      }
      if (this.storeIsLive()) cancelReread = this.clock.after(this.rereadMs, reread);
      else reread();
    });
  }
}
