/**
 * The agent's decision journal: one line per decision (a message accepted or ignored, a tool allowed, denied,
 * waiting or decided, a limit reached, a schedule fired), which Ruriko collects over ACP (GET /events) into its
 * audit log. Entries carry names, rules, sizes and digests — never a message body or a secret value; the callers
 * pass only those fields, and the type admits nothing else.
 *
 * Kept as JSON lines on the data volume so that seq keeps increasing across restarts and recreations (the volume
 * survives both): Ruriko's cursor then stays valid, and a seq that goes backwards means a new volume. Appends are
 * synchronous — a line is small and a decision is rare next to a model call — so a decision is on disk before the
 * agent acts on it. The file holds at most 2×keep lines; past that it is rewritten with the newest keep.
 *
 * The file is the agent's own claim, like everything the agent reports: its tool servers share the volume. Ruriko
 * validates what it collects and files it under the agent's name, not as its own observation.
 */
import { appendFileSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync } from "node:fs";
import { dirname } from "node:path";
import type { AcpEvent, AcpEvents } from "../../api/generated/types.ts";
import { isAcpBody } from "../../acp/protocol.ts";
import { newTraceId } from "../../observability/logger.ts";
import { writeFileAtomicSync } from "../../store/atomic-write.ts";

export type EventInput = Omit<AcpEvent, "seq" | "at" | "traceId"> & { traceId?: string };

export interface EventJournalOptions {
  /** The JSON-lines file, e.g. /data/events.jsonl. */
  file: string;
  /** How many of the newest events survive a compaction. */
  keep?: number;
  now?: () => Date;
  /** A failed read or write of the file (full or read-only volume) is reported here, not thrown: a decision must not fail on it. */
  onWriteError?: (err: Error) => void;
}

/** What a journal file holds, read leniently: lines that do not parse (a write cut short) are counted, not fatal. */
export interface RecoveredJournal {
  events: AcpEvent[];
  skipped: number;
  /** The file needs rewriting before the next append: a cut-short last line would swallow it. */
  dirty: boolean;
}

/**
 * The most of the file read at start: 2×keep lines are well under it. A larger file was not written by the journal
 * (the volume is shared with the agent's tool servers); only its tail is read, so it cannot exhaust memory.
 */
const READ_MAX_BYTES = 4 * 1024 * 1024;

/** The file's text, or its last READ_MAX_BYTES (the first, partial line of which parses as junk and is skipped). */
function readTail(file: string): string {
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, READ_MAX_BYTES);
    const buffer = Buffer.alloc(length);
    let read = 0;
    while (read < length) {
      const n = readSync(fd, buffer, read, length - read, size - length + read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

/** Parses a journal file's text; pure. Keeps seq strictly increasing: a line that would go backwards is skipped. */
export function parseJournal(text: string): RecoveredJournal {
  const events: AcpEvent[] = [];
  let skipped = 0;
  const lines = text.split("\n");
  // A file that does not end in a newline was cut mid-write; its last piece is either junk or a line whose
  // newline never landed — either way the next append must not be glued to it.
  const dirty = text.length > 0 && !text.endsWith("\n");
  for (const line of lines) {
    if (line.trim() === "") continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      skipped++;
      continue;
    }
    const last = events.at(-1);
    // Checked against the protocol schema: one malformed line served would make Ruriko refuse the whole page.
    if (!isAcpBody("AcpEvent", parsed) || (last !== undefined && parsed.seq <= last.seq)) {
      skipped++;
      continue;
    }
    events.push(parsed);
  }
  return { events, skipped, dirty: dirty || skipped > 0 };
}

/** The events after seq, at most limit, plus the bounds the collector needs to notice drops; pure. */
export function eventsAfter(held: readonly AcpEvent[], last: number, after: number, limit: number): AcpEvents {
  const events: AcpEvent[] = [];
  for (const e of held) {
    if (e.seq <= after) continue;
    if (events.length >= limit) break;
    events.push(e);
  }
  return { events, first: held[0]?.seq ?? 0, last };
}

function lines(events: readonly AcpEvent[]): string {
  return events.map((e) => `${JSON.stringify(e)}\n`).join("");
}

export class EventJournal {
  private readonly file: string;
  private readonly keep: number;
  private readonly now: () => Date;
  private readonly onWriteError: (err: Error) => void;
  /** Mirrors the file: at most 2×keep entries, oldest first. */
  private held: AcpEvent[];
  private seq: number;
  /** Set after a failed write, so the next write rewrites the whole file instead of appending to a broken one. */
  private dirty: boolean;

  constructor(o: EventJournalOptions) {
    this.file = o.file;
    this.keep = Math.max(1, Math.floor(o.keep ?? 1000));
    this.now = o.now ?? (() => new Date());
    this.onWriteError = o.onWriteError ?? (() => undefined);
    const recovered = this.read();
    this.held = recovered.events.slice(-2 * this.keep);
    this.seq = recovered.events.at(-1)?.seq ?? 0;
    this.dirty = recovered.dirty;
    if (this.dirty) this.rewrite(this.held.slice(-this.keep));
  }

  /** The newest seq; 0 before the first event ever. */
  get last(): number {
    return this.seq;
  }

  record(input: EventInput): AcpEvent {
    const { traceId, kind, ...rest } = input;
    const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
    const event: AcpEvent = { seq: this.seq + 1, at: this.now().toISOString(), traceId: traceId ?? newTraceId(), kind, ...defined };
    this.seq = event.seq;
    this.held.push(event);
    if (this.held.length > 2 * this.keep) this.rewrite(this.held.slice(-this.keep));
    else if (this.dirty) this.rewrite(this.held);
    else this.append(event);
    return event;
  }

  after(seq: number, limit: number): AcpEvents {
    return eventsAfter(this.held, this.seq, seq, limit);
  }

  private read(): RecoveredJournal {
    if (!existsSync(this.file)) return { events: [], skipped: 0, dirty: false };
    try {
      return parseJournal(readTail(this.file));
    } catch (err) {
      // Unreadable (permissions, a directory in its place): start empty and say so; seq restarting is what
      // Ruriko's cursor reset is for.
      this.onWriteError(new Error(`reading ${this.file}: ${(err as Error).message}`));
      return { events: [], skipped: 0, dirty: true };
    }
  }

  private append(event: AcpEvent): void {
    try {
      appendFileSync(this.file, lines([event]));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return this.rewrite(this.held);
      this.failed(err as Error);
    }
  }

  /** Replaces the file with these events via a temp file and rename, so a crash leaves the old file or the new. */
  private rewrite(events: AcpEvent[]): void {
    this.held = events;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      writeFileAtomicSync(this.file, lines(events));
      this.dirty = false;
    } catch (err) {
      this.failed(err as Error);
    }
  }

  private failed(err: Error): void {
    this.dirty = true;
    this.onWriteError(new Error(`writing ${this.file}: ${err.message}`));
  }
}
