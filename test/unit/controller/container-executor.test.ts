/**
 * The executor's order of steps for a new container on a Runtime that records its calls: where the engine can
 * write into a running agent (Docker) the ACP token follows the start; where it cannot (Kubernetes) the container
 * is created running with it, so that the agent is started once, by one write.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ACP_TOKEN_FILE } from "../../../src/acp/protocol.ts";
import type { Action, ChangeBase } from "../../../src/controller/changes.ts";
import { ContainerExecutor, handOverBeforeStart } from "../../../src/controller/container-executor.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import type { ContainerSpec, ObservedContainer, Runtime } from "../../../src/runtime/runtime.ts";
import { generateMasterKeyText } from "../../../src/secrets/crypto.ts";
import { openVault } from "../../../src/secrets/vault.ts";
import { openState } from "../../../src/store/state.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const spec: ContainerSpec = { agent: "alpha", image: "ruriko/gitai:dev", env: {}, pidsLimit: 256, specDigest: "sha256:spec", revision: "r1" };

/** A Runtime that records every call, in order (only what a create touches is implemented). */
function recordingRuntime(agentFilesWhileRunning: boolean): { runtime: Runtime; calls: string[]; prepared: string[] } {
  const calls: string[] = [];
  const prepared: string[] = [];
  let n = 0;
  const observed = (id: string): ObservedContainer => ({ id, name: `c-${id}`, agent: spec.agent, image: spec.image, state: "created", exitCode: 0, oomKilled: false, specDigest: spec.specDigest, revision: spec.revision });
  const runtime: Runtime = {
    agentFilesWhileRunning,
    prepare: async (spec) => void prepared.push(spec.network ?? "bridge"),
    list: async () => [],
    imageExists: async () => true,
    ensureImage: async () => {},
    resolveImage: async () => undefined,
    create: async (_spec, options) => {
      const files = Object.keys(options?.running?.files ?? {});
      calls.push(`create${options?.replacing ? ` replacing ${options.replacing}` : ""}${options?.running ? ` running with ${files.join(", ")}` : ""}`);
      return observed(`new${++n}`);
    },
    start: async (id) => void calls.push(`start ${id}`),
    writeAgentFile: async (id, name) => void calls.push(`write ${name} ${id}`),
    stop: async (id) => void calls.push(`stop ${id}`),
    remove: async (id) => void calls.push(`remove ${id}`),
    removeAgentVolume: async () => {},
    subscribe: () => ({ close: () => {} }),
    ping: async () => true,
  };
  return { runtime, calls, prepared };
}

function executorOn(runtime: Runtime) {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-executor-"));
  dirs.push(dir);
  const state = openState(dir);
  const vault = openVault(state, { stateDir: dir, env: { RURIKO_MASTER_KEY: generateMasterKeyText() } });
  const executor = new ContainerExecutor({
    runtime,
    inventory: state.inventory,
    approvals: state.approvals,
    audit: state.audit,
    appliedConfig: state.appliedConfig,
    tokens: vault.tokens,
    transaction: state.transaction,
    now: () => new Date(),
    ensureImage: async () => {},
  });
  return { executor, state, vault };
}

const base: ChangeBase = { agent: "alpha", kind: "Agent", object: "alpha", reason: "test", operation: "create", fields: [], drift: false, fromDigest: "absent", toDigest: spec.specDigest, source: null };
const create = (start: boolean): Action => ({ ...base, type: "create", spec, start });
const recreate: Action = { ...base, type: "recreate", operation: "update", containerId: "old", spec, start: true };
const log = createLogger({ level: "silent" });

describe("container executor: when a new container gets its ACP token", () => {
  test("the choice follows the runtime's agentFilesWhileRunning", () => {
    assert.equal(handOverBeforeStart({ agentFilesWhileRunning: true }), false);
    assert.equal(handOverBeforeStart({ agentFilesWhileRunning: false }), true);
  });

  test("an engine that writes into running agents (Docker): created, started, then the token", async () => {
    const { runtime, calls } = recordingRuntime(true);
    const { executor, vault } = executorOn(runtime);
    await executor.execute(create(true), "t1", log, undefined);
    assert.deepEqual(calls, ["create", "start new1", `write ${ACP_TOKEN_FILE} new1`]);
    assert.ok(vault.tokens.get("alpha"), "a token on record");
  });

  test("an engine that cannot (Kubernetes): created running with the token, also for a recreate", async () => {
    const { runtime, calls } = recordingRuntime(false);
    const { executor, state, vault } = executorOn(runtime);
    await executor.execute(create(true), "t1", log, undefined);
    assert.deepEqual(calls, [`create running with ${ACP_TOKEN_FILE}`]);
    const first = vault.tokens.get("alpha");
    assert.ok(first, "the token it was created with is on record");
    calls.length = 0;
    await executor.execute(recreate, "t2", log, undefined);
    assert.deepEqual(calls, [`create replacing old running with ${ACP_TOKEN_FILE}`, "remove old"]);
    assert.equal(state.inventory.get("alpha")?.containerId, "new2");
    assert.notEqual(vault.tokens.get("alpha"), first, "a new container, a new token");
    assert.deepEqual(state.audit.tail(10).filter((e) => e.action === "agent.token.issued").map((e) => (e.payload as { containerId: string }).containerId), ["new2", "new1"], "one issue recorded per container (newest first)");
  });

  test("a container created but not started gets its token all the same", async () => {
    for (const whileRunning of [true, false]) {
      const { runtime, calls } = recordingRuntime(whileRunning);
      const { executor } = executorOn(runtime);
      await executor.execute(create(false), "t1", log, undefined);
      assert.deepEqual(calls, ["create", `write ${ACP_TOKEN_FILE} new1`]);
    }
  });
});

describe("container executor: what agents share (the Docker engine's bridge network)", () => {
  test("made sure of once per network mode: again for a container put back in another mode, and after an engine loss", async () => {
    const { runtime, prepared } = recordingRuntime(true);
    const { executor } = executorOn(runtime);
    await executor.execute(create(true), "t1", log, undefined);
    await executor.execute(recreate, "t2", log, undefined);
    assert.deepEqual(prepared, ["bridge"], "once for the same mode");
    // A container put back as recorded, from before serve's mode changed, then one of serve's mode again.
    await executor.execute({ ...recreate, spec: { ...spec, network: "host", controlPort: 20001 } }, "t3", log, undefined);
    await executor.execute(recreate, "t4", log, undefined);
    assert.deepEqual(prepared, ["bridge", "host", "bridge"]);
    executor.engineLost();
    await executor.execute(recreate, "t5", log, undefined);
    assert.deepEqual(prepared, ["bridge", "host", "bridge", "bridge"], "the network may be gone with the engine");
  });
});
