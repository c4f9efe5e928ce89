import { randomBytes } from "node:crypto";
import type { Db } from "./database.ts";

export type ApprovalStatus = "pending" | "approved" | "denied" | "expired" | "superseded" | "applied";
export type Decision = "approve" | "deny";

/** A parked change, bound to exactly the change people were shown (object, from-digest, to-digest). */
export interface ApprovalRequest {
  id: string;
  agent: string;
  objectKey: string;
  operation: string;
  fromDigest: string;
  toDigest: string;
  revision: string;
  summary: string;
  policy: string | null;
  room: string | null;
  approvers: string[];
  quorum: number;
  status: ApprovalStatus;
  createdAt: string;
  expiresAt: string;
  remindAt: string | null;
  decidedAt: string | null;
  decidedBy: string | null;
  reason: string | null;
  traceId: string;
}

export interface Vote {
  approver: string;
  decision: Decision;
  source: string;
  at: string;
}

export type VoteOutcome =
  | { outcome: "recorded"; request: ApprovalRequest; approvals: number }
  | { outcome: "decided"; request: ApprovalRequest }
  | { outcome: "ignored"; reason: "unknown-request" | "not-pending" | "expired" | "not-an-approver" | "duplicate"; request?: ApprovalRequest };

interface Row {
  id: string;
  agent: string;
  object_key: string;
  operation: string;
  from_digest: string;
  to_digest: string;
  revision: string;
  summary: string;
  policy: string | null;
  room: string | null;
  approvers: string;
  quorum: number;
  status: ApprovalStatus;
  created_at: string;
  expires_at: string;
  remind_at: string | null;
  decided_at: string | null;
  decided_by: string | null;
  reason: string | null;
  trace_id: string;
}

const fromRow = (r: Row): ApprovalRequest => ({
  id: r.id,
  agent: r.agent,
  objectKey: r.object_key,
  operation: r.operation,
  fromDigest: r.from_digest,
  toDigest: r.to_digest,
  revision: r.revision,
  summary: r.summary,
  policy: r.policy,
  room: r.room,
  approvers: JSON.parse(r.approvers) as string[],
  quorum: r.quorum,
  status: r.status,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  remindAt: r.remind_at,
  decidedAt: r.decided_at,
  decidedBy: r.decided_by,
  reason: r.reason,
  traceId: r.trace_id,
});

export type NewApprovalRequest = Omit<ApprovalRequest, "id" | "status" | "createdAt" | "decidedAt" | "decidedBy" | "reason">;

/**
 * Approval requests and their votes. Every state change is a compare-and-set on `status = 'pending'`
 * inside a transaction, so the first decision wins and later votes change nothing.
 */
export class ApprovalStore {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  get(id: string): ApprovalRequest | undefined {
    const row = this.db.prepare("SELECT * FROM approvals WHERE id = ?").get(id) as Row | undefined;
    return row && fromRow(row);
  }

  /** Looks a request up by its id or an unambiguous prefix of it (for people typing ids). */
  resolve(idOrPrefix: string): ApprovalRequest | undefined {
    const exact = this.get(idOrPrefix);
    if (exact) return exact;
    if (!/^[0-9a-f]{4,}$/.test(idOrPrefix)) return undefined;
    const rows = this.db.prepare("SELECT * FROM approvals WHERE id LIKE ? LIMIT 2").all(`${idOrPrefix}%`) as Row[];
    return rows.length === 1 ? fromRow(rows[0]!) : undefined;
  }

