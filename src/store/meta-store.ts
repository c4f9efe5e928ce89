import { randomBytes } from "node:crypto";
import type { Db } from "./database.ts";

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

  /**
   * The id that goes into every ownership label. Generated once per state database, so two installs on one
   * host never claim each other's containers, and a restart keeps claiming its own.
   */
  instanceId(): string {
    const existing = this.get("instance_id");
    if (existing) return existing;
    const id = randomBytes(4).toString("hex");
    this.set("instance_id", id);
    return id;
  }
}
