import type { Db } from "./database.ts";

/** A status line as the outbox keeps it: said in a room, maybe together with the lines queued after it. */
export interface OutboxLine {
  text: string;
  /** Coalesced with lines of other traces, it still names its own. */
  ownTrace?: boolean;
  /** The fact it repeats (rate-limited); undefined never repeats. */
  key?: string;
  /** A recovery: the agent whose earlier failures may be said again at once. */
  clears?: string;
}

export interface OutboxMessage {
  id: number;
  room: string;
  body: string;
  html: string;
  traceId: string;
  createdAt: string;
  sentAt: string | null;
  eventId: string | null;
  attempts: number;
  lastError: string | null;
  /** Extra content keys (namespaced), merged into the event content. */
  extra: Record<string, unknown> | null;
  /** Set for a status line (body and html then say it alone). */
  line: OutboxLine | null;
  /** False while lines queued after this one may still join its message; fixed before it is first sent. */
  fixed: boolean;
  /** The row whose message carries this line. */
  mergedInto: number | null;
}

interface Row {
  id: number;
  room: string;
  body: string;
  html: string;
  trace_id: string;
  created_at: string;
  sent_at: string | null;
  event_id: string | null;
  attempts: number;
  last_error: string | null;
  extra: string | null;
  line: string | null;
  line_key: string | null;
  line_clears: string | null;
  fixed: number;
  merged_into: number | null;
}

const fromRow = (r: Row): OutboxMessage => ({
  id: r.id,
  room: r.room,
  body: r.body,
  html: r.html,
  traceId: r.trace_id,
  createdAt: r.created_at,
  sentAt: r.sent_at,
  eventId: r.event_id,
  attempts: r.attempts,
  lastError: r.last_error,
  extra: r.extra ? (JSON.parse(r.extra) as Record<string, unknown>) : null,
  line: r.line ? { ...(JSON.parse(r.line) as OutboxLine), ...(r.line_key ? { key: r.line_key } : {}), ...(r.line_clears ? { clears: r.line_clears } : {}) } : null,
  fixed: r.fixed !== 0,
  mergedInto: r.merged_into,
});

/** Messages to chat rooms, durable before they are sent. */
export class OutboxStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  enqueue(message: { room: string; body: string; html: string; traceId: string; extra?: Record<string, unknown> }, now = new Date()): number {
    return Number(
      this.db
        .prepare("INSERT INTO outbox (room, body, html, trace_id, created_at, extra) VALUES (?, ?, ?, ?, ?, ?)")
        .run(message.room, message.body, message.html, message.traceId, now.toISOString(), message.extra ? JSON.stringify(message.extra) : null).lastInsertRowid,
    );
  }

  /**
   * A status line, open to the lines queued after it: the deliverer fixes what one message says when it sends it.
   * `body` and `html` say the line alone. Call it in the transaction of the change the line reports.
   */
  enqueueLine(message: { room: string; line: OutboxLine; body: string; html: string; traceId: string }, now = new Date()): number {
    const { text, ownTrace, key, clears } = message.line;
    return Number(
      this.db
        .prepare("INSERT INTO outbox (room, body, html, trace_id, created_at, line, line_key, line_clears, fixed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)")
        .run(message.room, message.body, message.html, message.traceId, now.toISOString(), JSON.stringify({ text, ...(ownTrace ? { ownTrace } : {}) }), key ?? null, clears ?? null).lastInsertRowid,
    );
  }

  /**
   * When a line with `key` was last enqueued (ISO time), unless a recovery of `scope` was enqueued after it: a
   * repeated failure is rate-limited from what the outbox holds, so the limit survives a restart.
   */
  lastSaid(key: string, scope: string): string | undefined {
    const row = this.db
      .prepare(
        "SELECT o.created_at FROM outbox o WHERE o.id = (SELECT MAX(id) FROM outbox WHERE line_key = ?) AND NOT EXISTS (SELECT 1 FROM outbox c WHERE c.line_clears = ? AND c.id > o.id)",
      )
      .get(key, scope) as { created_at: string } | undefined;
    return row?.created_at;
  }

  /** The oldest unsent message of each room: delivery is in order per room, so only a head may go. */
  heads(): OutboxMessage[] {
    return (
      this.db
        .prepare("SELECT * FROM outbox WHERE id IN (SELECT MIN(id) FROM outbox WHERE sent_at IS NULL AND merged_into IS NULL GROUP BY room) ORDER BY id")
        .all() as Row[]
    ).map(fromRow);
  }

  /** The unsent messages of a room from `fromId` on, in order (the head and what waits behind it). */
  pending(room: string, fromId: number, limit: number): OutboxMessage[] {
    return (
      this.db.prepare("SELECT * FROM outbox WHERE room = ? AND id >= ? AND sent_at IS NULL AND merged_into IS NULL ORDER BY id LIMIT ?").all(room, fromId, limit) as Row[]
    ).map(fromRow);
  }

  /**
   * Fixes what the message of `headId` says, with `mergedIds` delivered as part of it: from here on it is sent
   * as it is, whatever is queued later, so a resend after a crash is the same message under the same id.
   */
  fix(headId: number, mergedIds: readonly number[], content: { body: string; html: string }): OutboxMessage {
    return this.db.transaction(() => {
      this.db.prepare("UPDATE outbox SET fixed = 1, body = ?, html = ? WHERE id = ?").run(content.body, content.html, headId);
      const merge = this.db.prepare("UPDATE outbox SET fixed = 1, merged_into = ? WHERE id = ? AND sent_at IS NULL");
      for (const id of mergedIds) merge.run(headId, id);
      return fromRow(this.db.prepare("SELECT * FROM outbox WHERE id = ?").get(headId) as Row);
    })();
  }

  /** Marks a message sent, and the lines delivered as part of it. */
  markSent(id: number, eventId: string, now = new Date()): void {
    this.db.transaction(() => {
      this.db.prepare("UPDATE outbox SET sent_at = ?, event_id = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?").run(now.toISOString(), eventId, id);
      this.db.prepare("UPDATE outbox SET sent_at = ?, event_id = ? WHERE merged_into = ?").run(now.toISOString(), eventId, id);
    })();
  }

  markFailed(id: number, error: string): void {
    this.db.prepare("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?").run(error.slice(0, 500), id);
  }

  unsentCount(): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL").get() as { n: number }).n;
  }

  list(limit = 100): OutboxMessage[] {
    return (this.db.prepare("SELECT * FROM outbox ORDER BY id DESC LIMIT ?").all(limit) as Row[]).map(fromRow).reverse();
  }
}
