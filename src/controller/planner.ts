/**
 * The planner: a pure function from (desired, observed, applied) state of ONE agent to every change that
 * converges them, each with its reason in words: container actions, the Gosuto it should hold, the secrets
 * granted to it and revoked from it, its Matrix identity. No I/O here, so every decision Ruriko makes about
 * an agent can be tested, explained by `ruriko plan`, gated by approvals/ and replayed.
 *
 * Example: the manifest says `state: Running` with image 0.2 and Gosuto g at digest d2; Docker shows the
 * container exited with code 137 running image 0.1 that Ruriko applied, and Ruriko applied Gosuto d1 to it →
 * [recreate "image changed 0.1 → 0.2", gosuto "Gosuto g: capabilities changed" d1 → d2]. The new container is
 * started as part of the recreate.
 */
import { changedFields } from "../api/field-changes.ts";
import { FIELDS_BY_KIND } from "../api/policy-rules.ts";
import type { ContainerSpec, ObservedContainer } from "../runtime/runtime.ts";
import type { AppliedConfig } from "../store/applied-config-store.ts";
import type { InventoryEntry } from "../store/inventory-store.ts";
import type { DesiredAgent } from "./agent-config.ts";
import { ABSENT, type Action, type ActionWithout, type Change } from "./changes.ts";
import { planConfig } from "./config-planner.ts";
import { describeSpecChange } from "./container-spec.ts";
import { approvedImage, describeImageMove, imageDigestOf, movedImage, type ImageObservation } from "./image-move.ts";

export interface DriftFinding {
  agent: string;
  message: string;
}

export interface AgentPlanInput {
  agent: string;
  /** Undefined when the agent is not in the desired state. Without gosuto, bindings or matrixUserId, those are not planned. */
  desired?: Pick<DesiredAgent, "manifest" | "spec"> & Partial<DesiredAgent>;
  /** Containers of this agent owned by this instance (normally zero or one). */
  observed: readonly ObservedContainer[];
  /** What Ruriko created and last applied for this agent, if anything. */
  inventory?: InventoryEntry;
  /** What Ruriko applied inside the agent. */
  applied?: AppliedConfig;
  /**
   * The agent's image reference resolves to another image than the one it is approved to run: a moved tag
   * (image-move.ts). Observed for the applied spec's reference when the container is gone, else the desired one's.
   */
  image?: ImageObservation;
}

export interface AgentPlan {
  agent: string;
  changes: Change[];
  /**
   * Changes known now that wait behind this pass's container action and are never run in it: a moved tag behind
   * a heal, a start or another field's change. They are gated all the same, so a request made for one is kept
   * (not superseded and asked again) while the container is healed under it.
   */
  deferred: Change[];
  /** Drift left alone because the agent's drift mode is `report`. */
  reported: DriftFinding[];
}

/**
 * The agent's container first, any further one a leftover to remove: the one the inventory records (a replace
 * interrupted between creating the new container and removing the old leaves both), else the newest.
 */
const byAge = (observed: readonly ObservedContainer[], recorded?: string | null) =>
  [...observed].sort((a, b) => Number(b.id === recorded) - Number(a.id === recorded) || (b.startedAt ?? "").localeCompare(a.startedAt ?? "") || a.id.localeCompare(b.id));

/** The container that is the agent's (the one recorded, else the newest), if any. */
export const currentContainer = (observed: readonly ObservedContainer[], recorded?: string | null): ObservedContainer | undefined => byAge(observed, recorded)[0];

/**
 * What a container made again for `spec` (a heal, another field's change) is made from: the image the agent is
 * approved to run, so that a tag that moved meanwhile does not slip in past its own gated change. When that image
 * is gone from the engine, the move comes with this change (`move`), and the change is gated as an image change.
 */
function imageFor(spec: ContainerSpec, input: AgentPlanInput, current: ObservedContainer | undefined): { imageId?: string; move?: ImageObservation } {
  const approved = approvedImage(spec.image, current, input.inventory);
  if (!approved) return {};
  const move = movedImage(input.image, approved, spec.image);
  return move && !move.running.present ? { imageId: move.resolved.id, move } : { imageId: approved };
}

type NewContainerAction = Extract<ActionWithout<"agent" | "kind" | "object" | "source">, { type: "create" | "recreate" }>;

