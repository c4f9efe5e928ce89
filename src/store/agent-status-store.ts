import type { AcpStatus } from "../api/generated/types.ts";
import type { Db } from "./database.ts";

/** The parts of an agent's ACP /status that say how it is doing (its config digests are kept apart). */
export type AgentRuntime = Required<Pick<AcpStatus, "mcps">> & Pick<AcpStatus, "conversation" | "model" | "counters">;

export type ConditionType = "Ready" | "Reconciling" | "Stalled" | "AwaitingApproval";
export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
}

export interface AgentStatus {
  agent: string;
  conditions: Condition[];
  observedRevision: string | null;
  appliedRevision: string | null;
  appliedSpecDigest: string | null;
  lastError: string | null;
  /** Consecutive failed reconciles; reset by a success. */
  failures: number;
  containerId: string | null;
  containerState: string | null;
  /** The Gosuto digest the agent reported over ACP, once it answered. */
  gosutoDigest: string | null;
  /** The secrets digest the agent reported (names and versions, never values). */
  secretsDigest: string | null;
  /** How the agent's own parts were doing when it last answered; null before it answered. */
  runtime: AgentRuntime | null;
  updatedAt: string;
}

interface Row {
  agent: string;
  conditions: string;
  observed_revision: string | null;
  applied_revision: string | null;
  applied_spec_digest: string | null;
  last_error: string | null;
  failures: number;
  container_id: string | null;
  container_state: string | null;
  gosuto_digest: string | null;
  secrets_digest: string | null;
  runtime: string | null;
  updated_at: string;
}

const fromRow = (r: Row): AgentStatus => ({
  agent: r.agent,
  conditions: JSON.parse(r.conditions) as Condition[],
  observedRevision: r.observed_revision,
  appliedRevision: r.applied_revision,
  appliedSpecDigest: r.applied_spec_digest,
  lastError: r.last_error,
  failures: r.failures,
  containerId: r.container_id,
  containerState: r.container_state,
  gosutoDigest: r.gosuto_digest,
  secretsDigest: r.secrets_digest,
  runtime: r.runtime ? (JSON.parse(r.runtime) as AgentRuntime) : null,
  updatedAt: r.updated_at,
});

export class AgentStatusStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  get(agent: string): AgentStatus | undefined {
    const row = this.db.prepare("SELECT * FROM agent_status WHERE agent = ?").get(agent) as Row | undefined;
    return row && fromRow(row);
  }

  list(): AgentStatus[] {
    return (this.db.prepare("SELECT * FROM agent_status ORDER BY agent").all() as Row[]).map(fromRow);
  }

  put(status: AgentStatus): void {
    this.db
      .prepare(
        `INSERT INTO agent_status (agent, conditions, observed_revision, applied_revision, applied_spec_digest, last_error, failures, container_id, container_state, gosuto_digest, secrets_digest, runtime, updated_at)
         VALUES (@agent, @conditions, @observedRevision, @appliedRevision, @appliedSpecDigest, @lastError, @failures, @containerId, @containerState, @gosutoDigest, @secretsDigest, @runtime, @updatedAt)
         ON CONFLICT (agent) DO UPDATE SET conditions = excluded.conditions, observed_revision = excluded.observed_revision,
           applied_revision = excluded.applied_revision, applied_spec_digest = excluded.applied_spec_digest, last_error = excluded.last_error,
           failures = excluded.failures, container_id = excluded.container_id, container_state = excluded.container_state,
           gosuto_digest = excluded.gosuto_digest, secrets_digest = excluded.secrets_digest, runtime = excluded.runtime, updated_at = excluded.updated_at`,
      )
      .run({ ...status, conditions: JSON.stringify(status.conditions), runtime: status.runtime ? JSON.stringify(status.runtime) : null });
  }

  delete(agent: string): void {
    this.db.prepare("DELETE FROM agent_status WHERE agent = ?").run(agent);
  }
}
