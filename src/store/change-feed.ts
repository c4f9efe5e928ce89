import type { Db } from "./database.ts";

/** One committed change, as the triggers of migration 7 record it: which kind of thing, and which one. */
export interface StateChange {
  seq: number;
  topic: "approval" | "secret";
  /** The approval request id, or the secret name. */
  key: string;
}

/**
 * The feed of state changes that triggers write for every process (serve, the CLI): a reader keeps the last
 * sequence number it saw and asks for what came after, so nothing is missed and nothing is polled for.
 */
export class ChangeFeed {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  latest(): number {
    return (this.db.prepare("SELECT COALESCE(max(seq), 0) AS seq FROM state_changes").get() as { seq: number }).seq;
  }

  since(seq: number, limit = 1000): StateChange[] {
    return this.db.prepare("SELECT seq, topic, key FROM state_changes WHERE seq > ? ORDER BY seq LIMIT ?").all(seq, limit) as StateChange[];
  }

  /** Forgets changes older than `before` (readers that far behind re-read everything anyway). */
  prune(before: Date): number {
    return this.db.prepare("DELETE FROM state_changes WHERE at < ?").run(before.toISOString()).changes;
  }
}
