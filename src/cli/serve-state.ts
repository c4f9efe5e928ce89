/**
 * How `serve` opens its state: the integrity check, the refusal of a lost database (naming the containers its
 * instance left on this Docker host), and the adoption of what the engine shows when the database asks for it
 * (after `--adopt-orphans`, or a restore). Wiring of store/ and controller/engine-adoption.ts, nothing more.
 */
import type Docker from "dockerode";
import { adoptEngineState, isAdoptionMode, type AdoptionReport } from "../controller/engine-adoption.ts";
import { newTraceId, type Logger } from "../observability/logger.ts";
import { readContainerFacts } from "../runtime/container-readback.ts";
import { DockerRuntime } from "../runtime/docker-runtime.ts";
import { LostStateError } from "../store/instance-file.ts";
import { ADOPT_META } from "../store/meta-store.ts";
import { openState, type StateStores } from "../store/state.ts";
import type { StorageHealth } from "../store/storage-health.ts";

/** Opens the state for serve; a lost database is refused with what its instance left on this host. */
export async function openServeState(opts: { stateDir: string; adoptOrphans: boolean; docker: Docker; health: StorageHealth }): Promise<StateStores> {
  try {
    return openState(opts.stateDir, {
      integrityCheck: true,
      health: opts.health,
      ...(opts.adoptOrphans ? { adopt: { onAdopt: (meta) => meta.set(ADOPT_META, "lost") } } : {}),
    });
  } catch (error) {
    if (!(error instanceof LostStateError)) throw error;
    throw new LostStateError(error.stateDir, opts.health.file, error.instance, error.found, ` ${await describeContainers(opts.docker, error.instance)}.`);
  }
}

/** "Containers of instance X on this Docker host: …", in words. */
export async function describeContainers(docker: Docker, instance: string): Promise<string> {
  try {
    const list = await new DockerRuntime({ docker, instance }).list();
    if (list.length === 0) return `No container of instance ${instance} is on this Docker host`;
    const names = list.map((c) => `${c.name} (agent ${c.agent}, ${c.state}, ${c.image})`).sort();
    return `Containers of instance ${instance} on this Docker host: ${names.join(", ")}`;
  } catch (error) {
    return `Whether containers of instance ${instance} run is unknown: the Docker engine did not answer (${(error as Error).message})`;
  }
}

/**
 * Reads the engine into the inventory when the database asks for it, before anything plans. The engine must
 * answer: planning without it would treat every container of the instance as unknown.
 */
export async function adoptIfPending(state: StateStores, docker: Docker, runtime: DockerRuntime, logger: Logger): Promise<AdoptionReport | undefined> {
  const mode = state.meta.get(ADOPT_META);
  if (!isAdoptionMode(mode)) return undefined;
  if (!(await runtime.ping())) {
    throw new Error(`the state database of instance ${state.instance} must first take over what the Docker engine shows (${mode === "lost" ? "--adopt-orphans" : "a restored backup"}), but the engine does not answer; start again once it does`);
  }
  const report = await adoptEngineState(
    { list: () => runtime.list(), readFacts: (id) => readContainerFacts(docker, id), inventory: state.inventory, meta: state.meta, audit: state.audit, transaction: state.transaction },
    mode,
    state.instance,
    newTraceId(),
  );
  const what = report.adopted.map((a) => `${a.container} (${a.state}, ${a.image})`).join(", ") || "no container";
  logger.warn(
    { instance: state.instance, mode, adopted: report.adopted, forgotten: report.forgotten, skipped: report.skipped },
    mode === "lost"
      ? `adopted the containers of instance ${state.instance}: ${what}. Secrets, approvals, the audit log before now and the policies in force were lost with the database: the first revision's policies are put in force, store secrets again (docs/operations.md#adopting-a-lost-instance)`
      : `restored from a backup: took over ${what} from the engine${report.forgotten.length > 0 ? `; dropped ${report.forgotten.join(", ")} (gone since the backup)` : ""}`,
  );
  return report;
}
