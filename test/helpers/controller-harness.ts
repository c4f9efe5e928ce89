import Docker from "dockerode";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSnapshotFromDirectory } from "../../src/api/load.ts";
import { Controller, type ControllerOptions } from "../../src/controller/controller.ts";
import { pino } from "pino";
import { createLogger } from "../../src/observability/logger.ts";
import { generateMasterKeyText } from "../../src/secrets/crypto.ts";
import { openVault, type Vault } from "../../src/secrets/vault.ts";
import { buildAgentImage } from "../../src/runtime/agent-image.ts";
import { DockerRuntime } from "../../src/runtime/docker-runtime.ts";
import { LABELS, type Runtime } from "../../src/runtime/runtime.ts";
import type { Logger } from "../../src/observability/logger.ts";
import type { AgentStatus } from "../../src/store/agent-status-store.ts";
import { MetaStore } from "../../src/store/meta-store.ts";
import { openDatabase } from "../../src/store/database.ts";
import { openState, STATE_DB_FILE, type StateStores } from "../../src/store/state.ts";

export const TEST_AGENT_IMAGE = "ruriko/gitai:dev";

/** Builds the real agent image once per process (reused by content hash across runs). */
let imageBuilt: Promise<unknown> | undefined;
export function ensureAgentImage(docker: Docker): Promise<unknown> {
  imageBuilt ??= buildAgentImage(docker, TEST_AGENT_IMAGE);
  return imageBuilt;
}

/** A fresh state directory whose instance id is known, so the test can find and clean what Ruriko creates. */
export function newStateDir(): { stateDir: string; instance: string } {
  const stateDir = mkdtempSync(join(tmpdir(), "ruriko-state-"));
  const instance = `t${Math.random().toString(16).slice(2, 10)}`;
  const db = openDatabase(join(stateDir, STATE_DB_FILE));
  new MetaStore(db).set("instance_id", instance);
  db.close();
  return { stateDir, instance };
}

/** Removes every container, volume and network carrying the instance label. */
export async function removeInstanceResources(docker: Docker, instance: string): Promise<void> {
  const filters = JSON.stringify({ label: [`${LABELS.instance}=${instance}`] });
  for (const c of await docker.listContainers({ all: true, filters })) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {});
  const { Volumes } = await docker.listVolumes({ filters });
  for (const v of Volumes ?? []) await docker.getVolume(v.Name).remove({ force: true }).catch(() => {});
  for (const n of await docker.listNetworks({ filters })) await docker.getNetwork(n.Id).remove().catch(() => {});
}

export interface TestController {
  controller: Controller;
  state: StateStores;
  /** The Docker runtime, unless `makeRuntime` made another one. */
  runtime: Runtime;
  docker: Docker;
  instance: string;
  stateDir: string;
  vault: Vault;
  /** The master key text the vault was opened with (as RURIKO_MASTER_KEY). */
  masterKey: string;
  /** The controller's log (JSON lines, debug level). */
  logFile: string;
  /** Loads a manifest directory and offers it, as a source would. */
  offer(dir: string, revision?: string): Promise<ReturnType<Controller["offer"]>>;
  waitForStatus(agent: string, predicate: (s: AgentStatus | undefined) => boolean, what: string, timeoutMs?: number): Promise<AgentStatus | undefined>;
  containersOf(agent?: string): Promise<Docker.ContainerInfo[]>;
  stop(): Promise<void>;
}

/** `makeRuntime`: another engine than this host's Docker (the Kubernetes runtime), made for the test's instance. */
export async function startTestController(overrides: Partial<ControllerOptions> = {}, makeRuntime?: (instance: string, logger: Logger) => Runtime): Promise<TestController> {
  const docker = new Docker();
  await ensureAgentImage(docker);
  const { stateDir, instance } = newStateDir();
  const state = openState(stateDir);
  const masterKey = generateMasterKeyText();
  const vault = openVault(state, { stateDir, env: { RURIKO_MASTER_KEY: masterKey } });
  // Everything at debug level into a file the test can read (and search for leaked secrets).
  const logFile = join(stateDir, "ruriko.log");
  const logger = createLogger({ level: "debug", pretty: false, destination: pino.destination({ dest: logFile, sync: true }) });
  const runtime = makeRuntime ? makeRuntime(instance, logger) : new DockerRuntime({ docker, instance, log: logger });
  const controller = new Controller({ runtime, stores: state, vault, stateDir, logger, concurrency: 4, backoffBaseMs: 200, backoffMaxMs: 2000, ...overrides });
  controller.start();
  return {
    controller,
    state,
    runtime,
    docker,
    instance,
    stateDir,
    vault,
    masterKey,
    logFile,
    async offer(dir, revision) {
      return controller.offer(await loadSnapshotFromDirectory(dir, revision ? { revision } : {}));
    },
    async waitForStatus(agent, predicate, what, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: AgentStatus | undefined;
      while (Date.now() < deadline) {
        last = state.status.get(agent);
        if (predicate(last)) return last;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`timed out waiting for ${agent}: ${what}; last status: ${JSON.stringify(last, null, 1)}`);
    },
    async containersOf(agent) {
      const label = [`${LABELS.instance}=${instance}`, ...(agent ? [`${LABELS.agent}=${agent}`] : [])];
      return docker.listContainers({ all: true, filters: JSON.stringify({ label }) });
    },
    async stop() {
      await controller.stop();
      state.close();
      await removeInstanceResources(docker, instance);
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

export const isReady = (s: AgentStatus | undefined) => !!s?.conditions.some((c) => c.type === "Ready" && c.status === "True");
export const isAwaitingApproval = (s: AgentStatus | undefined) => !!s?.conditions.some((c) => c.type === "AwaitingApproval" && c.status === "True");

/** Polls until `check` holds; fails with `what` after the timeout. */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
