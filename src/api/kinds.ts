import type { AgentManifest, ApprovalPolicyManifest, GosutoManifest, SecretBindingManifest } from "./generated/types.ts";

export const API_VERSION = "ruriko.dev/v1alpha1";

export const KINDS = ["Agent", "Gosuto", "SecretBinding", "ApprovalPolicy"] as const;
export type Kind = (typeof KINDS)[number];

export function isKind(value: unknown): value is Kind {
  return typeof value === "string" && (KINDS as readonly string[]).includes(value);
}

/** A validated object of any kind, with defaults filled in. */
export type ManifestObject = AgentManifest | GosutoManifest | SecretBindingManifest | ApprovalPolicyManifest;

export interface ManifestByKind {
  Agent: AgentManifest;
  Gosuto: GosutoManifest;
  SecretBinding: SecretBindingManifest;
  ApprovalPolicy: ApprovalPolicyManifest;
}

/** `Kind/name`: the identity of an object in a snapshot (names are unique per kind). */
export type ObjectKey = `${Kind}/${string}`;

export function objectKey(kind: Kind, name: string): ObjectKey {
  return `${kind}/${name}`;
}

/**
 * `Secret/openai-key` → { kind: "Secret", name: "openai-key" }: the key of an object an approval request is about.
 * Names are DNS labels or secret names, never containing a slash; anything else → undefined.
 */
export function parseObjectKey(key: string): { kind: string; name: string } | undefined {
  const match = /^([A-Za-z]+)\/([^/]+)$/.exec(key);
  return match ? { kind: match[1]!, name: match[2]! } : undefined;
}
