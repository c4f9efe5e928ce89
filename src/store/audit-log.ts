import type { Db } from "./database.ts";

export interface AuditEntry {
  id: number;
  ts: string;
  traceId: string;
  /** Who caused it: `controller`, `cli:<user>`, a Matrix user id, or `agent:<name>` (a decision the agent reported). */
  actor: string;
  action: string;
  /** What it was done to, e.g. `Agent/newsbot` or `approval/3f2a…`. */
  target: string;
  /** Context; never secret values (DESIGN.md §2.5). */
  payload: Record<string, unknown>;
  result: "ok" | "error" | "refused" | "parked" | "info";
}

interface AuditRow {
  id: number;
  ts: string;
  trace_id: string;
  actor: string;
  action: string;
  target: string;
  payload: string;
  result: AuditEntry["result"];
}

const fromRow = (r: AuditRow): AuditEntry => ({
  id: r.id,
  ts: r.ts,
  traceId: r.trace_id,
  actor: r.actor,
  action: r.action,
  target: r.target,
  payload: JSON.parse(r.payload) as Record<string, unknown>,
  result: r.result,
});

/** The append-only audit log (the table refuses UPDATE and DELETE). */
export class AuditLog {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  append(entry: Omit<AuditEntry, "id" | "ts"> & { ts?: string }): number {
    const info = this.db
      .prepare("INSERT INTO audit_log (ts, trace_id, actor, action, target, payload, result) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(entry.ts ?? new Date().toISOString(), entry.traceId, entry.actor, entry.action, entry.target, JSON.stringify(entry.payload), entry.result);
    return Number(info.lastInsertRowid);
  }

  /** Newest first. */
  tail(limit = 20): AuditEntry[] {
    return (this.db.prepare("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?").all(limit) as AuditRow[]).map(fromRow);
  }

  /** Oldest first: the story of one trace. */
  byTrace(traceId: string): AuditEntry[] {
    return (this.db.prepare("SELECT * FROM audit_log WHERE trace_id = ? ORDER BY id").all(traceId) as AuditRow[]).map(fromRow);
  }

  /** Newest first: what one actor did, e.g. `agent:newsbot` (the decisions an agent reported). */
  byActor(actor: string, limit = 20): AuditEntry[] {
    return (this.db.prepare("SELECT * FROM audit_log WHERE actor = ? ORDER BY id DESC LIMIT ?").all(actor, limit) as AuditRow[]).map(fromRow);
  }

  forTarget(target: string, limit = 50): AuditEntry[] {
    return (this.db.prepare("SELECT * FROM audit_log WHERE target = ? ORDER BY id DESC LIMIT ?").all(target, limit) as AuditRow[]).map(fromRow);
  }
}
