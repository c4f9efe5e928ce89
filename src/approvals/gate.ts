/**
 * The gate: for every change of every kind — a container action, a Gosuto push, a secret grant or revoke, a
 * Matrix identity, a secret deletion or rotation, an ApprovalPolicy edit — whether it runs now, waits for
 * people (park) or stays refused (block). Pure: it reads the requirement of the policies in force (policy.ts)
 * and the requests already made for that exact change; gatekeeper.ts records what it decides.
 *
 * A request is bound to (object, operation, from-digest, to-digest) and to the requirement it was asked
 * under (who, how many, where). So:
 * - an approved request runs exactly that change, asked of exactly those people; any other is a new request;
 * - a denied or expired request blocks its change only while the change is proposed from the same text: once
 *   the file that defines it is touched, or the change leaves the plan and comes back, it is asked again;
 * - a request whose change left the plan is retired (requestsToRetire), pending or approved, and never used.
 *
 * Example: image 0.1 → 0.2 of agent newsbot needs `default`'s approvers; request r1 is approved; before it is
 * applied the manifest moves to 0.3 → r1 is retired (superseded) and 0.1 → 0.3 is a new request r2. If the
 * manifest then goes back to 0.2, r1 is not used again: 0.1 → 0.2 gets a new request r3.
 */
import type { ApprovalRequest, ChangeAuthor, ChangeBinding } from "../store/approval-store.ts";
import type { ApprovalPolicyManifest } from "../api/generated/types.ts";
import { requirementFor, type GateDecision, type GateSubject, type RequiredApproval } from "./policy.ts";

/** A change put to the gate: what rules see, what a request binds, words for people. */
export interface ProposedChange {
  subject: GateSubject;
  binding: ChangeBinding;
  summary: string;
  /** Digest of the file the change is proposed from; null when no file defines it (a removal, a repair). */
  sourceDigest: string | null;
}

export type Verdict =
  | { verdict: "run"; requirement: GateDecision; approval?: ApprovalRequest }
  /** Waits for people: on `request`, or on a new request when there is none yet. */
  | { verdict: "park"; requirement: RequiredApproval; request?: ApprovalRequest }
  /** Refused: denied or expired, and not proposed again since. */
  | { verdict: "block"; requirement: RequiredApproval; request: ApprovalRequest };

/** `requests`: those for exactly this change and not retired, newest first (ApprovalStore.forChange). */
export function verdictFor(change: ProposedChange, requirement: GateDecision, requests: readonly ApprovalRequest[]): Verdict {
  if (!requirement.required) return { verdict: "run", requirement };
  const newest = requests.find((r) => r.requirementDigest === requirement.digest);
  switch (newest?.status) {
    case "approved":
      return { verdict: "run", requirement, approval: newest };
    case "pending":
      return { verdict: "park", requirement, request: newest };
    case "denied":
    case "expired":
      return newest.sourceDigest === change.sourceDigest ? { verdict: "block", requirement, request: newest } : { verdict: "park", requirement };
    default:
      return { verdict: "park", requirement };
  }
}

/** The verdicts for some changes, given the policies in force and the requests made so far for each change. */
export function verdictsFor(changes: readonly ProposedChange[], policiesInForce: readonly ApprovalPolicyManifest[], requestsFor: (change: ChangeBinding) => readonly ApprovalRequest[]): Verdict[] {
  return changes.map((c) => verdictFor(c, requirementFor(c.subject, policiesInForce), requestsFor(c.binding)));
}

/**
 * The open requests of a scope (ApprovalStore.openIn) that no planned change keeps: a live one whose change or
 * requirement moved on, a denied or expired one whose change was dropped or proposed again.
 */
export function requestsToRetire(open: readonly ApprovalRequest[], planned: ReadonlyArray<{ change: ProposedChange; verdict: Verdict }>): ApprovalRequest[] {
  const keeps = (r: ApprovalRequest) =>
    planned.some(({ change, verdict }) => {
      if (!verdict.requirement.required || !sameBinding(r, change.binding) || r.requirementDigest !== verdict.requirement.digest) return false;
      return r.status === "pending" || r.status === "approved" || r.sourceDigest === change.sourceDigest;
    });
  return open.filter((r) => !keeps(r));
}

export function sameBinding(a: ChangeBinding, b: ChangeBinding): boolean {
  return a.agent === b.agent && a.objectKey === b.objectKey && a.operation === b.operation && a.fromDigest === b.fromDigest && a.toDigest === b.toDigest;
}

/**
 * Approvers whose git identity wrote the change: their approval does not count (they may still deny), unless
 * the policy allows self-approval. Identities match an author's email or name, ignoring case.
 */
export function selfApprovers(requirement: RequiredApproval, authors: readonly ChangeAuthor[]): string[] {
  if (requirement.allowSelfApproval || authors.length === 0) return [];
  const wrote = new Set(authors.flatMap((a) => [a.email, a.name]).filter(Boolean).map((s) => s.toLowerCase()));
  return requirement.approvers.filter((approver) => (requirement.identities[approver] ?? []).some((identity) => wrote.has(identity.toLowerCase())));
}
