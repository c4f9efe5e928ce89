import { join } from "node:path";
import { AgentEventCursorStore } from "./agent-event-cursor-store.ts";
import { AgentStatusStore } from "./agent-status-store.ts";
import { AppliedConfigStore } from "./applied-config-store.ts";
import { ApprovalPostStore } from "./approval-post-store.ts";
import { ApprovalStore } from "./approval-store.ts";
import { AuditLog } from "./audit-log.ts";
import { ChangeFeed } from "./change-feed.ts";
import { openDatabase, type Db } from "./database.ts";
import { dbFileState, InstanceMismatchError, judgeInstance, LostStateError, readInstanceFile, writeInstanceFile } from "./instance-file.ts";
import { InventoryStore } from "./inventory-store.ts";
import { MatrixAccountStore } from "./matrix-account-store.ts";
import { INSTANCE_META, MetaStore } from "./meta-store.ts";
import { OutboxStore } from "./outbox-store.ts";
import { PolicyStore } from "./policy-store.ts";
import { SeenEventsStore } from "./seen-events-store.ts";
import { RevisionStore } from "./revision-store.ts";
import type { StorageHealth } from "./storage-health.ts";

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
  /** How the instance id was found: in the database, made now (a new directory), or taken over (`adopt`). */
  origin: "existing" | "new" | "adopted";
  /** Runs `fn` in one transaction: writes to several tables land together or not at all (a crash between them). */
  transaction<T>(fn: () => T): T;
  close(): void;
}

export const STATE_DB_FILE = "ruriko.sqlite";

export interface OpenStateOptions {
  /** Check the file's structure first (database.ts); serve does, at every start. */
  integrityCheck?: boolean;
  /** Where storage failures met later are reported. */
  health?: StorageHealth;
  /**
   * Take over the instance recorded in the state directory when its database was lost (`serve --adopt-orphans`).
   * `onAdopt` runs in the same transaction as the id is written (serve marks the engine for adoption there).
   */
  adopt?: { onAdopt: (meta: MetaStore) => void };
}

/**
 * Opens (and migrates) the state database of a state directory, and settles its instance id with the one
 * recorded beside it (instance-file.ts): a new directory gets a new id; a directory whose database lost its id is
 * refused (LostStateError) unless `adopt` is given; a database of another instance is refused (InstanceMismatchError).
 */
export function openState(stateDir: string, options: OpenStateOptions = {}): StateStores {
  const path = join(stateDir, STATE_DB_FILE);
  const recorded = readInstanceFile(stateDir);
  const file = dbFileState(path);
  // Refused before opening: opening creates a database where the lost one was.
  if (recorded && file !== "present" && !options.adopt) throw new LostStateError(stateDir, path, recorded, file);
  const db = openDatabase(path, { ...(options.integrityCheck ? { integrityCheck: true } : {}), ...(options.health ? { health: options.health } : {}) });
  let instance: string;
  let origin: StateStores["origin"];
  const meta = new MetaStore(db);
  try {
    ({ instance, origin } = settleInstance(stateDir, path, meta, db, recorded, file, options.adopt));
    writeInstanceFile(stateDir, instance);
  } catch (error) {
    db.close();
    throw error;
  }
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
    instance,
    origin,
    transaction: (fn) => db.transaction(fn)(),
    close: () => db.close(),
  };
}

function settleInstance(
  stateDir: string,
  path: string,
  meta: MetaStore,
  db: Db,
  recorded: string | undefined,
  file: ReturnType<typeof dbFileState>,
  adopt: OpenStateOptions["adopt"],
): { instance: string; origin: StateStores["origin"] } {
  const verdict = judgeInstance(meta.get(INSTANCE_META), recorded);
  switch (verdict.kind) {
    case "known":
      return { instance: verdict.instance, origin: "existing" };
    case "new":
      return { instance: meta.instanceId(), origin: "new" };
    case "mismatch":
      throw new InstanceMismatchError(stateDir, path, verdict.database, verdict.recorded);
    case "lost":
      if (!adopt) throw new LostStateError(stateDir, path, verdict.instance, file === "present" ? "no-id" : file);
      db.transaction(() => {
        meta.set(INSTANCE_META, verdict.instance);
        adopt.onAdopt(meta);
      })();
      return { instance: verdict.instance, origin: "adopted" };
  }
}
