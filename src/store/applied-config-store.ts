import type { Db } from "./database.ts";

/** The Gosuto Ruriko applied to an agent. `yaml` is null for one applied before Ruriko kept its text. */
export interface AppliedGosuto {
  name: string | null;
  digest: string;
  yaml: string | null;
}

/** A secret granted to an agent: a SecretBinding Ruriko applied. */
export interface SecretGrant {
  binding: string;
  /** null for a grant applied before Ruriko kept the secret's name: the binding of the same digest names it. */
  secret: string | null;
  env: string | null;
  digest: string;
  approvalId: string | null;
}

/**
 * What Ruriko applied inside each agent — its Gosuto, its Matrix identity, its granted secrets — as opposed
 * to what the manifests ask for now and what the agent reports. The planner diffs the manifests against this,
 * so a change waits for approval while the last applied configuration stays in force; a revoke deletes the
 * grant, so adding the binding back is a new grant.
 */
export interface AppliedConfig {
  gosuto: AppliedGosuto | null;
  matrixUserId: string | null;
  grants: SecretGrant[];
}

interface ConfigRow {
  gosuto_name: string | null;
  gosuto_digest: string | null;
  gosuto_yaml: string | null;
  matrix_user_id: string | null;
}

interface GrantRow {
  binding: string;
  secret: string | null;
  env: string | null;
  digest: string;
  approval_id: string | null;
}

export class AppliedConfigStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  get(agent: string): AppliedConfig {
    const row = this.db.prepare("SELECT gosuto_name, gosuto_digest, gosuto_yaml, matrix_user_id FROM agent_config_applied WHERE agent = ?").get(agent) as ConfigRow | undefined;
    const grants = (this.db.prepare("SELECT binding, secret, env, digest, approval_id FROM secret_grants WHERE agent = ? ORDER BY binding").all(agent) as GrantRow[]).map((g) => ({
      binding: g.binding,
      secret: g.secret,
      env: g.env,
      digest: g.digest,
      approvalId: g.approval_id,
    }));
    return {
      gosuto: row?.gosuto_digest ? { name: row.gosuto_name, digest: row.gosuto_digest, yaml: row.gosuto_yaml } : null,
      matrixUserId: row?.matrix_user_id ?? null,
      grants,
    };
  }

  /** Every agent with a grant of `secret` (the agents a rotation of it reaches). */
  agentsGranted(secret: string): string[] {
    return (this.db.prepare("SELECT DISTINCT agent FROM secret_grants WHERE secret = ? OR secret IS NULL ORDER BY agent").all(secret) as Array<{ agent: string }>).map((r) => r.agent);
  }

  setGosuto(agent: string, gosuto: { name: string; digest: string; yaml: string }, revision: string, now = new Date()): void {
    this.upsert(agent, revision, now, "gosuto_name = excluded.gosuto_name, gosuto_digest = excluded.gosuto_digest, gosuto_yaml = excluded.gosuto_yaml", {
      gosuto_name: gosuto.name,
      gosuto_digest: gosuto.digest,
      gosuto_yaml: gosuto.yaml,
      matrix_user_id: null,
    });
  }

  setMatrixUserId(agent: string, userId: string | null, revision: string, now = new Date()): void {
    this.upsert(agent, revision, now, "matrix_user_id = excluded.matrix_user_id", { gosuto_name: null, gosuto_digest: null, gosuto_yaml: null, matrix_user_id: userId });
  }

  grant(agent: string, grant: SecretGrant, revision: string, now = new Date()): void {
    this.db
      .prepare(
        `INSERT INTO secret_grants (agent, binding, secret, env, digest, approval_id, revision, granted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (agent, binding) DO UPDATE SET secret = excluded.secret, env = excluded.env, digest = excluded.digest, approval_id = excluded.approval_id,
           revision = excluded.revision, granted_at = excluded.granted_at`,
      )
      .run(agent, grant.binding, grant.secret, grant.env, grant.digest, grant.approvalId, revision, now.toISOString());
  }

  revoke(agent: string, binding: string): void {
    this.db.prepare("DELETE FROM secret_grants WHERE agent = ? AND binding = ?").run(agent, binding);
  }

  /** The agent is gone: nothing of it stays applied. */
  forget(agent: string): void {
    this.db.prepare("DELETE FROM agent_config_applied WHERE agent = ?").run(agent);
    this.db.prepare("DELETE FROM secret_grants WHERE agent = ?").run(agent);
  }

  private upsert(agent: string, revision: string, now: Date, update: string, values: ConfigRow): void {
    this.db
      .prepare(
        `INSERT INTO agent_config_applied (agent, gosuto_name, gosuto_digest, gosuto_yaml, matrix_user_id, revision, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (agent) DO UPDATE SET ${update}, revision = excluded.revision, updated_at = excluded.updated_at`,
      )
      .run(agent, values.gosuto_name, values.gosuto_digest, values.gosuto_yaml, values.matrix_user_id, revision, now.toISOString());
  }
}
