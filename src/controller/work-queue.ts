import { backoffDelay } from "../time/backoff.ts";
import { WorkerSlots } from "../time/worker-slots.ts";

export interface ReconcileResult {
  /** Look again after this long (e.g. to poll something that cannot be watched). */
  requeueAfterMs?: number;
  /**
   * A failure retrying cannot fix (an image that is not on the host): recorded, not retried with backoff; the
   * key runs again on its next trigger (a new revision, a resync).
   */
  terminalError?: string;
}

export interface WorkQueueOptions {
  /**
   * Reconciles of different keys running at once. One that waits on the cluster (waitOutsideSlot: a pod starting
   * or going) gives its slot to the next meanwhile.
   */
  concurrency: number;
  handler: (key: string, traceId: string) => Promise<ReconcileResult>;
  /** Backoff after the n-th consecutive failure: min(base · 2^(n-1), max), with ±20% jitter. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  onSuccess?: (key: string, result: ReconcileResult, durationMs: number) => void;
  onFailure?: (key: string, error: unknown, failures: number, retryInMs: number, durationMs: number) => void;
  random?: () => number;
}

/**
 * A keyed work queue in the manner of controller-runtime's: a key is queued at most once, a key being
 * reconciled is never reconciled concurrently (a trigger during the run marks it dirty and it runs again
 * right after), failures back off exponentially with jitter per key, and a success resets the backoff.
 * Triggers carry only the key and a trace id: what happened is re-read by the handler.
 */
export class WorkQueue {
  private readonly slots: WorkerSlots;
  /** Runs added and not yet over (waiting for a slot, in one, or waiting outside it). */
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private readonly options: Required<Omit<WorkQueueOptions, "onSuccess" | "onFailure">> & Pick<WorkQueueOptions, "onSuccess" | "onFailure">;
  private readonly queued = new Map<string, string>();
  private readonly active = new Set<string>();
  /** Triggers that arrived while the key was being reconciled, and whether any of them was urgent. */
  private readonly dirty = new Map<string, { traceId: string; urgent: boolean }>();

  /** A trigger arrived for `key` while it is being reconciled: whatever the running reconcile waits for may be stale. */
  hasNewerTrigger(key: string): boolean {
    return this.dirty.has(key);
  }
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout; traceId: string }>();
  private stopped = false;

  constructor(options: WorkQueueOptions) {
    this.options = { backoffBaseMs: 500, backoffMaxMs: 5 * 60_000, random: Math.random, ...options };
    this.slots = new WorkerSlots(options.concurrency);
  }

  /** Keys waiting or running. */
  get depth(): number {
    return this.queued.size + this.active.size;
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /**
   * Forgets every key's failures: their common cause is gone (the engine is back), so the next failure backs
   * off from the start again instead of from where an outage left it.
   */
  resetBackoff(): void {
    this.failures.clear();
  }

  /**
   * Enqueues a key. While a failing key waits out its backoff, ordinary triggers (engine events, resyncs)
   * do not cut the wait short, or a crash would turn into a hot loop; `urgent` ones (a new desired state,
   * an approval decision) do.
   */
  add(key: string, traceId: string, options: { urgent?: boolean } = {}): void {
    if (this.stopped) return;
    const timer = this.timers.get(key);
    if (timer && !options.urgent && (this.failures.get(key) ?? 0) > 0) return;
    if (timer) {
      clearTimeout(timer.timer);
      this.timers.delete(key);
    }
    if (this.active.has(key)) {
      this.dirty.set(key, { traceId, urgent: !!options.urgent || !!this.dirty.get(key)?.urgent });
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.set(key, traceId);
    this.inFlight++;
    void this.slots.run(() => this.run(key)).finally(() => {
      if (--this.inFlight > 0) return;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    });
  }

  /** Enqueues after a delay; an earlier pending delay for the key wins. */
  addAfter(key: string, delayMs: number, traceId: string): void {
    if (this.stopped) return;
    const at = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key, traceId, { urgent: true });
    }, delayMs);
    timer.unref();
    this.timers.set(key, { at, timer, traceId });
  }

  /** Resolves when nothing is queued or running (timers may still be pending). */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    // Runs waiting for a slot find their key no longer queued and end at once.
    this.queued.clear();
    await this.idle();
  }

  private async run(key: string): Promise<void> {
    const traceId = this.queued.get(key);
    this.queued.delete(key);
    if (traceId === undefined || this.stopped) return;
    this.active.add(key);
    const started = performance.now();
    try {
      const result = await this.options.handler(key, traceId);
      this.failures.delete(key);
      this.options.onSuccess?.(key, result, performance.now() - started);
      if (result.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs, traceId);
    } catch (error) {
      const failures = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, failures);
      const retryInMs = this.backoff(failures);
      this.options.onFailure?.(key, error, failures, retryInMs, performance.now() - started);
      // The backoff timer re-runs the key; an ordinary trigger that arrived during the failed run must not
      // bypass it, but an urgent one (the engine back, a new desired state) still goes first.
      if (!this.dirty.get(key)?.urgent) this.dirty.delete(key);
      this.addAfter(key, retryInMs, traceId);
    } finally {
      this.active.delete(key);
      const dirty = this.dirty.get(key);
      if (dirty !== undefined) {
        this.dirty.delete(key);
        this.add(key, dirty.traceId, { urgent: dirty.urgent });
      }
    }
  }

  backoff(failures: number): number {
    const { backoffBaseMs, backoffMaxMs, random } = this.options;
    return backoffDelay(failures, { baseMs: backoffBaseMs, maxMs: backoffMaxMs, jitter: 0.2 }, random);
  }
}
