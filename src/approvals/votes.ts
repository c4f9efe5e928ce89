/**
 * Whether one vote counts, and what it decides. Pure: the approval store applies the judgement inside its
 * compare-and-set transaction. The same rules hold for every approval, whoever asks:
 * - only a pending request that has not expired takes votes, so the first decision wins;
 * - only listed approvers count, each once (a withdrawn vote may be cast again);
 * - an approver whose git identity wrote the change cannot approve it (they may still deny);
 * - one deny decides; approvals decide at the quorum;
 * - the local operator's override (`ruriko approvals approve` on the host) decides at once.
 */

export type Decision = "approve" | "deny";

export type VoteRefusal = "not-pending" | "expired" | "not-an-approver" | "self-approval" | "duplicate";

export interface Ballot {
  approver: string;
  decision: Decision;
  /** The local operator's break-glass decision: final at once, whoever the policy lists. */
  override?: boolean;
}

export interface VotedRequest {
  status: string;
  expiresAt: string;
  approvers: readonly string[];
  /** Approvers who wrote the change: their approval does not count. */
  excluded: readonly string[];
  quorum: number;
}

export type VoteJudgement = { accepted: false; reason: VoteRefusal } | { accepted: true; result: "recorded" | "approved" | "denied"; approvals: number };

export function judgeVote(request: VotedRequest, votes: ReadonlyArray<{ approver: string; decision: Decision }>, ballot: Ballot, now: number): VoteJudgement {
  if (request.status !== "pending") return { accepted: false, reason: "not-pending" };
  if (Date.parse(request.expiresAt) <= now) return { accepted: false, reason: "expired" };
  if (votes.some((v) => v.approver === ballot.approver)) return { accepted: false, reason: "duplicate" };
  if (!ballot.override) {
    if (!request.approvers.includes(ballot.approver)) return { accepted: false, reason: "not-an-approver" };
    if (ballot.decision === "approve" && request.excluded.includes(ballot.approver)) return { accepted: false, reason: "self-approval" };
  }
  const approvals = votes.filter((v) => v.decision === "approve").length + (ballot.decision === "approve" ? 1 : 0);
  if (ballot.decision === "deny") return { accepted: true, result: "denied", approvals };
  return { accepted: true, result: ballot.override || approvals >= request.quorum ? "approved" : "recorded", approvals };
}
