/**
 * Time as a dependency: what reads the time or waits for it takes a Clock, so a test can drive time
 * itself (ManualClock) instead of sleeping and hoping the machine is fast enough.
 */

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Calls `fn` once, `ms` from now; returns a function that cancels it. Any delay works: one longer than a
   * Node timer can hold (about 24.8 days) is waited out in steps, and a negative one means now.
   */
  after(ms: number, fn: () => void): () => void;
}

/** The longest delay one Node timer holds; a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const due = Date.now() + Math.max(0, ms);
    let timer: NodeJS.Timeout;
    const arm = () => {
      const left = due - Date.now();
      if (left <= 0) return fn();
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
      timer.unref();
    };
    timer = setTimeout(arm, Math.min(Math.max(0, ms), MAX_TIMER_MS));
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/** A clock that moves only when told to: `advance` runs every callback that falls due, in order. */
export class ManualClock implements Clock {
  private time: number;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();
  private nextId = 0;

  constructor(start = Date.parse("2026-01-01T00:00:00Z")) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  after(ms: number, fn: () => void): () => void {
    const id = this.nextId++;
    this.pending.set(id, { at: this.time + Math.max(0, ms), fn });
    return () => this.pending.delete(id);
  }

  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const due = [...this.pending.entries()].filter(([, t]) => t.at <= until).sort(([, a], [, b]) => a.at - b.at)[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.time = due[1].at;
      due[1].fn();
    }
    this.time = until;
  }
}
