/**
 * Which changes need approval, and from whom: the ApprovalPolicy rules as Ruriko last applied them (the
 * policies in force), plus the defaults that hold whatever they say. Pure.
 *
 * - Deleting an agent always needs approval (DESIGN.md §2.4); the approvers are those of the first policy with
 *   a matching `require: approval` rule, else of the first policy.
 * - Repairing drift follows the agent's `drift` mode: `approve` asks the first policy's approvers, `heal` goes.
 * - Otherwise the first matching rule of the first policy (in name order) that has one decides.
 * - With no matching rule: granting a secret and deleting a secret need the first policy's approvers; a change
 *   to an ApprovalPolicy needs that policy's own approvers (a new one: the first policy's); everything else goes.
 *   Only a rule that names the kind exempts those: a broad `require: none` (no kind) never does.
 * - With no policy in force at all, only the local operator can approve (`ruriko approvals approve`).
 *
 * Example: policy `default` in force has `{match: {kind: Gosuto, fields: [capabilities]}, require: approval}`;
 * a revision adds `{tool: shell_exec, allow: true}` to Gosuto newsbot → its push to agent newsbot changes the
 * field `capabilities` → required, from `default`'s approvers — whatever the revision says its policies are.
 */
import type { ApprovalPolicyManifest } from "../api/generated/types.ts";
import { digestOf } from "../api/digest.ts";
import { parseDuration } from "../api/quantities.ts";

export type GateKind = "Agent" | "Gosuto" | "SecretBinding" | "Secret" | "ApprovalPolicy";

/** A change as approval rules see it. */
export interface GateSubject {
  kind: GateKind;
  name: string;
  operation: string;
  /** Top-level spec fields the change touches. */
  fields: readonly string[];
  /** True when it repairs drift rather than applying a manifest change. */
  drift: boolean;
  /** The agent's drift mode (for drift repairs). */
  driftMode?: "heal" | "report" | "approve";
}

export interface RequiredApproval {
  required: true;
  why: string;
  policy: string | null;
  room: string | null;
  approvers: string[];
  quorum: number;
  ttlMs: number;
  remindBeforeMs: number;
  /** Per approver, the git identities they commit as (self-approval). */
  identities: Record<string, string[]>;
  allowSelfApproval: boolean;
  /** What a request is bound to besides the change: a request asked of other people is never used for this one. */
  digest: string;
}

/** `GateDecision` is what `ruriko plan -o json` shows as each item's `approval`. */
export type GateDecision = { required: false; why: string } | RequiredApproval;

const DEFAULT_TTL_MS = 24 * 3_600_000;
const DEFAULT_REMIND_BEFORE_MS = 3_600_000;
/** Any duration the schema accepts works as a TTL: one longer than a century is a century (dates stay dates). */
export const MAX_TTL_MS = 100 * 365 * 24 * 3_600_000;

type Rule = NonNullable<ApprovalPolicyManifest["spec"]["rules"]>[number];

function ruleMatches(rule: Rule, subject: GateSubject): boolean {
  const m = rule.match;
  if (m.kind !== undefined && m.kind !== subject.kind) return false;
  if (m.operation !== undefined && m.operation !== subject.operation) return false;
  if (m.names && m.names.length > 0 && !m.names.includes(subject.name)) return false;
  if (m.fields && m.fields.length > 0 && !m.fields.some((f) => subject.fields.includes(f))) return false;
  return true;
}

const duration = (text: string | undefined, fallback: number) => Math.min(text ? parseDuration(text) : fallback, MAX_TTL_MS);

function requirement(policy: ApprovalPolicyManifest | undefined, why: string): RequiredApproval {
  const who = policy
    ? {
        policy: policy.metadata.name,
        room: policy.spec.room,
        approvers: [...policy.spec.approvers],
        quorum: policy.spec.quorum ?? 1,
        identities: Object.fromEntries(Object.entries(policy.spec.gitIdentities ?? {}).filter((e): e is [string, [string, ...string[]]] => e[1] !== undefined)),
        allowSelfApproval: policy.spec.allowSelfApproval ?? false,
      }
    : // No policy names anyone: only the local operator can decide.
      { policy: null, room: null, approvers: [], quorum: 1, identities: {}, allowSelfApproval: false };
  return {
    required: true,
    why,
    ...who,
    ttlMs: duration(policy?.spec.ttl, DEFAULT_TTL_MS),
    remindBeforeMs: duration(policy?.spec.remindBefore, DEFAULT_REMIND_BEFORE_MS),
    digest: digestOf(who),
  };
}

/** What the policies in force require of one change. */
export function requirementFor(subject: GateSubject, policiesInForce: readonly ApprovalPolicyManifest[]): GateDecision {
  const ordered = [...policiesInForce].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  if (subject.drift) {
    if (subject.driftMode === "approve") return requirement(ordered[0], "drift repair with drift: approve");
    return { required: false, why: "drift repair with drift: heal" };
  }
  if (subject.kind === "Agent" && subject.operation === "delete") {
    const matching = ordered.find((p) => (p.spec.rules ?? []).some((r) => r.require === "approval" && ruleMatches(r, subject)));
    return requirement(matching ?? ordered[0], "deleting an agent always needs approval");
  }
  const riskyByDefault = (subject.kind === "SecretBinding" && subject.operation === "grant") || (subject.kind === "Secret" && subject.operation === "delete") || subject.kind === "ApprovalPolicy";
  for (const policy of ordered) {
    const rule = (policy.spec.rules ?? []).find((r) => ruleMatches(r, subject) && !(riskyByDefault && r.require === "none" && r.match.kind === undefined));
    if (!rule) continue;
    if (rule.require === "none") return { required: false, why: `policy ${policy.metadata.name} exempts it` };
    return requirement(policy, `policy ${policy.metadata.name} requires approval for ${describeMatch(rule)}`);
  }
  if (subject.kind === "SecretBinding" && subject.operation === "grant") {
    return requirement(ordered[0], "granting a secret needs approval unless a policy exempts it");
  }
  if (subject.kind === "Secret" && subject.operation === "delete") {
    return requirement(ordered[0], "deleting a secret needs approval unless a policy exempts it");
  }
  if (subject.kind === "ApprovalPolicy") {
    const own = ordered.find((p) => p.metadata.name === subject.name);
    return requirement(own ?? ordered[0], own ? `a change to policy ${subject.name} needs its approvers` : "a new policy needs the approvers of the policies in force");
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