/**
 * A change that makes a container, with the image it is made from. Carrying a moved tag (its approved image is
 * gone), it is a change of the `image` field too: no longer a drift repair (those go without approval), bound to
 * the image it goes to, and said so.
 */
function withImage(action: NewContainerAction, image: { imageId?: string; move?: ImageObservation }): NewContainerAction {
  if (!image.imageId) return action;
  if (!image.move) return { ...action, imageId: image.imageId };
  return {
    ...action,
    imageId: image.imageId,
    reason: `${action.reason}; ${describeImageMove(image.move)} (the image it ran is no longer on this host)`,
    operation: "update",
    fields: [...new Set([...action.fields, "image"])],
    drift: false,
    fromDigest: `${action.fromDigest}+${imageDigestOf(image.move.running)}`,
    toDigest: `${action.toDigest}+${imageDigestOf(image.move.resolved)}`,
  };
}

export function planAgent(input: AgentPlanInput): AgentPlan {
  const { agent, desired, inventory } = input;
  const plan: AgentPlan = { agent, changes: [], deferred: [], reported: [] };
  const [current, ...extra] = byAge(input.observed, inventory?.containerId);

  if (!desired) {
    if (current || inventory) {
      plan.changes.push({
        type: "remove",
        agent,
        kind: "Agent",
        object: agent,
        source: null,
        containerId: current?.id ?? null,
        reason: "not in desired state: remove",
        operation: "delete",
        fields: [],
        drift: false,
        fromDigest: inventory?.specDigest ?? current?.specDigest ?? ABSENT,
        toDigest: ABSENT,
      });
    }
    for (const c of extra) plan.changes.push(removeExtra(agent, c));
    return plan;
  }

  const { manifest, spec } = desired;
  const wantRunning = manifest.spec.state !== "Stopped";
  const driftMode = manifest.spec.drift ?? "heal";
  const withSource = (action: ActionWithout<"agent" | "kind" | "object" | "source">): Change =>
    ({ ...action, agent, kind: "Agent", object: agent, source: action.drift ? null : (desired.source ?? null) }) as Action;
  const push = (action: ActionWithout<"agent" | "kind" | "object" | "source">) => {
    if (action.drift && driftMode === "report") plan.reported.push({ agent, message: action.reason });
    else plan.changes.push(withSource(action));
  };
  const applied = inventory?.specDigest;
  // The tag of the image the agent is approved to run has moved: a change of its own (moveOf), after any other.
  const moved = movedImage(input.image, approvedImage(spec.image, current, inventory), spec.image);
  const deferMove = () => {
    if (moved) plan.deferred.push(withSource(moveOf(moved, current?.id ?? "", spec, wantRunning)));
  };
  /** A container made for `spec`, unless it is only reported (drift: report): from the image the agent may run. */
  const pushNew = (action: NewContainerAction) => {
    if (action.drift && driftMode === "report") return push(action);
    const image = imageFor(action.spec, input, current);
    push(withImage(action, image));
    if (!image.move) deferMove();
  };
  // Leftovers go first: one may still hold the data volume the agent's container is about to start on.
  for (const c of extra) plan.changes.push(removeExtra(agent, c));

  if (!current && inventory && inventory.specDigest !== spec.specDigest) {
    // The container is gone while the manifests ask for something else than was applied: put back what was
    // applied. The change to the manifests' spec is planned (and gated) once it runs again, never slipped in here.
    const vanished = inventory.containerId != null;
    pushNew({
      type: "create",
      spec: inventory.spec,
      start: !inventory.stopped,
      reason: vanished ? "container was removed behind Ruriko's back: recreate as applied" : "container missing: create as applied",
      operation: "create",
      fields: [],
      drift: vanished,
      fromDigest: ABSENT,
      toDigest: inventory.specDigest,
    });
  } else if (!current) {
    const vanished = inventory?.containerId != null;
    pushNew({
      type: "create",
      spec,
      start: wantRunning,
      reason: vanished ? "container was removed behind Ruriko's back: recreate" : applied ? "container missing: create" : "new agent: create",
      operation: "create",
      fields: applied ? [] : changedFields("Agent", undefined, manifest.spec).filter((f) => FIELDS_BY_KIND.Agent.includes(f)),
      drift: vanished,
      fromDigest: applied ?? ABSENT,
      toDigest: spec.specDigest,
    });
  } else if (current.specDigest !== spec.specDigest) {
    const changedByUs = applied === current.specDigest && inventory?.containerId === current.id;
    if (changedByUs || applied !== spec.specDigest) {
      // A manifest change: what was applied differs from what is asked for now.
      const change = inventory ? describeSpecChange(inventory.spec, spec) : { fields: ["container"], text: "container configuration changed" };
      pushNew({
        type: "recreate",
        containerId: current.id,
        spec,
        start: wantRunning,
        reason: change.text,
        operation: "update",
        fields: change.fields,
        drift: false,
        fromDigest: applied ?? current.specDigest,
        toDigest: spec.specDigest,
      });
    } else {
      pushNew({
        type: "recreate",
        containerId: current.id,
        spec,
        start: wantRunning,
        reason: inventory?.containerId === null ? "a change Ruriko started was interrupted: recreate as applied" : "container was changed behind Ruriko's back: recreate as applied",
        operation: "update",
        fields: ["container"],
        drift: true,
        fromDigest: current.specDigest,
        toDigest: spec.specDigest,
      });
    }
  } else if (inventory?.containerId && inventory.containerId !== current.id) {
    pushNew({
      type: "recreate",
      containerId: current.id,
      spec,
      start: wantRunning,
      reason: "container was replaced behind Ruriko's back: recreate",
      operation: "update",
      fields: ["container"],
      drift: true,
      fromDigest: `container:${current.id}`,
      toDigest: spec.specDigest,
    });
  } else {
    const running = current.state === "running" || current.state === "restarting";
    if (wantRunning && !running && inventory?.stopped) {
      // Ruriko stopped it (state: Stopped); starting it again is a change of the manifests, gated like one.
      push({
        type: "start",
        containerId: current.id,
        reason: "spec.state is Running: start",
        operation: "start",
        fields: ["state"],
        drift: false,
        fromDigest: `${current.specDigest}#stopped`,
        toDigest: `${spec.specDigest}#running`,
      });
      deferMove();
    } else if (wantRunning && !running) {
      const crashed = current.state === "exited" || current.state === "dead";
      const why = current.oomKilled
        ? `container was killed for running out of memory (exit code ${current.exitCode}): start`
        : crashed
          ? `container exited with code ${current.exitCode}: start`
          : current.state === "paused"
            ? "container is paused: start"
            : "container is not running: start";
      push({
        type: "start",
        containerId: current.id,
        reason: why,
        operation: "start",
        fields: [],
        drift: crashed || current.state === "paused",
        fromDigest: `${current.specDigest}#${current.state}`,
        toDigest: `${spec.specDigest}#running`,
      });
      deferMove();
    } else if (!wantRunning && running) {
      push({
        type: "stop",
        containerId: current.id,
        reason: "spec.state is Stopped: stop",
        operation: "stop",
        fields: ["state"],
        drift: false,
        fromDigest: `${current.specDigest}#running`,
        toDigest: `${spec.specDigest}#stopped`,
      });
      deferMove();
    } else {
      // The tag moved (pushed and pulled again, or rebuilt here): a change of what the `image` field means, gated as one.
      if (moved) push(moveOf(moved, current.id, spec, wantRunning));
    }
  }
  plan.changes.push(...planConfig(agent, desired, input.applied ?? { gosuto: null, matrixUserId: null, grants: [] }));
  return plan;
}

/** The recreate a moved tag asks for: made from exactly the image the approval names, whatever the tag names by then. */
function moveOf(moved: ImageObservation, containerId: string, spec: ContainerSpec, start: boolean): ActionWithout<"agent" | "kind" | "object" | "source"> {
  return {
    type: "recreate",
    containerId,
    spec,
    start,
    imageId: moved.resolved.id,
    reason: describeImageMove(moved),
    operation: "update",
    fields: ["image"],
    drift: false,
    fromDigest: imageDigestOf(moved.running),
    toDigest: imageDigestOf(moved.resolved),
  };
}

function removeExtra(agent: string, c: ObservedContainer): Action {
  return {
    type: "remove",
    agent,
    kind: "Agent",
    object: agent,
    source: null,
    containerId: c.id,
    reason: `extra container ${c.name} for the same agent: remove`,
    operation: "update",
    fields: ["container"],
    drift: true,
    fromDigest: `container:${c.id}`,
    toDigest: ABSENT,
  };
}