  list(filter: { status?: ApprovalStatus; agent?: string; limit?: number } = {}): ApprovalRequest[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.status) {
      where.push("status = ?");
      args.push(filter.status);
    }
    if (filter.agent) {
      where.push("agent = ?");
      args.push(filter.agent);
    }
    const sql = `SELECT * FROM approvals ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, id LIMIT ?`;
    return (this.db.prepare(sql).all(...args, filter.limit ?? 100) as Row[]).map(fromRow);
  }

  /** The newest request for exactly this change, whatever its status. */
  findForChange(agent: string, operation: string, fromDigest: string, toDigest: string): ApprovalRequest | undefined {
    const row = this.db
      .prepare("SELECT * FROM approvals WHERE agent = ? AND operation = ? AND from_digest = ? AND to_digest = ? ORDER BY created_at DESC, rowid DESC LIMIT 1")
      .get(agent, operation, fromDigest, toDigest) as Row | undefined;
    return row && fromRow(row);
  }

  create(request: NewApprovalRequest, now = new Date()): ApprovalRequest {
    const id = randomBytes(6).toString("hex");
    this.db
      .prepare(
        `INSERT INTO approvals (id, agent, object_key, operation, from_digest, to_digest, revision, summary, policy, room, approvers, quorum, status, created_at, expires_at, remind_at, trace_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)`,
      )
      .run(
        id,
        request.agent,
        request.objectKey,
        request.operation,
        request.fromDigest,
        request.toDigest,
        request.revision,
        request.summary,
        request.policy,
        request.room,
        JSON.stringify(request.approvers),
        request.quorum,
        now.toISOString(),
        request.expiresAt,
        request.remindAt,
        request.traceId,
      );
    return this.get(id)!;
  }

  votes(id: string): Vote[] {
    return this.db.prepare("SELECT approver, decision, source, at FROM approval_votes WHERE request_id = ? ORDER BY at").all(id) as Vote[];
  }

  /**
   * Records one approver's decision. `override` is the local operator's break-glass path (`ruriko approvals
   * approve` on the host): it decides at once, whoever the policy lists.
   */
  vote(id: string, vote: { approver: string; decision: Decision; source: string; override?: boolean; reason?: string }, now = new Date()): VoteOutcome {
    return this.db.transaction((): VoteOutcome => {
      const request = this.get(id);
      if (!request) return { outcome: "ignored", reason: "unknown-request" };
      if (request.status !== "pending") return { outcome: "ignored", reason: "not-pending", request };
      if (Date.parse(request.expiresAt) <= now.getTime()) {
        this.setStatus(id, "expired", now, null, "expired before a decision");
        return { outcome: "ignored", reason: "expired", request: this.get(id)! };
      }
      if (!vote.override && !request.approvers.includes(vote.approver)) return { outcome: "ignored", reason: "not-an-approver", request };
      const inserted = this.db
        .prepare("INSERT OR IGNORE INTO approval_votes (request_id, approver, decision, source, at) VALUES (?, ?, ?, ?, ?)")
        .run(id, vote.approver, vote.decision, vote.source, now.toISOString());
      if (inserted.changes === 0) return { outcome: "ignored", reason: "duplicate", request };

      if (vote.decision === "deny") {
        this.setStatus(id, "denied", now, vote.approver, vote.reason?.slice(0, 500) ?? null);
        return { outcome: "decided", request: this.get(id)! };
      }
      const approvals = this.votes(id).filter((v) => v.decision === "approve").length;
      if (vote.override || approvals >= request.quorum) {
        const approvers = this.votes(id).filter((v) => v.decision === "approve").map((v) => v.approver);
        this.setStatus(id, "approved", now, approvers.join(","), null);
        return { outcome: "decided", request: this.get(id)! };
      }
      return { outcome: "recorded", request, approvals };
    })();
  }

  /**
   * Compare-and-set from pending; returns the requests that moved. `among` limits which pending requests
   * are considered (container changes and secret grants are gated apart).
   */
  supersedePending(agent: string, keep: ReadonlyArray<{ operation: string; fromDigest: string; toDigest: string }>, now = new Date(), among: (r: ApprovalRequest) => boolean = () => true): ApprovalRequest[] {
    return this.db.transaction(() => {
      const moved: ApprovalRequest[] = [];
      for (const request of this.list({ agent, status: "pending", limit: 1000 })) {
        if (!among(request)) continue;
        if (keep.some((k) => request.operation === k.operation && request.fromDigest === k.fromDigest && request.toDigest === k.toDigest)) continue;
        if (this.setStatus(request.id, "superseded", now, null, "the desired state changed before a decision")) moved.push(this.get(request.id)!);
      }
      return moved;
    })();
  }

  /** Expires every pending request whose time is up; called on a timer, not only when someone looks. */
  expireDue(now = new Date()): ApprovalRequest[] {
    return this.db.transaction(() => {
      const due = this.db.prepare("SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= ?").all(now.toISOString()) as Array<{ id: string }>;
      const moved: ApprovalRequest[] = [];
      for (const { id } of due) if (this.setStatus(id, "expired", now, null, "expired before a decision")) moved.push(this.get(id)!);
      return moved;
    })();
  }

  /**
   * Pending requests whose reminder time has come and that `ready` accepts (e.g. already posted); each is
   * returned once (its reminder time is cleared). The others stay due.
   */
  takeDueReminders(ready: (r: ApprovalRequest) => boolean = () => true, now = new Date()): ApprovalRequest[] {
    return this.db.transaction(() => {
      const rows = this.db.prepare("SELECT * FROM approvals WHERE status = 'pending' AND remind_at IS NOT NULL AND remind_at <= ?").all(now.toISOString()) as Row[];
      const taken = rows.map(fromRow).filter(ready);
      for (const r of taken) this.db.prepare("UPDATE approvals SET remind_at = NULL WHERE id = ?").run(r.id);
      return taken;
    })();
  }

  /** approved → applied, once the executor has carried the change out. */
  markApplied(id: string, now = new Date()): boolean {
    return this.db.prepare("UPDATE approvals SET status = 'applied', decided_at = COALESCE(decided_at, ?) WHERE id = ? AND status = 'approved'").run(now.toISOString(), id).changes === 1;
  }

  /** An approved change that can no longer be applied as approved (the object moved on): never apply it later. */
  retireApproved(id: string, reason = "the object changed after approval"): boolean {
    return this.db.prepare("UPDATE approvals SET status = 'superseded', reason = ? WHERE id = ? AND status = 'approved'").run(reason, id).changes === 1;
  }

  private setStatus(id: string, status: ApprovalStatus, now: Date, decidedBy: string | null, reason: string | null): boolean {
    return (
      this.db
        .prepare("UPDATE approvals SET status = ?, decided_at = ?, decided_by = ?, reason = COALESCE(?, reason) WHERE id = ? AND status = 'pending'")
        .run(status, now.toISOString(), decidedBy, reason, id).changes === 1
    );
  }
}
