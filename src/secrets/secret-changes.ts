/**
 * Deleting and rotating a secret are changes like any other: the gate decides, by the policies in force, whether
 * they go at once or wait for people (deleting does by default: every agent bound to the secret loses it;
 * rotating does when a rule says so). A rotation keeps its new value aside, sealed, until it may go.
 *
 * The requests are the proposals: reconcileSecret(name) carries out the approved ones that still apply to the
 * secret as it is, and retires those that no longer do (the secret was rotated or deleted since). `ruriko secret`
 * runs it when proposing, and `serve` whenever a decision about a secret is made, in any process.
 */
import { parseObjectKey } from "../api/kinds.ts";
import type { ProposedChange, Verdict } from "../approvals/gate.ts";
import type { Gatekeeper } from "../approvals/gatekeeper.ts";
import type { ApprovalRequest, ApprovalStore } from "../store/approval-store.ts";
import type { AuditLog } from "../store/audit-log.ts";
import type { SecretInfo, SecretStore } from "../store/secret-store.ts";

export const secretObjectKey = (name: string) => `Secret/${name}`;
const ABSENT = "absent";

export interface SecretChangeDeps {
  secrets: SecretStore;
  approvals: ApprovalStore;
  audit: AuditLog;
  gatekeeper: Gatekeeper;
  /** Writes to several stores land together or not at all. */
  transaction<T>(fn: () => T): T;
}

export type SecretChangeOutcome =
  | { outcome: "applied"; info: SecretInfo | undefined; request?: ApprovalRequest }
  | { outcome: "parked"; request: ApprovalRequest }
  | { outcome: "refused"; request: ApprovalRequest }
  | { outcome: "not-found" };

/**
 * Proposes deleting secret `name`, or rotating it to `value`. Each call is a proposal of its own: after a denial
 * or an expiry, asking again makes a new request; a pending request for the same deletion is reused and an
 * approved one carried out. A new rotation replaces one still waiting.
 */
export async function proposeSecretChange(deps: SecretChangeDeps, name: string, change: { operation: "delete" } | { operation: "rotate"; value: Buffer }, actor: string, traceId: string): Promise<SecretChangeOutcome> {
  const info = deps.secrets.info(name);
  if (!info) return { outcome: "not-found" };
  const toDigest = change.operation === "rotate" ? deps.secrets.stage(name, change.value).revision : ABSENT;
  const proposal: ProposedChange = {
    subject: { kind: "Secret", name, operation: change.operation, fields: [], drift: false },
    binding: { agent: "", objectKey: secretObjectKey(name), operation: change.operation, fromDigest: info.revision, toDigest },
    summary: change.operation === "rotate" ? `Secret/${name}: rotate to version ${info.version + 1} (bound agents receive it)` : `Secret/${name}: delete version ${info.version} (bound agents lose it)`,
    // Asking again is proposing again: a denial or an expiry does not block the next ask.
    sourceDigest: `proposal:${traceId}`,
  };
  const settled = await settle(deps, name, actor, traceId, proposal);
  const verdict = settled.verdicts.get(proposal)!;
  switch (verdict.verdict) {
    case "block":
      return { outcome: "refused", request: verdict.request };
    case "park":
      return { outcome: "parked", request: verdict.request! };
    case "run":
      // Another approved change of the same secret went first: this one no longer applies to it.
      if (settled.applied !== proposal) return { outcome: "not-found" };
      return { outcome: "applied", info: deps.secrets.info(name), ...(verdict.approval ? { request: verdict.approval } : {}) };
  }
}

/** Carries out what was approved about secret `name` and retires what no longer applies. Idempotent. */
export async function reconcileSecret(deps: SecretChangeDeps, name: string, actor: string, traceId: string): Promise<void> {
  await settle(deps, name, actor, traceId);
}

/** Decides the secret's open proposals (and `extra`), carries out the first that may run, and settles again. */
async function settle(deps: SecretChangeDeps, name: string, actor: string, traceId: string, extra?: ProposedChange): Promise<{ verdicts: Map<ProposedChange, Verdict>; applied?: ProposedChange }> {
  const info = deps.secrets.info(name);
  const staged = deps.secrets.staged(name);
  // Proposals still about the secret as it is: from its current value, and for a rotation, to the value kept aside.
  const open = info
    ? deps.approvals
        .openIn({ objectKey: secretObjectKey(name) })
        .filter((r) => (r.status === "pending" || r.status === "approved") && r.fromDigest === info.revision && (r.operation === "delete" || r.toDigest === staged?.revision))
        .map(proposalOf)
        .filter((p) => !extra || p.binding.toDigest !== extra.binding.toDigest || p.binding.operation !== extra.binding.operation)
    : [];
  const proposals = [...open, ...(extra ? [extra] : [])];
  const verdicts = await deps.gatekeeper.decide({ objectKey: secretObjectKey(name) }, proposals, { revision: info ? `secret ${name} v${info.version}` : `secret ${name}`, traceId });
  const byProposal = new Map(proposals.map((p, i) => [p, verdicts[i]!]));
  // A value kept aside for a rotation nobody waits for any more (denied, expired, superseded) is dropped.
  const waitedFor = proposals.some((p, i) => p.binding.operation === "rotate" && p.binding.toDigest === staged?.revision && verdicts[i]!.verdict !== "block");
  if (staged && !waitedFor) deps.secrets.discardStaged(name, staged.revision);
  const runnable = proposals.find((p) => byProposal.get(p)!.verdict === "run");
  if (!runnable || !info) return { verdicts: byProposal };
  const verdict = byProposal.get(runnable) as Extract<Verdict, { verdict: "run" }>;
  apply(deps, name, info, runnable, verdict.approval, actor, traceId);
  // The secret moved on: whatever else was open about its old value is retired.
  await settle(deps, name, actor, traceId);
  return { verdicts: byProposal, applied: runnable };
}

/** Carries out one change, its approval claimed in the same transaction (one expired since the gate changes nothing). */
function apply(deps: SecretChangeDeps, name: string, info: SecretInfo, change: ProposedChange, approval: ApprovalRequest | undefined, actor: string, traceId: string): void {
  const payload = { secret: name, version: info.version, ...(approval ? { approval: approval.id } : {}) };
  deps.transaction(() => {
    if (approval && !deps.approvals.markApplied(approval.id)) throw new Error(`${change.summary}: approval ${approval.id} is no longer approved`);
    if (change.binding.operation === "delete") {
      deps.secrets.delete(name);
      deps.audit.append({ traceId, actor, action: "secret.delete", target: secretObjectKey(name), payload, result: "ok" });
      return;
    }
    const rotated = deps.secrets.promote(name, change.binding.toDigest, info.revision);
    if (!rotated) throw new Error(`${change.summary}: the secret changed since the rotation was asked`);
    deps.audit.append({ traceId, actor, action: "secret.rotate", target: secretObjectKey(name), payload: { ...payload, version: rotated.version }, result: "ok" });
  });
}

function proposalOf(r: ApprovalRequest): ProposedChange {
  return {
    subject: { kind: "Secret", name: parseObjectKey(r.objectKey)?.name ?? r.objectKey, operation: r.operation, fields: [], drift: false },
    binding: { agent: r.agent, objectKey: r.objectKey, operation: r.operation, fromDigest: r.fromDigest, toDigest: r.toDigest },
    summary: r.summary,
    sourceDigest: r.sourceDigest,
  };
}
