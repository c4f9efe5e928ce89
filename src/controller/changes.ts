/**
 * The changes an agent can need, as data: what the planner returns, the gate decides on, `plan` shows and the
 * reconciler carries out. Each names its object and operation as approval rules see them, and what it goes from
 * and to (what an approval is bound to).
 */
import type { ProposedChange } from "../approvals/gate.ts";
import type { ContainerSpec } from "../runtime/runtime.ts";
import type { DesiredBinding, DesiredGosuto } from "./agent-config.ts";

/** The digest of nothing: what a created object comes from and a removed one goes to. */
export const ABSENT = "absent";

export type Operation = "create" | "update" | "delete" | "start" | "stop" | "grant" | "revoke";

export interface ChangeBase {
  agent: string;
  /** The object changed, as approval rules see it: `Agent/newsbot`, `Gosuto/newsbot`, `SecretBinding/newsbot-openai`. */
  kind: "Agent" | "Gosuto" | "SecretBinding";
  object: string;
  /** Why, in words a person understands. */
  reason: string;
  /** The operation as approval rules see it. */
  operation: Operation;
  /** Top-level spec fields that changed (for rules with `fields`). */
  fields: string[];
  /** True when the change repairs drift (a change made behind Ruriko's back) rather than applying a manifest change. */
  drift: boolean;
  /** What the change goes from and to: what an approval request is bound to. */
  fromDigest: string;
  toDigest: string;
  /** Digest of the file that asks for it (null: none does, as for a removal or a repair). */
  source: string | null;
}

/**
 * What a new container is made from. `imageId`: exactly this image (the engine's id), whatever the spec's reference
 * names by then: the image the agent is approved to run, or the one an approved move goes to (image-move.ts).
 * Absent: the reference as its pull policy makes it present (a new agent, a new reference: gated as such).
 */
interface NewContainer {
  spec: ContainerSpec;
  start: boolean;
  imageId?: string;
}

/** A change to the agent's container. */
export type Action =
  | (ChangeBase & NewContainer & { type: "create" })
  | (ChangeBase & NewContainer & { type: "recreate"; containerId: string })
  | (ChangeBase & { type: "start"; containerId: string })
  | (ChangeBase & { type: "stop"; containerId: string })
  | (ChangeBase & { type: "remove"; containerId: string | null });

/** A change to what the agent holds inside: applied by Ruriko's records, delivered over ACP. */
export type ConfigChange =
  | (ChangeBase & { type: "gosuto"; gosuto: DesiredGosuto })
  | (ChangeBase & { type: "grant"; binding: DesiredBinding })
  | (ChangeBase & { type: "revoke"; binding: string; secret: string | null })
  | (ChangeBase & { type: "identity"; userId: string | null });

export type Change = Action | ConfigChange;

/** Each kind of action without the given fields (Omit over a union would keep only what all kinds share). */
export type ActionWithout<K extends keyof ChangeBase> = Action extends infer A ? (A extends Action ? Omit<A, K> : never) : never;

export const isContainerAction = (c: Change): c is Action => c.type === "create" || c.type === "recreate" || c.type === "start" || c.type === "stop" || c.type === "remove";

/** A planned change as the gate sees it: what rules match on, what a request binds, words for people. */
export function proposalOf(change: Change, driftMode: "heal" | "report" | "approve" = "heal"): ProposedChange {
  const objectKey = `${change.kind}/${change.object}`;
  return {
    subject: { kind: change.kind, name: change.object, operation: change.operation, fields: change.fields, drift: change.drift, driftMode },
    binding: { agent: change.agent, objectKey, operation: change.operation, fromDigest: change.fromDigest, toDigest: change.toDigest },
    // A Gosuto may serve several agents: its summary says which one the change is for.
    summary: `${objectKey}${change.kind === "Gosuto" ? ` for agent ${change.agent}` : ""}: ${change.reason}`,
    sourceDigest: change.source,
  };
}
