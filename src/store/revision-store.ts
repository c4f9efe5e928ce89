import type { ManifestError } from "../api/errors.ts";
import type { Db } from "./database.ts";

export interface RevisionRecord {
  id: number;
  revision: string;
  digest: string;
  outcome: "applied" | "rejected";
  errors: ManifestError[];
  objects: number;
  receivedAt: string;
  traceId: string;
}

interface Row {
  id: number;
  revision: string;
  digest: string;
  outcome: RevisionRecord["outcome"];
  errors: string;
  objects: number;
  received_at: string;
  trace_id: string;
}

const fromRow = (r: Row): RevisionRecord => ({
  id: r.id,
  revision: r.revision,
  digest: r.digest,
  outcome: r.outcome,
  errors: JSON.parse(r.errors) as ManifestError[],
  objects: r.objects,
  receivedAt: r.received_at,
  traceId: r.trace_id,
});

/** Snapshots received from the source: which were applied, which were refused and why. */
export class RevisionStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  record(entry: Omit<RevisionRecord, "id" | "receivedAt">): void {
    this.db
      .prepare("INSERT INTO revisions (revision, digest, outcome, errors, objects, received_at, trace_id) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(entry.revision, entry.digest, entry.outcome, JSON.stringify(entry.errors), entry.objects, new Date().toISOString(), entry.traceId);
  }

  latest(): RevisionRecord | undefined {
    const row = this.db.prepare("SELECT * FROM revisions ORDER BY id DESC LIMIT 1").get() as Row | undefined;
    return row && fromRow(row);
  }

  latestApplied(): RevisionRecord | undefined {
    const row = this.db.prepare("SELECT * FROM revisions WHERE outcome = 'applied' ORDER BY id DESC LIMIT 1").get() as Row | undefined;
    return row && fromRow(row);
  }

  recent(limit = 20): RevisionRecord[] {
    return (this.db.prepare("SELECT * FROM revisions ORDER BY id DESC LIMIT ?").all(limit) as Row[]).map(fromRow);
  }
}
