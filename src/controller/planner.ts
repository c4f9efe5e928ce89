/**
 * The planner: a pure function from (desired, observed, stored) state of ONE agent to the ordered actions
 * that converge them, each with its reason in words. No I/O here, so every decision Ruriko makes about
 * containers can be tested, explained by `ruriko plan`, and replayed.
 *
 * Example: the manifest says `state: Running` with image 0.2; Docker shows the container exited with code
 * 137 running image 0.1 that Ruriko applied → [recreate "image changed 0.1 → 0.2"], and the new container
 * is started as part of the recreate.
 */
import type { AgentManifest } from "../api/generated/types.ts";
import type { ContainerSpec, ObservedContainer } from "../runtime/runtime.ts";
import type { InventoryEntry } from "../store/inventory-store.ts";
import { describeSpecChange } from "./container-spec.ts";

export type Operation = "create" | "update" | "delete" | "start" | "stop";

interface ActionBase {
  agent: string;
  /** Why, in words a person understands. */
  reason: string;
  /** The operation as approval rules see it. */
  operation: Operation;
  /** Top-level spec fields that changed (for `update` rules with `fields`). */
  fields: string[];
  /** True when the action repairs drift (a change made behind Ruriko's back) rather than applying a manifest change. */
  drift: boolean;
  /** What the change goes from and to: what an approval request is bound to. */
  fromDigest: string;
  toDigest: string;
}

export type Action =
  | (ActionBase & { type: "create"; spec: ContainerSpec; start: boolean })
  | (ActionBase & { type: "recreate"; containerId: string; spec: ContainerSpec; start: boolean })
  | (ActionBase & { type: "start"; containerId: string })
  | (ActionBase & { type: "stop"; containerId: string })
  | (ActionBase & { type: "remove"; containerId: string | null });

export interface DriftFinding {
  agent: string;
  message: string;
}

export interface AgentPlanInput {
  agent: string;
  /** Undefined when the agent is not in the desired state. */
  desired?: { manifest: AgentManifest; spec: ContainerSpec };
  /** Containers of this agent owned by this instance (normally zero or one). */
  observed: readonly ObservedContainer[];
  /** What Ruriko created and last applied for this agent, if anything. */
  inventory?: InventoryEntry;
}

export interface AgentPlan {
  agent: string;
  actions: Action[];
  /** Drift left alone because the agent's drift mode is `report`. */
  reported: DriftFinding[];
}

export const ABSENT = "absent";

export function planAgent(input: AgentPlanInput): AgentPlan {
  const { agent, desired, inventory } = input;
  const plan: AgentPlan = { agent, actions: [], reported: [] };
  // Newest first; any further container of the same agent is a leftover to remove.
  const [current, ...extra] = [...input.observed].sort((a, b) => (b.startedAt ?? "").localeCompare(a.startedAt ?? "") || a.id.localeCompare(b.id));

  if (!desired) {
    if (current || inventory) {
      plan.actions.push({
        type: "remove",
        agent,
        containerId: current?.id ?? null,
        reason: "not in desired state: remove",
        operation: "delete",
        fields: [],
        drift: false,
        fromDigest: inventory?.specDigest ?? current?.specDigest ?? ABSENT,
        toDigest: ABSENT,
      });
    }
    for (const c of extra) plan.actions.push(removeExtra(agent, c));
    return plan;
  }

  const { manifest, spec } = desired;
  const wantRunning = manifest.spec.state !== "Stopped";
  const driftMode = manifest.spec.drift ?? "heal";
  const push = (action: Action) => {
    if (action.drift && driftMode === "report") plan.reported.push({ agent, message: action.reason });
    else plan.actions.push(action);
  };
  const applied = inventory?.specDigest;

  if (!current) {
    const vanished = inventory?.containerId != null;
    push({
      type: "create",
      agent,
      spec,
      start: wantRunning,
      reason: vanished ? "container was removed behind Ruriko's back: recreate" : applied ? "container missing: create" : "new agent: create",
      operation: "create",
      fields: [],
      drift: vanished,
      fromDigest: applied ?? ABSENT,
      toDigest: spec.specDigest,
    });
  } else if (current.specDigest !== spec.specDigest) {
    const changedByUs = applied === current.specDigest && inventory?.containerId === current.id;
    if (changedByUs || applied !== spec.specDigest) {
      // A manifest change: what was applied differs from what is asked for now.
      const change = inventory ? describeSpecChange(inventory.spec, spec) : { fields: ["container"], text: "container configuration changed" };
      push({
        type: "recreate",
        agent,
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
      push({
        type: "recreate",
        agent,
        containerId: current.id,
        spec,
        start: wantRunning,
        reason: "container was changed behind Ruriko's back: recreate as applied",
        operation: "update",
        fields: ["container"],
        drift: true,
        fromDigest: current.specDigest,
        toDigest: spec.specDigest,
      });
    }
  } else if (inventory?.containerId && inventory.containerId !== current.id) {
    push({
      type: "recreate",
      agent,
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
    if (wantRunning && !running) {
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
        agent,
        containerId: current.id,
        reason: why,
        operation: "start",
        fields: [],
        drift: crashed || current.state === "paused",
        fromDigest: `${current.specDigest}#${current.state}`,
        toDigest: `${spec.specDigest}#running`,
      });
    } else if (!wantRunning && running) {
      push({
        type: "stop",
        agent,
        containerId: current.id,
        reason: "spec.state is Stopped: stop",
        operation: "stop",
        fields: ["state"],
        drift: false,
        fromDigest: `${current.specDigest}#running`,
        toDigest: `${spec.specDigest}#stopped`,
      });
    }
  }
  for (const c of extra) plan.actions.push(removeExtra(agent, c));
  return plan;
}

function removeExtra(agent: string, c: ObservedContainer): Action {
  return {
    type: "remove",
    agent,
    containerId: c.id,
    reason: `extra container ${c.name} for the same agent: remove`,
    operation: "update",
    fields: ["container"],
    drift: true,
    fromDigest: `container:${c.id}`,
    toDigest: ABSENT,
  };
}
