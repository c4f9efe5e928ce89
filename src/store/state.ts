import { join } from "node:path";
import { AgentEventCursorStore } from "./agent-event-cursor-store.ts";
import { AgentStatusStore } from "./agent-status-store.ts";
import { AppliedConfigStore } from "./applied-config-store.ts";
import { ApprovalPostStore } from "./approval-post-store.ts";
import { ApprovalStore } from "./approval-store.ts";
import { AuditLog } from "./audit-log.ts";
import { ChangeFeed } from "./change-feed.ts";
import { openDatabase, type Db } from "./database.ts";
import { InventoryStore } from "./inventory-store.ts";
import { MatrixAccountStore } from "./matrix-account-store.ts";
import { MetaStore } from "./meta-store.ts";
import { OutboxStore } from "./outbox-store.ts";
import { PolicyStore } from "./policy-store.ts";
import { SeenEventsStore } from "./seen-events-store.ts";
import { RevisionStore } from "./revision-store.ts";

export interface StateStores {
  db: Db;
  meta: MetaStore;
  status: AgentStatusStore;
  inventory: InventoryStore;
  revisions: RevisionStore;
  approvals: ApprovalStore;
  audit: AuditLog;
  /** How far the audit log has read each agent's decision journal. */
  eventCursors: AgentEventCursorStore;
  outbox: OutboxStore;
  seenEvents: SeenEventsStore;
  approvalPosts: ApprovalPostStore;
  matrixAccounts: MatrixAccountStore;
  appliedConfig: AppliedConfigStore;
  policies: PolicyStore;
  feed: ChangeFeed;
  /** This installation's id, used in every ownership label. */
  instance: string;
  /** Runs `fn` in one transaction: writes to several tables land together or not at all (a crash between them). */
  transaction<T>(fn: () => T): T;
  close(): void;
}

export const STATE_DB_FILE = "ruriko.sqlite";

/** Opens (and migrates) the state database of a state directory. */
export function openState(stateDir: string): StateStores {
  const db = openDatabase(join(stateDir, STATE_DB_FILE));
  const meta = new MetaStore(db);
  return {
    db,
    meta,
    status: new AgentStatusStore(db),
    inventory: new InventoryStore(db),
    revisions: new RevisionStore(db),
    approvals: new ApprovalStore(db),
    audit: new AuditLog(db),
    eventCursors: new AgentEventCursorStore(db),
    outbox: new OutboxStore(db),
    seenEvents: new SeenEventsStore(db),
    approvalPosts: new ApprovalPostStore(db),
    matrixAccounts: new MatrixAccountStore(db),
    appliedConfig: new AppliedConfigStore(db),
    policies: new PolicyStore(db),
    feed: new ChangeFeed(db),
    instance: meta.instanceId(),
    transaction: (fn) => db.transaction(fn)(),
    close: () => db.close(),
  };
}
