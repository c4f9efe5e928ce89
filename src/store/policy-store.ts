import type { ApprovalPolicyManifest } from "../api/generated/types.ts";
import type { Db } from "./database.ts";

export interface PolicyInForce {
  name: string;
  digest: string;
  manifest: ApprovalPolicyManifest;
  /** The revision it was applied from. */
  revision: string;
  appliedAt: string;
}

interface Row {
  name: string;
  digest: string;
  manifest: string;
  revision: string;
  applied_at: string;
}

/** Set once the first revision's policies were put in force without asking anyone (there was nobody to ask). */
const BOOTSTRAPPED = "policies_bootstrapped";

/**
 * The ApprovalPolicy objects in force: as Ruriko last applied them. Whether a change needs approval, and whose,
 * is read from here and never from the revision proposing the change, so a revision cannot approve itself.
 */
export class PolicyStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  list(): PolicyInForce[] {
    return (this.db.prepare("SELECT * FROM policies_in_force ORDER BY name").all() as Row[]).map((r) => ({
      name: r.name,
      digest: r.digest,
      manifest: JSON.parse(r.manifest) as ApprovalPolicyManifest,
      revision: r.revision,
      appliedAt: r.applied_at,
    }));
  }

  manifests(): ApprovalPolicyManifest[] {
    return this.list().map((p) => p.manifest);
  }

  get(name: string): PolicyInForce | undefined {
    return this.list().find((p) => p.name === name);
  }

  put(manifest: ApprovalPolicyManifest, digest: string, revision: string, now = new Date()): void {
    this.db
      .prepare(
        `INSERT INTO policies_in_force (name, digest, manifest, revision, applied_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET digest = excluded.digest, manifest = excluded.manifest, revision = excluded.revision, applied_at = excluded.applied_at`,
      )
      .run(manifest.metadata.name, digest, JSON.stringify(manifest), revision, now.toISOString());
  }

  delete(name: string): void {
    this.db.prepare("DELETE FROM policies_in_force WHERE name = ?").run(name);
  }

  /** True once a revision's policies were put in force at a first start; from then on every change is gated. */
  bootstrapped(): boolean {
    return (this.db.prepare("SELECT 1 FROM meta WHERE key = ?").get(BOOTSTRAPPED) as unknown) !== undefined;
  }

  markBootstrapped(revision: string): void {
    this.db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)").run(BOOTSTRAPPED, revision);
  }
}
