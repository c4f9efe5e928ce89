import type { Db } from "./database.ts";

/** Matrix events already acted on. */
export class SeenEventsStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  /** True the first time an event id is offered, false ever after (also across restarts). */
  firstSighting(eventId: string, now = new Date()): boolean {
    return this.db.prepare("INSERT OR IGNORE INTO matrix_seen_events (event_id, seen_at) VALUES (?, ?)").run(eventId, now.toISOString()).changes === 1;
  }

  /** Forgets sightings older than `before`; events that old are never delivered again. */
  prune(before: Date): number {
    return this.db.prepare("DELETE FROM matrix_seen_events WHERE seen_at < ?").run(before.toISOString()).changes;
  }
}
