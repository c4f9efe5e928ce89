/**
 * How `serve` opens its state: the integrity check, the refusal of a lost database (naming the containers its
 * instance left on the engine), and the adoption of what the engine shows when the database asks for it (after
 * `--adopt-orphans`, or a restore). Wiring of store/ and controller/engine-adoption.ts, nothing more; the engine is
 * reached through the Runtime port, so this works the same on Docker and on Kubernetes.
 */
import { adoptEngineState, isAdoptionMode, type AdoptionReport } from "../controller/engine-adoption.ts";
import { newTraceId, type Logger } from "../observability/logger.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { LostStateError } from "../store/instance-file.ts";
import { ADOPT_META } from "../store/meta-store.ts";
import { openState, type StateStores } from "../store/state.ts";
import type { StorageHealth } from "../store/storage-health.ts";

/** The engine agents run on, as the start of serve needs it. */
export interface AgentEngine {
  /** Who answers for it, in messages: "the Docker engine", "the Kubernetes API server". */
  name: string;
  /**
   * The runtime of an instance, and where its containers are in words ("on this Docker host"). Made on demand:
   * a lost database's instance is known only from the state directory, before the state is open.
   */
  open(instance: string): { runtime: AdoptingRuntime; where: string };
}

/** What adoption asks of a runtime: to list what the instance holds and, where it can, read each back. */
type AdoptingRuntime = Pick<Runtime, "list" | "ping" | "readBack">;

/** Opens the state for serve; a lost database is refused with what its instance left on the engine. */
export async function openServeState(opts: { stateDir: string; adoptOrphans: boolean; engine: AgentEngine; health: StorageHealth }): Promise<StateStores> {
  try {
    return openState(opts.stateDir, {
      integrityCheck: true,
      health: opts.health,
      ...(opts.adoptOrphans ? { adopt: { onAdopt: (meta) => meta.set(ADOPT_META, "lost") } } : {}),
    });
  } catch (error) {
    if (!(error instanceof LostStateError)) throw error;
    const held = await engineHolding(opts.engine, error.instance);
    // Without a read-back the containers cannot be adopted: the message then offers only a restore.
    throw new LostStateError(error.stateDir, opts.health.file, error.instance, error.found, ` ${held.text}.`, held.readsBack);
  }
}

/** "Containers of instance X on this Docker host: …", in words, listed through the engine's runtime. */
export async function describeContainers(engine: AgentEngine, instance: string): Promise<string> {
  return (await engineHolding(engine, instance)).text;
}

/** What the engine holds of an instance, in words, and whether its runtime can read those containers back. */
async function engineHolding(engine: AgentEngine, instance: string): Promise<{ text: string; readsBack: boolean }> {
  let where = "";
  let readsBack = false;
  try {
    const opened = engine.open(instance);
    where = ` ${opened.where}`;
    readsBack = opened.runtime.readBack !== undefined;
    const list = await opened.runtime.list();
    if (list.length === 0) return { text: `No container of instance ${instance} is${where}`, readsBack };
    const names = list.map((c) => `${c.name} (agent ${c.agent}, ${c.state}, ${c.image})`).sort();
    return { text: `Containers of instance ${instance}${where}: ${names.join(", ")}`, readsBack };
  } catch (error) {
    return { text: `Whether containers of instance ${instance} run${where} is unknown: ${engine.name} did not answer (${(error as Error).message})`, readsBack };
  }
}

/**
 * Reads the engine into the inventory when the database asks for it, before anything plans. The engine must
 * answer: planning without it would treat every container of the instance as unknown.
 */
export async function adoptIfPending(state: StateStores, engine: Pick<AgentEngine, "name">, runtime: AdoptingRuntime, logger: Logger): Promise<AdoptionReport | undefined> {
  const mode = state.meta.get(ADOPT_META);
  if (!isAdoptionMode(mode)) return undefined;
  if (!(await runtime.ping())) {
    throw new Error(`the state database of instance ${state.instance} must first take over what the engine shows (${mode === "lost" ? "--adopt-orphans" : "a restored backup"}), but ${engine.name} does not answer; start again once it does`);
  }
  const report = await adoptEngineState(
    { list: () => runtime.list(), ...(runtime.readBack ? { readFacts: (id: string) => runtime.readBack!(id) } : {}), inventory: state.inventory, meta: state.meta, audit: state.audit, transaction: state.transaction },
    mode,
    state.instance,
    newTraceId(),
  );
  const what = report.adopted.map((a) => `${a.container} (${a.state}, ${a.image})`).join(", ") || "no container";
  const left = report.skipped.map((s) => s.container).join(", ");
  logger.warn(
    { instance: state.instance, mode, adopted: report.adopted, forgotten: report.forgotten, skipped: report.skipped },
    mode === "lost"
      ? `adopted the containers of instance ${state.instance}: ${what}. Secrets, approvals, the audit log before now and the policies in force were lost with the database: the first revision's policies are put in force, store secrets again (docs/operations.md#adopting-a-lost-instance)`
      : `restored from a backup: took over ${what} from the engine${report.forgotten.length > 0 ? `; dropped ${report.forgotten.join(", ")} (gone since the backup)` : ""}${left ? `; left ${left} to the planner, which treats what was made after the backup and cannot be read back as changed behind Ruriko's back (docs/operations.md#restore-and-adoption-on-kubernetes)` : ""}`,
  );
  return report;
}
