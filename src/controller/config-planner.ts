/**
 * What an agent should hold inside — its Gosuto, its granted secrets, its Matrix identity — against what Ruriko
 * applied to it. Pure. Only a difference with the applied record is a change: the agent losing what it held
 * (a new container, a restart) is put right by delivery (agent-sync.ts), not by a new approval.
 */
import { parse } from "yaml";
import { changedFields } from "../api/field-changes.ts";
import type { AppliedConfig, AppliedGosuto } from "../store/applied-config-store.ts";
import type { DesiredAgent } from "./agent-config.ts";
import { ABSENT, type ConfigChange } from "./changes.ts";

/** Without gosuto, bindings or matrixUserId in `desired`, those are not planned. */
export function planConfig(agent: string, desired: Partial<DesiredAgent>, applied: AppliedConfig): ConfigChange[] {
  const changes: ConfigChange[] = [];
  const base = { agent, drift: false };
  const gosuto = desired.gosuto;
  if (gosuto && gosuto.digest !== applied.gosuto?.digest) {
    const fields = changedFields("Gosuto", specOf(applied.gosuto), gosuto.spec);
    const switched = applied.gosuto?.name && applied.gosuto.name !== gosuto.name ? ` (the agent had Gosuto ${applied.gosuto.name})` : "";
    changes.push({
      ...base,
      type: "gosuto",
      kind: "Gosuto",
      object: gosuto.name,
      gosuto,
      operation: applied.gosuto ? "update" : "create",
      fields,
      reason: applied.gosuto ? `${fields.join(", ") || "content"} changed${switched}` : `first applied${fields.length > 0 ? ` (sets ${fields.join(", ")})` : ""}`,
      fromDigest: applied.gosuto?.digest ?? ABSENT,
      toDigest: gosuto.digest,
      source: gosuto.source,
    });
  }
  for (const binding of desired.bindings ?? []) {
    const granted = applied.grants.find((g) => g.binding === binding.binding);
    if (granted?.digest === binding.digest) continue;
    changes.push({
      ...base,
      type: "grant",
      kind: "SecretBinding",
      object: binding.binding,
      binding,
      operation: "grant",
      fields: [],
      reason: `grant secret ${binding.secret} to agent ${agent}${binding.env ? ` as ${binding.env}` : ""}`,
      fromDigest: granted?.digest ?? ABSENT,
      toDigest: binding.digest,
      source: binding.source,
    });
  }
  if (desired.bindings) {
    for (const grant of applied.grants) {
      if (desired.bindings.some((b) => b.binding === grant.binding)) continue;
      changes.push({
        ...base,
        type: "revoke",
        kind: "SecretBinding",
        object: grant.binding,
        binding: grant.binding,
        secret: grant.secret,
        operation: "revoke",
        fields: [],
        reason: `revoke secret ${grant.secret ?? `of binding ${grant.binding}`} from agent ${agent}`,
        fromDigest: grant.digest,
        toDigest: ABSENT,
        source: null,
      });
    }
  }
  if (desired.matrixUserId !== undefined && desired.matrixUserId !== applied.matrixUserId) {
    changes.push({
      ...base,
      type: "identity",
      kind: "Agent",
      object: agent,
      userId: desired.matrixUserId,
      operation: "update",
      fields: ["matrix"],
      reason: desired.matrixUserId ? `Matrix identity ${applied.matrixUserId ? `${applied.matrixUserId} → ` : ""}${desired.matrixUserId}` : `drop Matrix identity ${applied.matrixUserId}`,
      fromDigest: applied.matrixUserId ? `matrix:${applied.matrixUserId}` : ABSENT,
      toDigest: desired.matrixUserId ? `matrix:${desired.matrixUserId}` : ABSENT,
      source: desired.source ?? null,
    });
  }
  return changes;
}

/** The spec of an applied Gosuto; undefined when its text was not kept (then every field counts as changed). */
function specOf(applied: AppliedGosuto | null): Record<string, unknown> | undefined {
  if (!applied?.yaml) return applied ? {} : undefined;
  return ((parse(applied.yaml) as { spec?: Record<string, unknown> } | null)?.spec ?? {}) as Record<string, unknown>;
}
