/**
 * What an agent should hold inside (its Gosuto and its secrets), derived from the snapshot, and the
 * digests that say whether it holds it. Pure: the reconciler compares these with what the agent reports
 * over ACP and pushes only on a difference.
 */
import { stringify } from "yaml";
import { digestOf } from "../api/digest.ts";
import type { AgentManifest } from "../api/generated/types.ts";
import { objectKey } from "../api/kinds.ts";
import { objectsOfKind, type Snapshot } from "../api/snapshot.ts";

export interface DesiredGosuto {
  name: string;
  digest: string;
  /** The object as YAML: the agent parses and validates it with the same code and must get the same digest. */
  yaml: string;
}

export interface DesiredBinding {
  /** The SecretBinding's name. */
  binding: string;
  secret: string;
  env: string | undefined;
  /** The binding object's digest: what a grant approval is bound to. */
  digest: string;
}

/** A bound secret as the store describes it: enough for the digest, no value. */
export interface SecretVersion {
  name: string;
  version: number;
  revision: string;
}

export function desiredGosutoOf(snapshot: Snapshot, agent: AgentManifest): DesiredGosuto | undefined {
  const loaded = snapshot.objects.get(objectKey("Gosuto", agent.spec.gosuto));
  if (!loaded) return undefined;
  return { name: loaded.name, digest: loaded.digest, yaml: stringify(loaded.object) };
}

/** The bindings that name this agent, by binding name. */
export function desiredBindingsOf(snapshot: Snapshot, agent: string): DesiredBinding[] {
  return objectsOfKind(snapshot, "SecretBinding")
    .filter((b) => b.object.spec.agent === agent)
    .map((b) => ({ binding: b.name, secret: b.object.spec.secret, env: b.object.spec.env, digest: b.digest }));
}

/**
 * Digest of a set of secrets, from names, versions and the store's random per-write revision: it moves
 * on every rotation and on every grant or revoke, and reveals nothing about any value.
 */
export function secretsDigestOf(secrets: readonly SecretVersion[]): string {
  const entries = [...secrets].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((s) => [s.name, s.version, s.revision]);
  return digestOf({ secrets: entries });
}
