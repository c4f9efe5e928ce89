import { randomBytes } from "node:crypto";
import { judgeVote, type Decision, type VoteRefusal } from "../approvals/votes.ts";
import type { Db } from "./database.ts";

export type { Decision } from "../approvals/votes.ts";
export type ApprovalStatus = "pending" | "approved" | "denied" | "expired" | "superseded" | "applied";

/** Someone who wrote a change (a git commit author). */
export interface ChangeAuthor {
  name: string;
  email: string;
}

/**
 * A parked change, bound to exactly the change people were shown (object, from-digest, to-digest) and to the
 * policy in force when it was asked (requirementDigest): when either moves on, the request is retired.
 */
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
  /** Digest of what the policy in force required (policy, room, approvers, quorum, identities); null before it was recorded. */
  requirementDigest: string | null;
  /** Digest of the file the change was proposed from; null when nothing defines it (a removal, a repair). */
  sourceDigest: string | null;
  /** Who wrote the change (git source only). */
  authors: ChangeAuthor[];
  /** Approvers who wrote it: their approval does not count. */
  excluded: string[];
  /** When the change left the plan: the request never approves or blocks it again. */
  retiredAt: string | null;
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
  | { outcome: "ignored"; reason: "unknown-request" | VoteRefusal; request?: ApprovalRequest };

/** The exact change a request is bound to. */
export interface ChangeBinding {
  agent: string;
  objectKey: string;
  operation: string;
  fromDigest: string;
  toDigest: string;
}

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
  requirement_digest: string | null;
  source_digest: string | null;
  authors: string;
  excluded: string;
  retired_at: string | null;
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
  requirementDigest: r.requirement_digest,
  sourceDigest: r.source_digest,
  authors: JSON.parse(r.authors) as ChangeAuthor[],
  excluded: JSON.parse(r.excluded) as string[],
  retiredAt: r.retired_at,
});

export type NewApprovalRequest = Omit<ApprovalRequest, "id" | "status" | "createdAt" | "decidedAt" | "decidedBy" | "reason" | "retiredAt" | "requirementDigest" | "sourceDigest" | "authors" | "excluded"> &
  Partial<Pick<ApprovalRequest, "requirementDigest" | "sourceDigest" | "authors" | "excluded">>;

/** Requests that can still approve a change (approved) or will once decided (pending). */
const LIVE = "('pending', 'approved')";

