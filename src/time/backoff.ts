/**
 * Exponential backoff with jitter: the one rule every retry loop follows (DESIGN §4), so that a base, a cap
 * and a jitter are all a loop has to choose. Pure apart from the clock and the dice, both injectable.
 */

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  /** Relative jitter: the delay is multiplied by a factor in [1 - jitter, 1 + jitter). Default 0.2; 0 for none. */
  jitter?: number;
}

const DEFAULT_JITTER = 0.2;

/**
 * Doubling stops here: 2^52 times any sane base is far past any sane cap, and stopping keeps the product
 * finite however many failures are counted (2 ** 1100 is Infinity, and 0 · Infinity is NaN).
 */
const MAX_DOUBLINGS = 52;

/**
 * The delay before retry number `failures` (1-based): min(baseMs · 2^(failures−1), maxMs), jittered.
 * failures < 1 is treated as 1. Never overflows for huge failure counts.
 */
export function backoffDelay(failures: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  // `!(x >= 1)` also catches NaN, which would otherwise poison every step below.
  const count = !(failures >= 1) ? 1 : Math.floor(failures);
  const doublings = Math.min(count - 1, MAX_DOUBLINGS);
  const capped = Math.min(policy.baseMs * 2 ** doublings, policy.maxMs);
  const jitter = policy.jitter ?? DEFAULT_JITTER;
  // Spread over [1 - jitter, 1 + jitter) so that loops that failed together do not retry together.
  const factor = jitter === 0 ? 1 : 1 + jitter * (2 * random() - 1);
  return Math.max(0, Math.round(capped * factor));
}

/**
 * Per-key consecutive failures and the time each key may be retried at: for loops that retry many things
 * independently (rooms, agents, accounts).
 */
export class BackoffTracker<K> {
  private readonly policy: BackoffPolicy;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly entries = new Map<K, { failures: number; retryAt: number }>();

  constructor(policy: BackoffPolicy, options: { now?: () => number; random?: () => number } = {}) {
    this.policy = policy;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  /** Records one more failure of `key`; returns the count, the delay and the time it may be retried. */
  failed(key: K): { failures: number; delayMs: number; retryAt: number } {
    const failures = (this.entries.get(key)?.failures ?? 0) + 1;
    const delayMs = backoffDelay(failures, this.policy, this.random);
    const retryAt = this.now() + delayMs;
    this.entries.set(key, { failures, retryAt });
    return { failures, delayMs, retryAt };
  }

  /** Forgets `key` (it succeeded). */
  succeeded(key: K): void {
    this.entries.delete(key);
  }

  /** True while `key` waits out its backoff. */
  waiting(key: K): boolean {
    const entry = this.entries.get(key);
    return entry !== undefined && this.now() < entry.retryAt;
  }

  failures(key: K): number {
    return this.entries.get(key)?.failures ?? 0;
  }

  retryAt(key: K): number | undefined {
    return this.entries.get(key)?.retryAt;
  }

  /** Forgets every key. */
  clear(): void {
    this.entries.clear();
  }
}
