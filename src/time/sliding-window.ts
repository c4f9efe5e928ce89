/**
 * Counting against a per-window cap, shared by every rate limit (an agent's limits, Ruriko's chat queries): what
 * went through in the last window, and whether a refusal is the first of its stretch — the one that is told,
 * so that a flood is not answered with a flood. Pure; the caller passes the time.
 */

/** One limit's refusals: when it last refused, and whether the current full stretch has been announced. */
export class Fill {
  reachedAt: number | null = null;
  private told = false;

  hasRoom(): void {
    this.told = false;
  }

  /** Whether this refusal is the first of its stretch (and so carries the notice). */
  refused(now: number): boolean {
    this.reachedAt = now;
    const first = !this.told;
    this.told = true;
    return first;
  }
}

/**
 * The times of what one limit let through in the last `windowMs`, oldest first. Times may lie ahead of now:
 * slots reserved for messages waiting their turn.
 */
export class SlidingWindow {
  private readonly times: number[] = [];
  private readonly windowMs: number;

  constructor(windowMs = 60_000) {
    this.windowMs = windowMs;
  }

  add(at: number, now: number): void {
    this.forget(now);
    let i = this.times.length;
    while (i > 0 && this.times[i - 1]! > at) i--;
    this.times.splice(i, 0, at);
  }

  /**
   * The first moment from `now` when one more fits under `cap`: now if there is room, else when enough of
   * the oldest have left (after a cap was lowered, that may be more than one).
   */
  nextRoom(now: number, cap: number): number {
    this.forget(now);
    const n = this.times.length;
    return n < cap ? now : Math.max(now, this.times[n - cap]! + this.windowMs);
  }

  /** How many went through in the window, and when that changes: when one more fits if full, else when the oldest leaves. */
  state(now: number, cap: number): { used: number; resetsAt: number | null } {
    this.forget(now);
    const used = this.times.filter((t) => t <= now).length;
    if (used === 0) return { used, resetsAt: null };
    return { used, resetsAt: used >= cap ? this.nextRoom(now, cap) : this.times[0]! + this.windowMs };
  }

  private forget(now: number): void {
    while (this.times.length > 0 && this.times[0]! <= now - this.windowMs) this.times.shift();
  }
}
