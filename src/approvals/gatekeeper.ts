/**
 * The gate's hands: runs gate.ts's decisions against the approval store. One place, used by every caller that
 * changes something — the agent and policy reconcilers, secret deletion and rotation — and, without writing,
 * by `ruriko plan`. Parking a change creates its request (with who wrote it, and so who may not approve it);
 * a request whose change left the plan is retired in the same step.
 */
import type { ApprovalPolicyManifest } from "../api/generated/types.ts";
import type { ApprovalRequest, ApprovalStore, ChangeAuthor } from "../store/approval-store.ts";
import type { AuditLog } from "../store/audit-log.ts";
import { requestsToRetire, selfApprovers, verdictsFor, type ProposedChange, type Verdict } from "./gate.ts";
import type { RequiredApproval } from "./policy.ts";

/** Whose requests a decision covers: one agent's (all its objects), or one object of no agent. */
export type GateScope = { agent: string } | { objectKey: string };

export interface GatekeeperOptions {
  approvals: ApprovalStore;
  audit: AuditLog;
  /** The policies in force (never the revision being proposed). */
  policies: () => readonly ApprovalPolicyManifest[];
  /** Who wrote a change, with a git source; nobody otherwise. */
  authors?: (change: ProposedChange, revision: string) => Promise<ChangeAuthor[]>;
  now?: () => Date;
}

export class Gatekeeper {
  private readonly o: GatekeeperOptions;

  constructor(options: GatekeeperOptions) {
    this.o = options;
  }

  /** The verdicts, writing nothing: what `plan` shows. */
  preview(changes: readonly ProposedChange[]): Verdict[] {
    return verdictsFor(changes, this.o.policies(), (binding) => this.o.approvals.forChange(binding));
  }

  /**
   * Decides every planned change of one scope and records it: a request for each change newly parked, and the
   * scope's requests that no planned change keeps retired. Returns the verdicts, parked ones with their request.
   */
  async decide(scope: GateScope, changes: readonly ProposedChange[], context: { revision: string; traceId: string }): Promise<Verdict[]> {
    const verdicts = this.preview(changes);
    const planned = changes.map((change, i) => ({ change, verdict: verdicts[i]! }));
    const stale = requestsToRetire(this.o.approvals.openIn(scope), planned);
    for (const retired of this.o.approvals.retire(stale.map((r) => r.id), "the planned change or the policy in force moved on before it was applied", this.now())) {
      this.o.audit.append({ traceId: context.traceId, actor: "controller", action: "approval.superseded", target: `approval/${retired.id}`, payload: { agent: retired.agent, object: retired.objectKey, summary: retired.summary }, result: "info" });
    }
    const decided: Verdict[] = [];
    for (const { change, verdict } of planned) {
      if (verdict.verdict === "park" && !verdict.request) decided.push({ ...verdict, request: await this.park(change, verdict.requirement, context) });
      else decided.push(verdict);
    }
    return decided;
  }

  private async park(change: ProposedChange, requirement: RequiredApproval, context: { revision: string; traceId: string }): Promise<ApprovalRequest> {
    const authors = (await this.o.authors?.(change, context.revision)) ?? [];
    const excluded = selfApprovers(requirement, authors);
    const now = this.now();
    const expiresAt = new Date(now.getTime() + requirement.ttlMs);
    const remindAt = new Date(expiresAt.getTime() - requirement.remindBeforeMs);
    const request = this.o.approvals.create(
      {
        ...change.binding,
        revision: context.revision,
        summary: change.summary,
        policy: requirement.policy,
        room: requirement.room,
        approvers: requirement.approvers,
        quorum: requirement.quorum,
        expiresAt: expiresAt.toISOString(),
        // A reminder at or before the request is made is no reminder (remindBefore ≥ ttl).
        remindAt: remindAt > now ? remindAt.toISOString() : null,
        traceId: context.traceId,
        requirementDigest: requirement.digest,
        sourceDigest: change.sourceDigest,
        authors,
        excluded,
      },
      now,
    );
    this.o.audit.append({
      traceId: context.traceId,
      actor: "controller",
      action: "approval.requested",
      target: `approval/${request.id}`,
      payload: {
        agent: change.binding.agent,
        object: change.binding.objectKey,
        operation: change.binding.operation,
        summary: request.summary,
        why: requirement.why,
        policy: requirement.policy,
        quorum: requirement.quorum,
        revision: context.revision,
        ...(authors.length > 0 ? { authors: authors.map((a) => a.email || a.name), excluded } : {}),
      },
      result: "parked",
    });
    return request;
  }

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }
}
