import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "../../observability/logger.ts";
import { writeFileAtomicSync } from "../../store/atomic-write.ts";

/** What the agent spent on its model in one calendar month (UTC); the shape of the file in its data volume. */
export interface MonthSpend {
  /** "2026-11" */
  month: string;
  usd: number;
  requests: number;
  /** Of those, requests whose reply carried no usage, priced at an upper bound (limits.ts). */
  estimated: number;
}

/**
 * This month's model spend, kept in a file so that a restart does not hand the agent a fresh budget. The
 * month is the calendar month in UTC; a new month starts at zero. A file that cannot be read or makes no
 * sense is reported and replaced: it must never keep the agent from starting.
 *
 * Writes are synchronous on purpose: the file is a few bytes, and one write finishing before the next
 * starts means a later total can never be overtaken on disk by an earlier one.
 */
export class SpendLedger {
  private readonly file: string;
  private readonly now: () => number;
  private readonly log: Pick<Logger, "warn"> | undefined;
  private spend: MonthSpend;

  constructor(options: { file: string; now: () => number; logger?: Pick<Logger, "warn"> | undefined }) {
    this.file = options.file;
    this.now = options.now;
    this.log = options.logger;
    this.spend = this.load();
  }

  /** This month's spend; the first look in a new month finds zero. */
  current(): MonthSpend {
    const month = monthOf(this.now());
    if (this.spend.month !== month) this.spend = { month, usd: 0, requests: 0, estimated: 0 };
    return { ...this.spend };
  }

  /** Adds one model request and what it cost (`estimated`: an upper bound), and writes the new total. A failed write is logged, not thrown. */
  add(usd: number, estimated = false): MonthSpend {
    const spend = this.current();
    this.spend = { month: spend.month, usd: spend.usd + usd, requests: spend.requests + 1, estimated: spend.estimated + (estimated ? 1 : 0) };
    try {
      // Flushed, then renamed over the old file: a crash leaves the old total or the new one, never half of either.
      mkdirSync(dirname(this.file), { recursive: true });
      writeFileAtomicSync(this.file, `${JSON.stringify(this.spend)}\n`, { mode: 0o600 });
    } catch (err) {
      this.log?.warn({ err, file: this.file }, "the month's model spend could not be saved; it is kept in memory");
    }
    return { ...this.spend };
  }

  private load(): MonthSpend {
    const month = monthOf(this.now());
    const fresh = { month, usd: 0, requests: 0, estimated: 0 };
    let text: string;
    try {
      text = readFileSync(this.file, "utf8");
    } catch (err) {
      // No file yet is the normal first start; anything else (permissions, a directory) is worth a word.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.log?.warn({ err, file: this.file }, "the month's model spend could not be read; starting at 0");
      return fresh;
    }
    const saved = parseSpend(text);
    if (!saved) {
      this.log?.warn({ file: this.file }, "the month's model spend file is corrupt; starting at 0");
      return fresh;
    }
    // An earlier month is simply over. A later one means the clock went back: this month starts at zero too.
    return saved.month === month ? saved : fresh;
  }
}

/** "2026-11" for any moment in November 2026, UTC. */
export const monthOf = (ms: number) => new Date(ms).toISOString().slice(0, 7);

/** The first moment of the month after the one `ms` falls in, UTC. */
export function nextMonthStart(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

function parseSpend(text: string): MonthSpend | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const { month, usd, requests, estimated = 0 } = value as Record<string, unknown>;
  if (typeof month !== "string" || !/^\d{4}-(0[1-9]|1[0-2])$/.test(month)) return undefined;
  if (typeof usd !== "number" || !Number.isFinite(usd) || usd < 0) return undefined;
  if (typeof requests !== "number" || !Number.isSafeInteger(requests) || requests < 0) return undefined;
  // Absent in files written before estimates were counted.
  if (typeof estimated !== "number" || !Number.isSafeInteger(estimated) || estimated < 0 || estimated > requests) return undefined;
  return { month, usd, requests, estimated };
}