/** Oldest first; requests made in the same instant in the order they were made (rowid). Sorted in JS, not by SQLite. */
const inCreationOrder = (a: { created_at: string; seq: number }, b: { created_at: string; seq: number }) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.seq - b.seq);

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

  /** Requests for exactly this change that the plan has not left behind (not retired), newest first. */
  forChange(change: ChangeBinding): ApprovalRequest[] {
    // Ordered here, as openIn's: the gate asks this of every planned change at every reconcile, mostly of none.
    const rows = this.db
      .prepare("SELECT rowid AS seq, * FROM approvals WHERE agent = ? AND object_key = ? AND operation = ? AND from_digest = ? AND to_digest = ? AND retired_at IS NULL")
      .all(change.agent, change.objectKey, change.operation, change.fromDigest, change.toDigest) as Array<Row & { seq: number }>;
    return rows.sort(inCreationOrder).reverse().map(fromRow);
  }

  /**
   * Requests that still bind something, in one scope: an agent's (every object of it), or one object of no
   * agent (`Secret/x`, `ApprovalPolicy/y`). Live ones can still apply a change; denied and expired ones block it.
   */
  openIn(scope: { agent: string } | { objectKey: string }): ApprovalRequest[] {
    const [column, value] = "agent" in scope ? ["agent", scope.agent] : ["object_key", scope.objectKey];
    const agentless = "agent" in scope ? "" : " AND agent = ''";
    // Ordered here, not by an ORDER BY: SQLite sets up a sorter even for no rows, and this runs at every reconcile of
    // every agent (most have no request): 16 µs a call with it, 3 µs without.
    const rows = this.db.prepare(`SELECT rowid AS seq, * FROM approvals WHERE ${column} = ?${agentless} AND retired_at IS NULL AND status IN ('pending', 'approved', 'denied', 'expired')`).all(value) as Array<Row & { seq: number }>;
    return rows.sort(inCreationOrder).map(fromRow);
  }

  /** The names of objects of `kind` (of no agent) with open requests: ones to look at even if gone from everywhere else. */
  openObjectNames(kind: string): string[] {
    const prefix = `${kind}/`;
    return (
      this.db.prepare("SELECT DISTINCT object_key FROM approvals WHERE agent = '' AND substr(object_key, 1, ?) = ? AND retired_at IS NULL AND status IN ('pending', 'approved', 'denied', 'expired')").all(prefix.length, prefix) as Array<{ object_key: string }>
    ).map((r) => r.object_key.slice(prefix.length));
  }

  create(request: NewApprovalRequest, now = new Date()): ApprovalRequest {
    const id = randomBytes(6).toString("hex");
    this.db
      .prepare(
        `INSERT INTO approvals (id, agent, object_key, operation, from_digest, to_digest, revision, summary, policy, room, approvers, quorum, status, created_at, expires_at, remind_at, trace_id,
                                requirement_digest, source_digest, authors, excluded)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)`,
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
        request.requirementDigest ?? null,
        request.sourceDigest ?? null,
        JSON.stringify(request.authors ?? []),
        JSON.stringify(request.excluded ?? []),
      );
    return this.get(id)!;
  }

  votes(id: string): Vote[] {
    return this.db.prepare("SELECT approver, decision, source, at FROM approval_votes WHERE request_id = ? ORDER BY at").all(id) as Vote[];
  }

  /**
   * Records one approver's decision, judged by approvals/votes.ts. `override` is the local operator's
   * break-glass path (`ruriko approvals approve` on the host): it decides at once, whoever the policy lists.
   * An approval gives the change as long again as the request had to be decided in: an approved change not
   * carried out by then expires.
   */
  vote(id: string, vote: { approver: string; decision: Decision; source: string; override?: boolean; reason?: string }, now = new Date()): VoteOutcome {
    return this.db.transaction((): VoteOutcome => {
      const request = this.get(id);
      if (!request) return { outcome: "ignored", reason: "unknown-request" };
      const judgement = judgeVote(request, this.votes(id), vote, now.getTime());
      if (!judgement.accepted) {
        if (judgement.reason === "expired") this.setStatus(id, "expired", now, null, "expired before a decision");
        return { outcome: "ignored", reason: judgement.reason, request: this.get(id)! };
      }
      this.db.prepare("INSERT INTO approval_votes (request_id, approver, decision, source, at) VALUES (?, ?, ?, ?, ?)").run(id, vote.approver, vote.decision, vote.source, now.toISOString());
      if (judgement.result === "denied") {
        this.setStatus(id, "denied", now, vote.approver, vote.reason?.slice(0, 500) ?? null);
        return { outcome: "decided", request: this.get(id)! };
      }
      if (judgement.result === "approved") {
        const approvers = this.votes(id).filter((v) => v.decision === "approve").map((v) => v.approver);
        this.setStatus(id, "approved", now, approvers.join(","), null);
        const window = Date.parse(request.expiresAt) - Date.parse(request.createdAt);
        this.db.prepare("UPDATE approvals SET expires_at = ? WHERE id = ?").run(new Date(now.getTime() + Math.max(window, 0)).toISOString(), id);
        return { outcome: "decided", request: this.get(id)! };
      }
      return { outcome: "recorded", request, approvals: judgement.approvals };
    })();
  }

  /** The vote cast by event `source`, if one counts on a request still pending. */
  pendingVoteBySource(source: string): { requestId: string; approver: string } | undefined {
    const row = this.db
      .prepare("SELECT v.request_id, v.approver FROM approval_votes v JOIN approvals a ON a.id = v.request_id WHERE v.source = ? AND a.status = 'pending'")
      .get(source) as { request_id: string; approver: string } | undefined;
    return row && { requestId: row.request_id, approver: row.approver };
  }

  /**
   * Withdraws `approver`'s vote cast by event `source` (a reaction they redacted) while its request is pending:
   * only the voter takes a vote back. Returns the approvals left, or undefined when it changed nothing.
   */
  withdrawVote(source: string, approver: string): { request: ApprovalRequest; approver: string; decision: Decision; approvals: number } | undefined {
    return this.db.transaction(() => {
      const vote = this.db
        .prepare("SELECT v.request_id, v.approver, v.decision FROM approval_votes v JOIN approvals a ON a.id = v.request_id WHERE v.source = ? AND v.approver = ? AND a.status = 'pending'")
        .get(source, approver) as { request_id: string; approver: string; decision: Decision } | undefined;
      if (!vote) return undefined;
      this.db.prepare("DELETE FROM approval_votes WHERE request_id = ? AND approver = ?").run(vote.request_id, vote.approver);
      const approvals = this.votes(vote.request_id).filter((v) => v.decision === "approve").length;
      return { request: this.get(vote.request_id)!, approver: vote.approver, decision: vote.decision, approvals };
    })();
  }

  /**
   * The plan left these requests behind: live ones (pending, approved) become superseded and are never
   * applied; denied and expired ones stop blocking. Compare-and-set; returns the live requests that moved.
   */
  retire(ids: readonly string[], reason: string, now = new Date()): ApprovalRequest[] {
    // Most reconciles retire nothing: no write transaction (and no wait for the write lock) for them.
    if (ids.length === 0) return [];
    return this.db.transaction(() => {
      const moved: ApprovalRequest[] = [];
      const at = now.toISOString();
      for (const id of ids) {
        const live = this.db.prepare(`UPDATE approvals SET status = 'superseded', reason = ?, retired_at = ?, decided_at = COALESCE(decided_at, ?) WHERE id = ? AND status IN ${LIVE}`).run(reason, at, at, id);
        if (live.changes === 1) moved.push(this.get(id)!);
        else this.db.prepare("UPDATE approvals SET retired_at = ? WHERE id = ? AND retired_at IS NULL").run(at, id);
      }
      return moved;
    })();
  }

  /**
   * Expires every pending request whose time is up, and every approved one not carried out in time; called on
   * a timer set for the next deadline, not only when someone looks.
   */
  expireDue(now = new Date()): ApprovalRequest[] {
    return this.db.transaction(() => {
      const due = this.db.prepare(`SELECT id, status FROM approvals WHERE status IN ${LIVE} AND expires_at <= ?`).all(now.toISOString()) as Array<{ id: string; status: ApprovalStatus }>;
      const moved: ApprovalRequest[] = [];
      for (const { id, status } of due) {
        const reason = status === "approved" ? "approved, but not carried out before it expired" : "expired before a decision";
        const changed = this.db.prepare("UPDATE approvals SET status = 'expired', reason = ?, decided_at = COALESCE(decided_at, ?) WHERE id = ? AND status = ?").run(reason, now.toISOString(), id, status);
        if (changed.changes === 1) moved.push(this.get(id)!);
      }
      return moved;
    })();
  }

  /** The earliest time a live request expires, if any. */
  nextDeadline(): number | undefined {
    const row = this.db.prepare(`SELECT min(expires_at) AS at FROM approvals WHERE status IN ${LIVE}`).get() as { at: string | null };
    return row.at ? Date.parse(row.at) : undefined;
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

  /** approved → applied, once the change was carried out. */
  markApplied(id: string, now = new Date()): boolean {
    return this.db.prepare("UPDATE approvals SET status = 'applied', decided_at = COALESCE(decided_at, ?) WHERE id = ? AND status = 'approved'").run(now.toISOString(), id).changes === 1;
  }

  private setStatus(id: string, status: ApprovalStatus, now: Date, decidedBy: string | null, reason: string | null): boolean {
    return (
      this.db
        .prepare("UPDATE approvals SET status = ?, decided_at = ?, decided_by = ?, reason = COALESCE(?, reason) WHERE id = ? AND status = 'pending'")
        .run(status, now.toISOString(), decidedBy, reason, id).changes === 1
    );
  }
}
