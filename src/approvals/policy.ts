/**
 * Approval policy evaluation: which planned actions must wait for people, and which people. Pure.
 *
 * Rules of the house (DESIGN.md §2.4): deleting an agent always needs approval, whatever the policies say;
 * repairing drift is judged by the agent's `drift` mode, not by the policies (it restores what was already
 * applied); granting a secret needs approval unless a rule says `require: none`; everything else follows the
 * first matching rule of the first policy, in name order, that has one.
 */
import type { ApprovalPolicyManifest } from "../api/generated/types.ts";
import type { Kind } from "../api/kinds.ts";
import { parseDuration } from "../api/quantities.ts";

export interface GateSubject {
  kind: Kind;
  name: string;
  operation: string;
  fields: readonly string[];
  drift: boolean;
  /** The agent's drift mode (for drift repairs). */
  driftMode?: "heal" | "report" | "approve";
}

export type GateDecision =
  | { required: false; why: string }
  | {
      required: true;
      why: string;
      policy: string | null;
      room: string | null;
      approvers: string[];
      quorum: number;
      ttlMs: number;
      remindBeforeMs: number;
    };

const DEFAULT_TTL_MS = 24 * 3_600_000;
const DEFAULT_REMIND_BEFORE_MS = 3_600_000;

type Rule = NonNullable<ApprovalPolicyManifest["spec"]["rules"]>[number];

function ruleMatches(rule: Rule, subject: GateSubject): boolean {
  const m = rule.match;
  if (m.kind !== undefined && m.kind !== subject.kind) return false;
  if (m.operation !== undefined && m.operation !== subject.operation) return false;
  if (m.names && m.names.length > 0 && !m.names.includes(subject.name)) return false;
  if (m.fields && m.fields.length > 0 && !m.fields.some((f) => subject.fields.includes(f))) return false;
  return true;
}

function requirement(policy: ApprovalPolicyManifest | undefined, why: string): GateDecision {
  if (!policy) {
    // No policy names anyone: only the local operator can decide (`ruriko approvals approve`).
    return { required: true, why, policy: null, room: null, approvers: [], quorum: 1, ttlMs: DEFAULT_TTL_MS, remindBeforeMs: DEFAULT_REMIND_BEFORE_MS };
  }
  const s = policy.spec;
  return {
    required: true,
    why,
    policy: policy.metadata.name,
    room: s.room,
    approvers: [...s.approvers],
    quorum: s.quorum ?? 1,
    ttlMs: s.ttl ? parseDuration(s.ttl) : DEFAULT_TTL_MS,
    remindBeforeMs: s.remindBefore ? parseDuration(s.remindBefore) : DEFAULT_REMIND_BEFORE_MS,
  };
}

export function evaluateGate(subject: GateSubject, policies: readonly ApprovalPolicyManifest[]): GateDecision {
  const ordered = [...policies].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  if (subject.drift) {
    if (subject.driftMode === "approve") return requirement(ordered[0], "drift repair with drift: approve");
    return { required: false, why: "drift repair with drift: heal" };
  }
  if (subject.kind === "Agent" && subject.operation === "delete") {
    const matching = ordered.find((p) => (p.spec.rules ?? []).some((r) => r.require === "approval" && ruleMatches(r, subject)));
    return requirement(matching ?? ordered[0], "deleting an agent always needs approval");
  }
  for (const policy of ordered) {
    const rule = (policy.spec.rules ?? []).find((r) => ruleMatches(r, subject));
    if (!rule) continue;
    if (rule.require === "none") return { required: false, why: `policy ${policy.metadata.name} exempts it` };
    return requirement(policy, `policy ${policy.metadata.name} requires approval for ${describeMatch(rule)}`);
  }
  if (subject.kind === "SecretBinding" && subject.operation === "grant") {
    // Handing a secret to an agent is risky by default: only an explicit `require: none` rule exempts it.
    return requirement(ordered[0], "granting a secret needs approval unless a policy exempts it");
  }
  return { required: false, why: "no policy rule matches" };
}

function describeMatch(rule: Rule): string {
  const m = rule.match;
  const parts = [m.kind ?? "any kind", m.operation ?? "any operation"];
  if (m.names?.length) parts.push(`names ${m.names.join(", ")}`);
  if (m.fields?.length) parts.push(`fields ${m.fields.join(", ")}`);
  return parts.join(" ");
}
