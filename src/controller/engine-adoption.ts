/**
 * Taking over what the engine shows when the state database does not know it: after the database was lost
 * (`serve --adopt-orphans`), and after a backup was restored (containers created or removed after the backup).
 *
 * The rule (docs/operations.md, "Adopting a lost instance"):
 * - the newest container of each agent carrying this instance's labels is recorded in the inventory as what
 *   Ruriko applied, with the spec that made it — read back from the engine and accepted only when it gives the
 *   digest in the container's `ruriko.dev/spec-digest` label. So the planner judges it exactly as it judges a
 *   container it created: an unchanged manifest changes nothing, a changed one is a change (image, env, …)
 *   gated by the policies in force, an agent no longer in the manifests is a deletion (always approved first), a
 *   second container of the same agent is removed as an extra;
 * - an adopted container that is not running counts as stopped by Ruriko: starting it is a change of
 *   `spec.state`, gated like one, never a crash restart slipped in;
 * - after a restore only what the backup does not match is taken over, and an inventory row whose container is
 *   gone is dropped (the agent was removed after the backup): nothing is applied twice, nothing removed comes back.
 * Adoption needs every container it takes over read back exactly; otherwise it refuses, naming the container
 * (after a restore, such a container is left to the planner, which treats it as changed behind Ruriko's back).
 * What the engine holds is listed and read back through the Runtime port (Runtime.readBack: a Docker container's
 * configuration, a Kubernetes StatefulSet's pod template), so this runs on every engine; one without a read-back
 * counts every container that would need it as unreadable.
 */
import { digestOf } from "../api/digest.ts";
import { LABELS, type ContainerFacts, type ContainerSpec, type ObservedContainer } from "../runtime/runtime.ts";
import type { AuditLog } from "../store/audit-log.ts";
import type { InventoryEntry, InventoryStore } from "../store/inventory-store.ts";
import { ADOPT_META, type MetaStore } from "../store/meta-store.ts";
import { parseAgentNetwork } from "./agent-network.ts";
import { ACP_PORT } from "./container-spec.ts";
import { currentContainer } from "./planner.ts";

export type AdoptionMode = "lost" | "restored";

export const isAdoptionMode = (value: string | undefined): value is AdoptionMode => value === "lost" || value === "restored";

/** At most this many image-set variables are tried as possibly also set by the manifest (2^n digests). */
const MAX_AMBIGUOUS_ENV = 10;

/**
 * The spec that made a container, from what the engine shows, or undefined when no candidate gives the digest
 * in its label. The manifest's env is the container's minus what the image sets and minus RURIKO_AGENT; a
 * variable the manifest set to the very value the image sets is indistinguishable, so those are tried both ways.
 */
export function specFromEngine(agent: string, facts: ContainerFacts): ContainerSpec | undefined {
  const wanted = facts.labels[LABELS.specDigest];
  if (!wanted) return undefined;
  const own: Record<string, string> = {};
  const ambiguous: Array<[string, string]> = [];
  for (const [key, value] of Object.entries(facts.env)) {
    if (key === "RURIKO_AGENT") continue;
    if (facts.imageEnv[key] === value) ambiguous.push([key, value]);
    else own[key] = value;
  }
  if (ambiguous.length > MAX_AMBIGUOUS_ENV) return undefined;
  const host = facts.networkMode === "host";
  const labelledPort = Number(facts.labels[LABELS.controlPort]);
  const networks: Array<Record<string, unknown>> = host
    ? [{ network: "host", controlPort: labelledPort }]
    : facts.exposedPorts.includes(`${ACP_PORT}/tcp`)
      ? [{ controlPort: ACP_PORT }, {}, ...namedNetworkCandidates(facts.networkMode)]
      : [{}];
  for (let mask = 0; mask < 1 << ambiguous.length; mask++) {
    const env = { ...own, ...Object.fromEntries(ambiguous.filter((_, i) => mask & (1 << i))) };
    for (const network of networks) {
      const fields = {
        image: facts.image,
        env,
        memoryBytes: facts.memoryBytes > 0 ? facts.memoryBytes : undefined,
        cpus: facts.nanoCpus > 0 ? facts.nanoCpus / 1e9 : undefined,
        pidsLimit: facts.pidsLimit ?? undefined,
        ...network,
      };
      if (digestOf(fields) === wanted) return { agent, ...(fields as Omit<ContainerSpec, "agent" | "specDigest" | "revision">), specDigest: wanted, revision: facts.labels[LABELS.revision] ?? "" };
    }
  }
  return undefined;
}

/**
 * A container of `--agent-network network:NAME` is on NAME, with the ACP port exposed: tried as such (the digest
 * decides; the instance's own bridge network is tried this way too, and fails it).
 */
