import type { Clock } from "./clock.ts";

export interface QuietPeriodOptions {
  /** The wait after a lone event: long enough to take in the few events one save makes. */
  minMs: number;
  /** The longest wait, however long the burst has gone on. */
  maxMs: number;
  clock: Clock;
  /** Called once the events have stopped for the wait. */
  onQuiet: () => void;
}

/**
 * Acts once a burst of events is over, waiting as long as the burst has lasted so far (between minMs and
 * maxMs): a lone save is acted on after minMs, while a checkout writing files for 200 ms waits for 200 ms of
 * quiet, so it is read once, whole, rather than half-written. A fixed debounce makes every lone save pay the
 * wait a burst needs.
 */
export class QuietPeriod {
  private readonly o: QuietPeriodOptions;
  private burstStartedAt: number | undefined;
  private cancel: (() => void) | undefined;

  constructor(options: QuietPeriodOptions) {
    this.o = options;
  }

  /** An event: (re)starts the wait. */
  poke(): void {
    const now = this.o.clock.now();
    this.burstStartedAt ??= now;
    this.cancel?.();
    this.cancel = this.o.clock.after(quietWaitMs(now - this.burstStartedAt, this.o), () => {
      this.cancel = undefined;
      this.burstStartedAt = undefined;
      this.o.onQuiet();
    });
  }

  /** Drops a pending wait without acting. */
  stop(): void {
    this.cancel?.();
    this.cancel = undefined;
    this.burstStartedAt = undefined;
  }
}

/** The wait after an event that came `burstMs` into its burst. */
export function quietWaitMs(burstMs: number, { minMs, maxMs }: Pick<QuietPeriodOptions, "minMs" | "maxMs">): number {
  return Math.min(maxMs, Math.max(minMs, burstMs));
}
