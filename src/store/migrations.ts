/**
 * Schema migrations, applied in order at start. Never edit a released migration: append a new one.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "initial",
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

      -- Per-agent status, written once at the end of each reconcile (kstatus conditions as JSON).
      CREATE TABLE agent_status (
        agent TEXT PRIMARY KEY,
        conditions TEXT NOT NULL,
        observed_revision TEXT,
        applied_revision TEXT,
        applied_spec_digest TEXT,
        last_error TEXT,
        failures INTEGER NOT NULL DEFAULT 0,
        container_id TEXT,
        container_state TEXT,
        updated_at TEXT NOT NULL
      );

      -- What Ruriko created: pruning works from this list, never from what the engine happens to show.
      CREATE TABLE inventory (
        agent TEXT PRIMARY KEY,
        container_id TEXT,
        spec_digest TEXT NOT NULL,
        -- The container spec last applied (non-secret by construction), to explain the next change.
        spec TEXT NOT NULL,
        revision TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );

      -- Every snapshot a source delivered and what became of it.
      CREATE TABLE revisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        revision TEXT NOT NULL,
        digest TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'rejected')),
        errors TEXT NOT NULL DEFAULT '[]',
        objects INTEGER NOT NULL,
        received_at TEXT NOT NULL,
        trace_id TEXT NOT NULL
      );
      CREATE INDEX revisions_received ON revisions (id DESC);

      CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        object_key TEXT NOT NULL,
        operation TEXT NOT NULL,
        from_digest TEXT NOT NULL,
        to_digest TEXT NOT NULL,
        revision TEXT NOT NULL,
        summary TEXT NOT NULL,
        policy TEXT,
        room TEXT,
        approvers TEXT NOT NULL,
        quorum INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'superseded', 'applied')),
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        remind_at TEXT,
        decided_at TEXT,
        decided_by TEXT,
        reason TEXT,
        trace_id TEXT NOT NULL
      );
      CREATE INDEX approvals_agent_status ON approvals (agent, status);
      -- One live request per exact change: re-planning the same change finds it instead of adding another.
      CREATE UNIQUE INDEX approvals_one_pending ON approvals (agent, operation, from_digest, to_digest) WHERE status = 'pending';

      CREATE TABLE approval_votes (
        request_id TEXT NOT NULL REFERENCES approvals (id),
        approver TEXT NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('approve', 'deny')),
        source TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (request_id, approver)
      );

      -- Append-only: the triggers make UPDATE and DELETE fail, whoever tries.
      CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        payload TEXT NOT NULL DEFAULT '{}',
        result TEXT NOT NULL
      );
      CREATE INDEX audit_trace ON audit_log (trace_id);
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    `,
  },
  {
    version: 2,
    name: "secrets-and-agent-config",
    sql: `
      -- Which master key the store is under: a sealed known text, so a wrong key is refused at start.
      CREATE TABLE master_key_check (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        key_id TEXT NOT NULL,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        tag BLOB NOT NULL
      );

      -- Secret values, AES-256-GCM; the associated data binds each ciphertext to its name and version.
      -- revision is random per write: what agents' secret digests are made of (never the value).
      CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        revision TEXT NOT NULL,
        key_id TEXT NOT NULL,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        tag BLOB NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );

      -- Each agent's ACP bearer token, sealed like a secret.
      CREATE TABLE agent_tokens (
        agent TEXT PRIMARY KEY,
        key_id TEXT NOT NULL,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        tag BLOB NOT NULL,
        created_at TEXT NOT NULL
      );

      -- What the agent itself last reported over ACP.
      ALTER TABLE agent_status ADD COLUMN gosuto_digest TEXT;
      ALTER TABLE agent_status ADD COLUMN secrets_digest TEXT;
    `,
  },
  {
    version: 3,
    name: "matrix-outbox",
    sql: `
      -- Chat messages are written here first and delivered in order by id, so nothing is lost while the
      -- homeserver is away; the id doubles as the Matrix transaction id, so a resend after a crash is deduplicated.
      CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        room TEXT NOT NULL,
        body TEXT NOT NULL,
        html TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        sent_at TEXT,
        event_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
      );
      CREATE INDEX outbox_unsent ON outbox (room, id) WHERE sent_at IS NULL;
    `,
  },
  {
    version: 4,
    name: "matrix-seen-events",
    sql: `
      -- Chat events Ruriko acted on, so that a restart (and the homeserver resending a sync) never acts twice.
      CREATE TABLE matrix_seen_events (event_id TEXT PRIMARY KEY, seen_at TEXT NOT NULL);
    `,
  },
  {
    version: 5,
    name: "matrix-approvals",
    sql: `
      -- Extra content keys of a chat message (JSON), e.g. the namespaced approval key of a request post.
      ALTER TABLE outbox ADD COLUMN extra TEXT;
      CREATE INDEX outbox_event ON outbox (event_id);

      -- Approval requests posted to their policy room: the post is an outbox message, its event id arrives on delivery.
      CREATE TABLE approval_posts (
        request_id TEXT PRIMARY KEY REFERENCES approvals (id),
        room TEXT NOT NULL,
        outbox_id INTEGER NOT NULL REFERENCES outbox (id),
        -- The outcome already announced in the room (NULL while pending).
        announced_status TEXT
      );
    `,
  },
  {
    version: 6,
    name: "matrix-agent-accounts",
    sql: `
      -- Matrix accounts Ruriko created for agents (spec.matrix.provision). Keyed by localpart: a homeserver never
      -- reuses a deactivated user id, so an agent re-created after removal gets a new account. The token and the
      -- password live sealed in the secret store, never here.
      CREATE TABLE matrix_accounts (
        localpart TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        -- registering → active → deactivated
        state TEXT NOT NULL,
        user_id TEXT,
        display_name TEXT,
        -- Rooms Ruriko joined the account to, as {"<id or alias as written>": "<room id>"}: only these are ever left.
        rooms TEXT NOT NULL DEFAULT '{}',
        last_error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE UNIQUE INDEX matrix_accounts_current ON matrix_accounts (agent) WHERE state <> 'deactivated';
    `,
  },
  {
    version: 7,
    name: "one-plan-one-gate",
    sql: `
      -- A request is bound to the change AND to the policy in force (requirement_digest: which policy, room,
      -- approvers, quorum); to the text it was proposed from (source_digest: the defining file), so a denied
      -- change is asked again once that file is touched; to who wrote it (authors) and whose votes therefore do
      -- not count (excluded). retired_at: the change left the plan; the request never approves or blocks it again.
      ALTER TABLE approvals ADD COLUMN requirement_digest TEXT;
      ALTER TABLE approvals ADD COLUMN source_digest TEXT;
      ALTER TABLE approvals ADD COLUMN authors TEXT NOT NULL DEFAULT '[]';
      ALTER TABLE approvals ADD COLUMN excluded TEXT NOT NULL DEFAULT '[]';
      ALTER TABLE approvals ADD COLUMN retired_at TEXT;
      -- An approval waiting to be carried out is as live as a pending one: one of either per exact change.
      UPDATE approvals SET status = 'superseded', reason = 'an older duplicate of a live request', retired_at = created_at
        WHERE status IN ('pending', 'approved') AND rowid NOT IN (
          SELECT max(rowid) FROM approvals WHERE status IN ('pending', 'approved') GROUP BY agent, object_key, operation, from_digest, to_digest);
      DROP INDEX approvals_one_pending;
      CREATE UNIQUE INDEX approvals_one_live ON approvals (agent, object_key, operation, from_digest, to_digest) WHERE status IN ('pending', 'approved');
      CREATE INDEX approvals_object ON approvals (object_key, status);
      CREATE INDEX approvals_deadline ON approvals (expires_at) WHERE status IN ('pending', 'approved');
      -- Votes are withdrawn by the event they came from (a redacted reaction).
      CREATE INDEX approval_votes_source ON approval_votes (source);

      -- Whether Ruriko stopped the agent's container (spec.state Stopped applied): starting it again is a change to
      -- gate, not the repair of a crash.
      ALTER TABLE inventory ADD COLUMN stopped INTEGER NOT NULL DEFAULT 0;

      -- What Ruriko applied inside each agent: the planner diffs the manifests against this, never against what
      -- the agent happens to report. gosuto_yaml is NULL for a Gosuto applied before this table existed.
      CREATE TABLE agent_config_applied (
        agent TEXT PRIMARY KEY,
        gosuto_name TEXT,
        gosuto_digest TEXT,
        gosuto_yaml TEXT,
        matrix_user_id TEXT,
        revision TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      INSERT INTO agent_config_applied (agent, gosuto_digest, revision, updated_at)
        SELECT agent, gosuto_digest, COALESCE(applied_revision, ''), updated_at FROM agent_status WHERE gosuto_digest IS NOT NULL;

      -- Secrets granted to agents (SecretBindings applied). A revoke deletes the row: adding the binding back is a
      -- new grant. secret is NULL for grants applied before this table existed (the binding of that digest names it).
      CREATE TABLE secret_grants (
        agent TEXT NOT NULL,
        binding TEXT NOT NULL,
        secret TEXT,
        env TEXT,
        digest TEXT NOT NULL,
        approval_id TEXT,
        revision TEXT NOT NULL,
        granted_at TEXT NOT NULL,
        PRIMARY KEY (agent, binding)
      );
      INSERT OR IGNORE INTO secret_grants (agent, binding, digest, approval_id, revision, granted_at)
        SELECT agent, substr(object_key, length('SecretBinding/') + 1), to_digest, id, revision, COALESCE(decided_at, created_at)
        FROM approvals WHERE operation = 'grant' AND status = 'applied' AND object_key LIKE 'SecretBinding/%' ORDER BY created_at DESC;

      -- The ApprovalPolicy objects in force, as Ruriko last applied them: they, never the revision being
      -- proposed, decide what needs approval.
      CREATE TABLE policies_in_force (
        name TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        manifest TEXT NOT NULL,
        revision TEXT NOT NULL,
        applied_at TEXT NOT NULL
      );

      -- A new secret value waiting for its rotation to be approved, sealed like the secrets themselves (for the
      -- version it will become: its associated data names it).
      CREATE TABLE secret_pending (
        name TEXT PRIMARY KEY,
        revision TEXT NOT NULL,
        version INTEGER NOT NULL,
        key_id TEXT NOT NULL,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        tag BLOB NOT NULL,
        created_at TEXT NOT NULL
      );

      -- A feed of state changes any process makes (serve, the CLI): readers follow it by sequence number, so a
      -- decision taken in another process reaches the controller as an event. Written by triggers, so no writer
      -- can forget to.
      CREATE TABLE state_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        topic TEXT NOT NULL,
        key TEXT NOT NULL,
        at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
      );
      CREATE TRIGGER approvals_feed_insert AFTER INSERT ON approvals BEGIN
        INSERT INTO state_changes (topic, key) VALUES ('approval', NEW.id);
      END;
      CREATE TRIGGER approvals_feed_status AFTER UPDATE OF status ON approvals WHEN OLD.status IS NOT NEW.status BEGIN
        INSERT INTO state_changes (topic, key) VALUES ('approval', NEW.id);
      END;
      CREATE TRIGGER secrets_feed_insert AFTER INSERT ON secrets BEGIN
        INSERT INTO state_changes (topic, key) VALUES ('secret', NEW.name);
      END;
      CREATE TRIGGER secrets_feed_update AFTER UPDATE OF revision ON secrets BEGIN
        INSERT INTO state_changes (topic, key) VALUES ('secret', NEW.name);
      END;
      CREATE TRIGGER secrets_feed_delete AFTER DELETE ON secrets BEGIN
        INSERT INTO state_changes (topic, key) VALUES ('secret', OLD.name);
      END;
    `,
  },
  {
    version: 8,
    name: "agent-runtime",
    sql: `
      -- How the agent's own parts are doing (Matrix, model, MCP servers, counters) as it last reported over ACP:
      -- JSON, names and states only, never a secret.
      ALTER TABLE agent_status ADD COLUMN runtime TEXT;
    `,
  },
  {
    version: 9,
    name: "agent-event-cursors",
    sql: `
      -- How far Ruriko has read each agent's decision journal (GET /events): the seq of the last event copied into
      -- the audit log, moved in the same transaction as those entries. anchor names that event (its time and trace
      -- id), so a journal replaced behind Ruriko's back (a new volume) is noticed even when its seq has caught up.
      CREATE TABLE agent_event_cursors (
        agent TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        anchor TEXT,
        updated_at TEXT NOT NULL
      );
      -- An agent's latest decisions (ruriko status, /ruriko agent NAME) are read by actor, newest first.
      CREATE INDEX audit_actor ON audit_log (actor, id);
    `,
  },
  {
    version: 10,
    name: "outbox-status-lines",
    sql: `
      -- A status line is written to the outbox in the transaction of the change it reports, one row per line; the
      -- deliverer joins the lines waiting for a room into one message when it sends them (coalescing at delivery).
      -- line: the line as JSON ({text, ownTrace}); NULL for every other message.
      ALTER TABLE outbox ADD COLUMN line TEXT;
      -- The fact a line repeats (said once per window), and the agent a recovery lets be told of again.
      ALTER TABLE outbox ADD COLUMN line_key TEXT;
      ALTER TABLE outbox ADD COLUMN line_clears TEXT;
      -- 0 while the lines after a status line may still join its message; set to 1 before the message is first
      -- sent, so a resend after a crash carries the same content under the same transaction id.
      ALTER TABLE outbox ADD COLUMN fixed INTEGER NOT NULL DEFAULT 1;
      -- A line delivered as part of another row's message (that row's id is the transaction id).
      ALTER TABLE outbox ADD COLUMN merged_into INTEGER REFERENCES outbox (id);
      CREATE INDEX outbox_line_key ON outbox (line_key, id) WHERE line_key IS NOT NULL;
      CREATE INDEX outbox_line_clears ON outbox (line_clears, id) WHERE line_clears IS NOT NULL;
      CREATE INDEX outbox_merged ON outbox (merged_into) WHERE merged_into IS NOT NULL;
    `,
  },
  {
    version: 11,
    name: "inventory-image-id",
    sql: `
      -- The engine's id of the image the agent's container was created from (sha256:…): the image it is approved to
      -- run. A container made again for the same reference (a heal, another field's change) is made from it, so a
      -- tag that moved meanwhile never slips in without its own, gated, change. NULL where the engine cannot tell.
      ALTER TABLE inventory ADD COLUMN image_id TEXT;
    `,
  },
];
