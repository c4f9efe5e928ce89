import type { ContainerSpec } from "../runtime/runtime.ts";
import type { Db } from "./database.ts";

/** One agent Ruriko created a container for. Pruning reads this, never the engine's list alone. */
export interface InventoryEntry {
  agent: string;
  containerId: string | null;
  specDigest: string;
  spec: ContainerSpec;
  /**
   * The engine's id of the image the container was created from (`sha256:…`): what the agent is approved to run
   * while its spec names the same reference. Null where the engine cannot tell (Kubernetes) or for rows older than it.
   */
  imageId: string | null;
  /** Ruriko stopped it (state: Stopped applied); a container exited otherwise crashed. */
  stopped: boolean;
  revision: string;
  createdAt: string;
  updatedAt: string;
}

interface Row {
  agent: string;
  container_id: string | null;
  spec_digest: string;
  spec: string;
  image_id: string | null;
  stopped: number;
  revision: string;
  created_at: string;
  updated_at: string;
}

const fromRow = (r: Row): InventoryEntry => ({
  agent: r.agent,
  containerId: r.container_id,
  specDigest: r.spec_digest,
  spec: JSON.parse(r.spec) as ContainerSpec,
  imageId: r.image_id,
  stopped: r.stopped === 1,
  revision: r.revision,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export class InventoryStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  get(agent: string): InventoryEntry | undefined {
    const row = this.db.prepare("SELECT * FROM inventory WHERE agent = ?").get(agent) as Row | undefined;
    return row && fromRow(row);
  }

  list(): InventoryEntry[] {
    return (this.db.prepare("SELECT * FROM inventory ORDER BY agent").all() as Row[]).map(fromRow);
  }

  /** Recorded before the container is created, so a crash in between leaves an entry to reconcile from. */
  record(agent: string, entry: { containerId: string | null; spec: ContainerSpec; imageId: string | null; stopped: boolean }): void {
    const now = new Date().toISOString();
    this.db
      .prepare(
        `INSERT INTO inventory (agent, container_id, spec_digest, spec, image_id, stopped, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (agent) DO UPDATE SET container_id = excluded.container_id, spec_digest = excluded.spec_digest,
           spec = excluded.spec, image_id = excluded.image_id, stopped = excluded.stopped, revision = excluded.revision, updated_at = excluded.updated_at`,
      )
      .run(agent, entry.containerId, entry.spec.specDigest, JSON.stringify(entry.spec), entry.imageId, entry.stopped ? 1 : 0, entry.spec.revision, now, now);
  }

  /** Ruriko started or stopped the agent's container. */
  setStopped(agent: string, stopped: boolean): void {
    this.db.prepare("UPDATE inventory SET stopped = ?, updated_at = ? WHERE agent = ?").run(stopped ? 1 : 0, new Date().toISOString(), agent);
  }

  forget(agent: string): void {
    this.db.prepare("DELETE FROM inventory WHERE agent = ?").run(agent);
  }
}