function namedNetworkCandidates(networkMode: string): Array<Record<string, unknown>> {
  const parsed = parseAgentNetwork(`network:${networkMode}`);
  return parsed.ok ? [{ network: parsed.value, controlPort: ACP_PORT }] : [];
}

export interface AdoptionPlan {
  /** Per agent, its newest container, to record as applied. */
  adopt: ObservedContainer[];
  /** Agents whose inventory row is dropped: their container is gone. */
  forget: string[];
}

/** Pure: what to take over, given what the engine shows and what the inventory says. */
export function planAdoption(mode: AdoptionMode, observed: readonly ObservedContainer[], inventory: readonly InventoryEntry[]): AdoptionPlan {
  const byAgent = new Map<string, ObservedContainer[]>();
  for (const c of observed) byAgent.set(c.agent, [...(byAgent.get(c.agent) ?? []), c]);
  const recorded = new Map(inventory.map((e) => [e.agent, e]));
  const adopt: ObservedContainer[] = [];
  for (const [agent, containers] of [...byAgent].sort(([a], [b]) => a.localeCompare(b))) {
    const newest = currentContainer(containers)!;
    if (mode === "lost" || recorded.get(agent)?.containerId !== newest.id) adopt.push(newest);
  }
  const forget = mode === "restored" ? inventory.filter((e) => !byAgent.has(e.agent)).map((e) => e.agent) : [];
  return { adopt, forget };
}

export interface AdoptionDeps {
  /** The engine's containers of this instance (Runtime.list). */
  list: () => Promise<ObservedContainer[]>;
  /**
   * What the engine shows of a container's configuration, from which its spec is read back (Runtime.readBack).
   * Absent where that cannot be done: an adoption that needs no read-back still completes (after a restore: every
   * container is the one the backup recorded, or gone), and a container that would need one is unreadable.
   */
  readFacts?: (containerId: string) => Promise<ContainerFacts>;
  inventory: InventoryStore;
  meta: MetaStore;
  audit: AuditLog;
  transaction<T>(fn: () => T): T;
}

export interface AdoptionReport {
  mode: AdoptionMode;
  adopted: Array<{ agent: string; container: string; image: string; state: string }>;
  forgotten: string[];
  /** Containers left to the planner (after a restore only): their spec could not be read back. */
  skipped: Array<{ agent: string; container: string }>;
}

export class AdoptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AdoptionError";
  }
}

/** Reads the engine into the inventory (see the rule above) and clears ADOPT_META, in one transaction. */
export async function adoptEngineState(deps: AdoptionDeps, mode: AdoptionMode, instance: string, traceId: string): Promise<AdoptionReport> {
  const plan = planAdoption(mode, await deps.list(), deps.inventory.list());
  const specs: Array<{ container: ObservedContainer; spec: ContainerSpec }> = [];
  const skipped: AdoptionReport["skipped"] = [];
  for (const container of plan.adopt) {
    const spec = deps.readFacts ? specFromEngine(container.agent, await deps.readFacts(container.id)) : undefined;
    if (spec) specs.push({ container, spec });
    else skipped.push({ agent: container.agent, container: container.name });
  }
  if (mode === "lost" && skipped.length > 0) {
    const named = skipped.map((s) => `${s.container} (agent ${s.agent})`).join(", ");
    throw new AdoptionError(
      deps.readFacts
        ? `cannot adopt ${named} of instance ${instance}: the configuration the engine shows does not give the spec digest in its label, so what Ruriko applied to it is unknown. Remove it (docker rm -f; kubectl delete statefulset, which keeps its data volume) and start again to let Ruriko create it anew, or restore a backup (docs/operations.md#adopting-a-lost-instance)`
        : `cannot adopt ${named} of instance ${instance}: Ruriko cannot read back from this engine the configuration that made them, so what it applied to them is unknown. Restore a backup, or remove them and start again to let Ruriko create them anew (docs/operations.md#restore-and-adoption-on-kubernetes)`,
    );
  }
  const report: AdoptionReport = {
    mode,
    adopted: specs.map(({ container, spec }) => ({ agent: container.agent, container: container.name, image: spec.image, state: container.state })),
    forgotten: plan.forget,
    skipped,
  };
  deps.transaction(() => {
    for (const { container, spec } of specs) deps.inventory.record(container.agent, { containerId: container.id, spec, imageId: container.imageId ?? null, stopped: container.state !== "running" && container.state !== "restarting" });
    for (const agent of plan.forget) deps.inventory.forget(agent);
    deps.meta.delete(ADOPT_META);
    deps.audit.append({ traceId, actor: "controller", action: mode === "lost" ? "state.adopted" : "state.restored", target: `instance/${instance}`, payload: { ...report }, result: "ok" });
  });
  return report;
}
