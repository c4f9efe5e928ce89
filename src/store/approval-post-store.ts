import type { Db } from "./database.ts";

export interface ApprovalPost {
  requestId: string;
  room: string;
  outboxId: number;
  /** The request message's event id, once delivered. */
  eventId: string | null;
  announcedStatus: string | null;
}

interface Row {
  request_id: string;
  room: string;
  outbox_id: number;
  event_id: string | null;
  announced_status: string | null;
}

const fromRow = (r: Row): ApprovalPost => ({ requestId: r.request_id, room: r.room, outboxId: r.outbox_id, eventId: r.event_id, announcedStatus: r.announced_status });
const SELECT = "SELECT p.request_id, p.room, p.outbox_id, o.event_id, p.announced_status FROM approval_posts p JOIN outbox o ON o.id = p.outbox_id";

/** Which approval requests were posted to Matrix, as which event, and what was announced about them since. */
export class ApprovalPostStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  record(requestId: string, room: string, outboxId: number): void {
    this.db.prepare("INSERT OR IGNORE INTO approval_posts (request_id, room, outbox_id) VALUES (?, ?, ?)").run(requestId, room, outboxId);
  }

  get(requestId: string): ApprovalPost | undefined {
    const row = this.db.prepare(`${SELECT} WHERE p.request_id = ?`).get(requestId) as Row | undefined;
    return row && fromRow(row);
  }

  /** The post a reaction or reply points at: only Ruriko's own request events match. */
  byEventId(eventId: string): ApprovalPost | undefined {
    const row = this.db.prepare(`${SELECT} WHERE o.event_id = ?`).get(eventId) as Row | undefined;
    return row && fromRow(row);
  }

  /** Pending requests with a room that were not posted yet. */
  unposted(): string[] {
    return (
      this.db.prepare("SELECT a.id FROM approvals a LEFT JOIN approval_posts p ON p.request_id = a.id WHERE a.status = 'pending' AND a.room IS NOT NULL AND p.request_id IS NULL ORDER BY a.created_at").all() as Array<{ id: string }>
    ).map((r) => r.id);
  }

  /**
   * Delivered request posts whose status moved on since the last announcement. A post still in the outbox
   * waits: the outcome is a reply to it and an edit of it, which need its event id.
   */
  unannounced(): ApprovalPost[] {
    return (
      this.db
        .prepare(`${SELECT} JOIN approvals a ON a.id = p.request_id WHERE o.event_id IS NOT NULL AND a.status <> 'pending' AND (p.announced_status IS NULL OR p.announced_status <> a.status) ORDER BY a.decided_at`)
        .all() as Row[]
    ).map(fromRow);
  }

  /** Delivered posts of requests still pending, oldest first. */
  pendingDelivered(): ApprovalPost[] {
    return (this.db.prepare(`${SELECT} JOIN approvals a ON a.id = p.request_id WHERE o.event_id IS NOT NULL AND a.status = 'pending' ORDER BY o.id`).all() as Row[]).map(fromRow);
  }

  markAnnounced(requestId: string, status: string): void {
    this.db.prepare("UPDATE approval_posts SET announced_status = ? WHERE request_id = ?").run(status, requestId);
  }
}
