import type { Db } from "./database.ts";

export type MatrixAccountState = "registering" | "active" | "deactivated";

/** A Matrix account Ruriko created for an agent. */
export interface MatrixAccount {
  localpart: string;
  agent: string;
  state: MatrixAccountState;
  /** Known once registered. */
  userId: string | null;
  displayName: string | null;
  /** Rooms Ruriko joined it to: the reference as the Gosuto writes it → the room id. */
  rooms: Record<string, string>;
  /** Why the last attempt to bring it to its desired state failed; null once it succeeds. */
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

interface Row {
  localpart: string;
  agent: string;
  state: MatrixAccountState;
  user_id: string | null;
  display_name: string | null;
  rooms: string;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

const fromRow = (r: Row): MatrixAccount => ({
  localpart: r.localpart,
  agent: r.agent,
  state: r.state,
  userId: r.user_id,
  displayName: r.display_name,
  rooms: JSON.parse(r.rooms) as Record<string, string>,
  lastError: r.last_error,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** The accounts Ruriko provisioned, and what it did with them. Only these are ever deactivated. */
export class MatrixAccountStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  /** The agent's account that is not deactivated, if any. */
  current(agent: string): MatrixAccount | undefined {
    const row = this.db.prepare("SELECT * FROM matrix_accounts WHERE agent = ? AND state <> 'deactivated'").get(agent) as Row | undefined;
    return row && fromRow(row);
  }

  /** Every account not deactivated. */
  list(): MatrixAccount[] {
    return (this.db.prepare("SELECT * FROM matrix_accounts WHERE state <> 'deactivated' ORDER BY agent").all() as Row[]).map(fromRow);
  }

  /** How many accounts the agent ever had (deactivated ones included): the next one's localpart depends on it. */
  countFor(agent: string): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM matrix_accounts WHERE agent = ?").get(agent) as { n: number }).n;
  }

  beginRegistration(agent: string, localpart: string, displayName: string | null, now = new Date()): MatrixAccount {
    const at = now.toISOString();
    this.db
      .prepare("INSERT INTO matrix_accounts (localpart, agent, state, display_name, created_at, updated_at) VALUES (?, ?, 'registering', ?, ?, ?)")
      .run(localpart, agent, displayName, at, at);
    return this.current(agent)!;
  }

  activate(localpart: string, userId: string, now = new Date()): void {
    this.update(localpart, "state = 'active', user_id = ?, last_error = NULL", [userId], now);
  }

  setRooms(localpart: string, rooms: Record<string, string>, now = new Date()): void {
    this.update(localpart, "rooms = ?", [JSON.stringify(rooms)], now);
  }

  setDisplayName(localpart: string, displayName: string | null, now = new Date()): void {
    this.update(localpart, "display_name = ?", [displayName], now);
  }

  /** Records the outcome of an attempt: an error text, or null for success. Unchanged values are not rewritten. */
  setError(localpart: string, error: string | null, now = new Date()): void {
    this.db
      .prepare("UPDATE matrix_accounts SET last_error = ?, updated_at = ? WHERE localpart = ? AND last_error IS NOT ?")
      .run(error, now.toISOString(), localpart, error);
  }

  markDeactivated(localpart: string, now = new Date()): void {
    this.update(localpart, "state = 'deactivated', rooms = '{}', last_error = NULL", [], now);
  }

  private update(localpart: string, set: string, args: unknown[], now: Date): void {
    this.db.prepare(`UPDATE matrix_accounts SET ${set}, updated_at = ? WHERE localpart = ?`).run(...args, now.toISOString(), localpart);
  }
}
