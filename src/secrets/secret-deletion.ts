/**
 * Deleting a secret is risky (every agent bound to it loses it), so it waits for an approval bound to the
 * exact value in the store (its revision): `ruriko secret delete` parks it, an approver decides, and the
 * deletion is carried out by the next `secret delete` or by `serve`'s approval poll, whichever comes first.
 */
import type { ApprovalRequest, ApprovalStore } from "../store/approval-store.ts";
import type { AuditLog } from "../store/audit-log.ts";
import type { SecretStore } from "../store/secret-store.ts";

const DEFAULT_TTL_MS = 24 * 3_600_000;
export const SECRET_DELETE = "delete";
export const secretObjectKey = (name: string) => `Secret/${name}`;

export type SecretDeletion =
  | { outcome: "deleted"; request: ApprovalRequest }
  | { outcome: "requested" | "pending"; request: ApprovalRequest }
  | { outcome: "refused"; request: ApprovalRequest }
  | { outcome: "not-found" };

interface Deps {
  secrets: SecretStore;
  approvals: ApprovalStore;
  audit: AuditLog;
}

export function requestSecretDeletion(deps: Deps, name: string, actor: string, traceId: string, now = new Date()): SecretDeletion {
  const info = deps.secrets.info(name);
  if (!info) return { outcome: "not-found" };
  const existing = deps.approvals.findForChange("", SECRET_DELETE, info.revision, "none");
  if (existing?.status === "approved") return applySecretDeletion(deps, existing, actor, traceId, now);
  if (existing?.status === "pending") return { outcome: "pending", request: existing };
  if (existing?.status === "denied") return { outcome: "refused", request: existing };
  const request = deps.approvals.create(
    {
      agent: "",
      objectKey: secretObjectKey(name),
      operation: SECRET_DELETE,
      fromDigest: info.revision,
      toDigest: "none",
      revision: `secret ${name} v${info.version}`,
      summary: `Secret/${name}: delete version ${info.version} (bound agents lose it)`,
      policy: null,
      room: null,
      approvers: [],
      quorum: 1,
      expiresAt: new Date(now.getTime() + DEFAULT_TTL_MS).toISOString(),
      remindAt: null,
      traceId,
    },
    now,
  );
  deps.audit.append({ traceId, actor, action: "approval.requested", target: `approval/${request.id}`, payload: { secret: name, version: info.version, operation: SECRET_DELETE }, result: "parked" });
  return { outcome: "requested", request };
}

/** Carries out an approved deletion, if the secret is still the value that was approved. */
export function applySecretDeletion(deps: Deps, request: ApprovalRequest, actor: string, traceId: string, now = new Date()): SecretDeletion {
  const name = request.objectKey.replace(/^Secret\//, "");
  const info = deps.secrets.info(name);
  if (!info || info.revision !== request.fromDigest) {
    // Rotated (or deleted) since the request: what was approved no longer exists, and is never deleted later.
    deps.approvals.retireApproved(request.id, "the secret was rotated or deleted after approval");
    return { outcome: "not-found" };
  }
  deps.secrets.delete(name);
  deps.approvals.markApplied(request.id, now);
  deps.audit.append({ traceId, actor, action: "secret.delete", target: secretObjectKey(name), payload: { secret: name, version: info.version, approval: request.id }, result: "ok" });
  return { outcome: "deleted", request };
}
