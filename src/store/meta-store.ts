import { randomBytes } from "node:crypto";
import type { Db } from "./database.ts";

/** Meta key of the instance id. */
export const INSTANCE_META = "instance_id";

/**
 * Meta key saying that the engine must be read into the inventory before the controller runs
 * (controller/engine-adoption.ts): "lost" (set with the instance id when `serve --adopt-orphans` takes over a lost
 * database) or "restored" (set in every backup copy by `ruriko backup`, so it is there when the copy becomes the
 * live database). Cleared in the transaction that records what was adopted: an interrupted adoption is done again
 * at the next start.
 */
export const ADOPT_META = "adopt.engine";

/** Meta key, in a backup copy only: when the backup was taken. */
export const BACKUP_TAKEN_META = "backup.taken_at";

/** Small key/value facts about this installation. */
export class MetaStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  get(key: string): string | undefined {
    return (this.db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined)?.value;
  }

  set(key: string, value: string): void {
    this.db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(key, value);
  }

  delete(key: string): void {
    this.db.prepare("DELETE FROM meta WHERE key = ?").run(key);
  }

  /**
   * The id that goes into every ownership label. Generated once per state database, so two installs on one
   * host never claim each other's containers, and a restart keeps claiming its own. openState (state.ts) decides
   * whether a database without one may get a new one: one whose state directory records an id lost it.
   */
  instanceId(): string {
    const existing = this.get(INSTANCE_META);
    if (existing) return existing;
    const id = randomBytes(4).toString("hex");
    this.set(INSTANCE_META, id);
    return id;
  }
}
