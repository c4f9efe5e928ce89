/**
 * What an agent should be and hold, derived from the snapshot: its container spec, its Gosuto, its secrets and
 * its Matrix identity, with the digests that say whether that is what was applied, and the files they come
 * from. Pure: the planner compares these with what Ruriko applied, the agent sync with what the agent reports.
 */
import { stringify } from "yaml";
import commonSchema from "../../schemas/common.schema.json" with { type: "json" };
import { digestOf } from "../api/digest.ts";
import type { AgentManifest, GosutoManifest } from "../api/generated/types.ts";
import { objectKey } from "../api/kinds.ts";
import type { LoadedObject } from "../api/parse.ts";
import { objectsOfKind, type Snapshot } from "../api/snapshot.ts";
import type { ContainerSpec } from "../runtime/runtime.ts";
import { containerSpecFor } from "./container-spec.ts";

export interface DesiredGosuto {
  name: string;
  digest: string;
  /** The object as YAML: the agent parses and validates it with the same code and must get the same digest. */
  yaml: string;
  spec: Record<string, unknown>;
  /** Digest of the file that defines it. */
  source: string | null;
}

export interface DesiredBinding {
  /** The SecretBinding's name. */
  binding: string;
  secret: string;
  env: string | undefined;
  /** The binding object's digest: what a grant approval is bound to. */
  digest: string;
  source: string | null;
}

/** A bound secret as the store describes it: enough for the digest, no value. */
export interface SecretVersion {
  name: string;
  version: number;
  revision: string;
}

/** Everything the manifests ask of one agent. */
export interface DesiredAgent {
  manifest: AgentManifest;
  spec: ContainerSpec;
  /** Digest of the Agent's file. */
  source: string | null;
  gosuto: DesiredGosuto | undefined;
  bindings: DesiredBinding[];
  /** The Matrix user it should be; null for none; undefined while that cannot be known (its account being made). */
  matrixUserId: string | null | undefined;
}

const sourceOf = (snapshot: Snapshot, loaded: LoadedObject) => snapshot.fileDigests.get(loaded.source.file) ?? null;

export function desiredAgentOf(snapshot: Snapshot, name: string, account: { state: string; userId: string | null } | undefined): DesiredAgent | undefined {
  const loaded = snapshot.objects.get(objectKey("Agent", name));
  if (!loaded) return undefined;
  const manifest = loaded.object as AgentManifest;
  return {
    manifest,
    spec: containerSpecFor(manifest, snapshot.revision),
    source: sourceOf(snapshot, loaded),
    gosuto: desiredGosutoOf(snapshot, manifest),
    bindings: desiredBindingsOf(snapshot, name),
    matrixUserId: desiredMatrixUserIdOf(manifest, account),
  };
}

/** A Gosuto's text, made once per object however many agents use it, and only when it is pushed or recorded. */
const gosutoYaml = new WeakMap<LoadedObject, string>();

export function desiredGosutoOf(snapshot: Snapshot, agent: AgentManifest): DesiredGosuto | undefined {
  const loaded = snapshot.objects.get(objectKey("Gosuto", agent.spec.gosuto));
  if (!loaded) return undefined;
  const object = loaded.object as GosutoManifest;
  return {
    name: loaded.name,
    digest: loaded.digest,
    get yaml() {
      let text = gosutoYaml.get(loaded);
      if (text === undefined) gosutoYaml.set(loaded, (text = stringify(object)));
      return text;
    },
    spec: (object.spec ?? {}) as Record<string, unknown>,
    source: sourceOf(snapshot, loaded),
  };
}

/** Each snapshot's bindings by agent, indexed once: planning thousands of agents must not scan them all per agent. */
const bindingsByAgent = new WeakMap<Snapshot, Map<string, DesiredBinding[]>>();

/** The bindings that name this agent, by binding name (never a reserved secret: validation refuses those too). */
export function desiredBindingsOf(snapshot: Snapshot, agent: string): DesiredBinding[] {
  let index = bindingsByAgent.get(snapshot);
  if (!index) {
    index = new Map();
    for (const b of objectsOfKind(snapshot, "SecretBinding")) {
      if (RESERVED_SECRET_NAMES.test(b.object.spec.secret)) continue;
      const list = index.get(b.object.spec.agent) ?? [];
      list.push({ binding: b.name, secret: b.object.spec.secret, env: b.object.spec.env, digest: b.digest, source: sourceOf(snapshot, b) });
      index.set(b.object.spec.agent, list);
    }
    bindingsByAgent.set(snapshot, index);
  }
  return index.get(agent) ?? [];
}

/** The Matrix user an agent should be: the existing account it names, its provisioned account once made, or none. */
export function desiredMatrixUserIdOf(manifest: AgentManifest, account: { state: string; userId: string | null } | undefined): string | null | undefined {
  const matrix = manifest.spec.matrix;
  if (matrix?.userId) return matrix.userId;
  if (!matrix?.provision) return null;
  return account?.state === "active" && account.userId ? account.userId : undefined;
}

