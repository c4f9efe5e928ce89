/**
 * reconcile(policy): an ApprovalPolicy in the manifests becomes a policy in force only through the gate, like any
 * other change, and the gate reads the policies already in force — so a revision never approves itself. A new or
 * changed policy stays out of force while its own change waits, even after the rest of its revision is applied.
 *
 * Bootstrap: a state directory that never had policies in force (a first start, or the first start after
 * upgrading to a Ruriko that keeps them) puts the policies of its first valid revision in force at once: there is
 * nobody yet to ask. From then on every policy change is gated.
 */
import type { ApprovalPolicyManifest } from "../api/generated/types.ts";
import { changedFields } from "../api/field-changes.ts";
import { objectKey } from "../api/kinds.ts";
import { objectsOfKind, type Snapshot } from "../api/snapshot.ts";
import type { ProposedChange } from "../approvals/gate.ts";
import type { Gatekeeper } from "../approvals/gatekeeper.ts";
import { withTrace, type Logger } from "../observability/logger.ts";
import type { ApprovalStore } from "../store/approval-store.ts";
import type { AuditLog } from "../store/audit-log.ts";
import type { PolicyInForce, PolicyStore } from "../store/policy-store.ts";
import { ABSENT } from "./changes.ts";
import type { ReconcileResult } from "./work-queue.ts";

export interface DesiredPolicy {
  manifest: ApprovalPolicyManifest;
  digest: string;
  /** Digest of the file that defines it. */
  source: string | null;
}

export type PolicyChange = ProposedChange & { desired: DesiredPolicy | undefined; reason: string };

/** The change that puts the desired policy `name` in force (or takes it out); undefined when in force already. Pure. */
export function planPolicy(name: string, desired: DesiredPolicy | undefined, inForce: Pick<PolicyInForce, "manifest" | "digest"> | undefined): PolicyChange | undefined {
  if (desired?.digest === inForce?.digest) return undefined;
  const operation = !inForce ? "create" : !desired ? "delete" : "update";
  const fields = changedFields("ApprovalPolicy", inForce?.manifest.spec, desired?.manifest.spec);
  const reason = operation === "create" ? `new policy (approvers ${desired!.manifest.spec.approvers.join(", ")})` : operation === "delete" ? "remove the policy" : `${fields.join(", ")} changed`;
  return {
    subject: { kind: "ApprovalPolicy", name, operation, fields, drift: false },
    binding: { agent: "", objectKey: objectKey("ApprovalPolicy", name), operation, fromDigest: inForce?.digest ?? ABSENT, toDigest: desired?.digest ?? ABSENT },
    summary: `ApprovalPolicy/${name}: ${reason}`,
    reason,
    sourceDigest: desired?.source ?? null,
    desired,
  };
}

export function desiredPolicyOf(snapshot: Snapshot, name: string): DesiredPolicy | undefined {
  const loaded = snapshot.objects.get(objectKey("ApprovalPolicy", name));
  return loaded && { manifest: loaded.object as ApprovalPolicyManifest, digest: loaded.digest, source: snapshot.fileDigests.get(loaded.source.file) ?? null };
}

export interface PolicyReconcilerOptions {
  policies: PolicyStore;
  approvals: ApprovalStore;
  audit: AuditLog;
  gatekeeper: Gatekeeper;
  transaction<T>(fn: () => T): T;
  desired: () => Snapshot | undefined;
  logger: Logger;
  /** The policies in force changed: every gate decision may differ now. */
  onChanged: (traceId: string) => void;
  now?: () => Date;
}

export class PolicyReconciler {
  private readonly o: PolicyReconcilerOptions;

  constructor(options: PolicyReconcilerOptions) {
    this.o = options;
  }

  /** Every policy to look at: desired, in force, or with a request still open (to retire it once it is moot). */
  names(snapshot: Snapshot): string[] {
    const names = [...objectsOfKind(snapshot, "ApprovalPolicy").map((p) => p.name), ...this.o.policies.list().map((p) => p.name), ...this.o.approvals.openObjectNames("ApprovalPolicy")];
    return [...new Set(names)].sort();
  }

  /** At a first start, the revision's policies go in force as they are. True when it did that. */
  bootstrap(snapshot: Snapshot, traceId: string): boolean {
    const { policies, audit } = this.o;
    if (policies.bootstrapped()) return false;
    this.o.transaction(() => {
      for (const p of objectsOfKind(snapshot, "ApprovalPolicy")) policies.put(p.object, p.digest, snapshot.revision, this.now());
      policies.markBootstrapped(snapshot.revision);
      audit.append({ traceId, actor: "controller", action: "policy.bootstrap", target: `revision/${snapshot.revision}`, payload: { policies: objectsOfKind(snapshot, "ApprovalPolicy").map((p) => p.name) }, result: "ok" });
    });
    return true;
  }

  async reconcile(name: string, traceId: string): Promise<ReconcileResult> {
    const snapshot = this.o.desired();
    if (!snapshot) return {};
    const log = withTrace(this.o.logger, traceId, { policy: name });
    const change = planPolicy(name, desiredPolicyOf(snapshot, name), this.o.policies.get(name));
    const [verdict] = await this.o.gatekeeper.decide({ objectKey: objectKey("ApprovalPolicy", name) }, change ? [change] : [], { revision: snapshot.revision, traceId });
    if (!change || !verdict) return {};
    if (verdict.verdict !== "run") {
      log.info({ request: verdict.request?.id, verdict: verdict.verdict }, `${change.summary}: ${verdict.verdict === "park" ? "waits for approval" : `not applied (${verdict.request.status})`}`);
      return {};
    }
    const { policies, approvals, audit } = this.o;
    this.o.transaction(() => {
      // Claimed first: an approval that expired since the gate puts nothing in force.
      if (verdict.approval && !approvals.markApplied(verdict.approval.id, this.now())) throw new Error(`${change.summary}: approval ${verdict.approval.id} is no longer approved`);
      if (change.desired) policies.put(change.desired.manifest, change.desired.digest, snapshot.revision, this.now());
      else policies.delete(name);
      audit.append({
        traceId,
        actor: "controller",
        action: "policy.applied",
        target: change.binding.objectKey,
        payload: { operation: change.binding.operation, fields: change.subject.fields, fromDigest: change.binding.fromDigest, toDigest: change.binding.toDigest, revision: snapshot.revision, ...(verdict.approval ? { approval: verdict.approval.id } : {}) },
        result: "ok",
      });
    });
    log.info(`${change.summary}: in force`);
    this.o.onChanged(traceId);
    return {};
  }

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }
}
