import type { Db } from "./database.ts";

/** How far the audit log has read one agent's decision journal. */
export interface EventCursor {
  /** The seq of the last event copied; 0 before the first. */
  seq: number;
  /** That event's `at` and trace id: a journal that holds another event at this seq is another journal. */
  anchor: string | null;
}

interface Row {
  seq: number;
  anchor: string | null;
}

/** Per agent, the cursor into its decision journal. Moved only together with the audit entries it covers. */
export class AgentEventCursorStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  get(agent: string): EventCursor | undefined {
    const row = this.db.prepare("SELECT seq, anchor FROM agent_event_cursors WHERE agent = ?").get(agent) as Row | undefined;
    return row ? { seq: row.seq, anchor: row.anchor } : undefined;
  }

  set(agent: string, cursor: EventCursor, now = new Date()): void {
    this.db
      .prepare("INSERT INTO agent_event_cursors (agent, seq, anchor, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (agent) DO UPDATE SET seq = excluded.seq, anchor = excluded.anchor, updated_at = excluded.updated_at")
      .run(agent, cursor.seq, cursor.anchor, now.toISOString());
  }

  /** The agent is gone, and its volume with it: a new agent of that name starts a new journal. */
  forget(agent: string): void {
    this.db.prepare("DELETE FROM agent_event_cursors WHERE agent = ?").run(agent);
  }
}
