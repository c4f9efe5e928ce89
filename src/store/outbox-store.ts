import type { Db } from "./database.ts";

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

  /** The oldest unsent message of each room: delivery is in order per room, so only a head may go. */
  heads(): OutboxMessage[] {
    return (
      this.db.prepare("SELECT * FROM outbox WHERE id IN (SELECT MIN(id) FROM outbox WHERE sent_at IS NULL GROUP BY room) ORDER BY id").all() as Row[]
    ).map(fromRow);
  }

  markSent(id: number, eventId: string, now = new Date()): void {
    this.db.prepare("UPDATE outbox SET sent_at = ?, event_id = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?").run(now.toISOString(), eventId, id);
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