/**
 * Digest of a set of secrets, from names, versions and the store's random per-write revision: it moves
 * on every rotation and on every grant or revoke, and reveals nothing about any value.
 */
export function secretsDigestOf(secrets: readonly SecretVersion[]): string {
  const entries = [...secrets].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((s) => [s.name, s.version, s.revision]);
  return digestOf({ secrets: entries });
}

/** Secret-store name of the access token of an existing account (`spec.matrix.userId`): the operator stores it. */
export const agentMatrixTokenSecret = (agent: string) => `agent.${agent}.matrix-token`;
/** Secret-store names of a provisioned account's credentials, per account: Ruriko writes and deletes them. */
export const provisionedTokenSecret = (localpart: string) => `matrix-account.${localpart}.token`;
export const provisionedPasswordSecret = (localpart: string) => `matrix-account.${localpart}.password`;

/** Ruriko's own credentials and agents' Matrix credentials: never deliverable through a SecretBinding. */
export const RESERVED_SECRET_NAMES = new RegExp(commonSchema.$defs.reservedSecretName.pattern);

/** Where the agent's Matrix token is in the store, when it should have one. */
export function matrixTokenSecretOf(manifest: AgentManifest, account: { localpart: string } | undefined): string | undefined {
  const matrix = manifest.spec.matrix;
  if (matrix?.provision) return account && provisionedTokenSecret(account.localpart);
  return matrix?.userId ? agentMatrixTokenSecret(manifest.metadata.name) : undefined;
}

/**
 * Rooms a provisioned agent is joined to: every room its Gosuto names by id or alias (never `*`) — those it
 * serves, its admin room, its approval room and the rooms it may post to (`messaging.allowedTargets`).
 */
export function agentRoomsOf(gosuto: GosutoManifest | undefined): string[] {
  const spec = gosuto?.spec;
  const rooms = new Set((spec?.trust?.allowedRooms ?? []).filter((r) => r !== "*"));
  if (spec?.trust?.adminRoom) rooms.add(spec.trust.adminRoom);
  if (spec?.approvals?.enabled && spec.approvals.room) rooms.add(spec.approvals.room);
  for (const target of spec?.messaging?.allowedTargets ?? []) {
    const room = target.roomId ?? target.alias;
    if (room) rooms.add(room);
  }
  return [...rooms].sort();
}

/** Why an agent that should have a Matrix identity does not (yet): the reason is a condition reason. */
export interface MatrixProblem {
  reason: "MatrixUnavailable" | "MatrixAccountPending" | "MatrixAccountFailed" | "MatrixTokenMissing";
  message: string;
}

export interface DesiredMatrix {
  /** What the agent should hold; null when nothing (then whatever it holds is dropped). */
  identity: { homeserver: string; userId: string; digest: string } | null;
  problem?: MatrixProblem;
}

/**
 * The Matrix identity an agent should hold, from its manifest and what Ruriko knows: the homeserver URL
 * agents use (undefined when Ruriko runs without Matrix), its provisioned account, and its token's metadata.
 */
export function desiredMatrixOf(
  manifest: AgentManifest,
  known: { homeserver: string | undefined; account: { state: string; userId: string | null; lastError: string | null } | undefined; token: SecretVersion | undefined },
): DesiredMatrix {
  const spec = manifest.spec.matrix;
  const agent = manifest.metadata.name;
  if (!spec?.provision && !spec?.userId) return { identity: null };
  if (!known.homeserver) return { identity: null, problem: { reason: "MatrixUnavailable", message: "spec.matrix is set but this Ruriko runs without --matrix-homeserver: the agent gets no Matrix identity" } };
  const { account, token } = known;
  let userId: string;
  if (spec.provision) {
    if (account?.state !== "active" || !account.userId) {
      return { identity: null, problem: account?.lastError ? { reason: "MatrixAccountFailed", message: `its Matrix account cannot be created: ${account.lastError}` } : { reason: "MatrixAccountPending", message: "its Matrix account is being created" } };
    }
    userId = account.userId;
  } else {
    userId = spec.userId!;
  }
  if (!token) {
    return {
      identity: null,
      problem: spec.provision
        ? { reason: "MatrixAccountPending", message: `the access token of ${userId} is being renewed` }
        : { reason: "MatrixTokenMissing", message: `store the access token of ${userId} with: ruriko secret set ${agentMatrixTokenSecret(agent)}` },
    };
  }
  const identity = { homeserver: known.homeserver, userId, digest: matrixIdentityDigestOf(known.homeserver, userId, token) };
  const failed = spec.provision ? account?.lastError : null;
  return failed ? { identity, problem: { reason: "MatrixAccountFailed", message: `its Matrix account is not as wanted: ${failed}` } } : { identity };
}

/** Names the identity and the token's store revision: it moves when the token is renewed, and reveals nothing of it. */
export function matrixIdentityDigestOf(homeserver: string, userId: string, token: SecretVersion): string {
  return digestOf({ matrix: [homeserver, userId, token.name, token.version, token.revision] });
}
