/**
 * serve's start on either engine: a restored backup (or --adopt-orphans) is taken over through the Runtime port,
 * whether or not the engine's runtime can read a container's configuration back (Runtime.readBack; both real
 * runtimes can, the adoption of what they read back is tested in runtime-conformance.test.ts); and a lost database
 * is refused naming what the chosen engine holds. Real SQLite state; the engine is a list of what it would show.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, test } from "node:test";
import type { AgentManifest } from "../../../src/api/generated/types.ts";
import { adoptIfPending, describeContainers, openServeState, type AgentEngine } from "../../../src/cli/serve-state.ts";
import { containerSpecFor } from "../../../src/controller/container-spec.ts";
import { AdoptionError } from "../../../src/controller/engine-adoption.ts";
import { planAgent } from "../../../src/controller/planner.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import type { ObservedContainer } from "../../../src/runtime/runtime.ts";
import { ADOPT_META } from "../../../src/store/meta-store.ts";
import { openState, STATE_DB_FILE, type StateStores } from "../../../src/store/state.ts";
import { StorageHealth } from "../../../src/store/storage-health.ts";

const silent = createLogger({ level: "silent", pretty: false });
const manifest = (agent: string) => ({ apiVersion: "ruriko.dev/v1alpha1", kind: "Agent", metadata: { name: agent }, spec: { image: "ruriko/gitai:0.1", gosuto: agent } }) as AgentManifest;
const spec = (agent: string) => containerSpecFor(manifest(agent), "r1");
const workload = (agent: string, id: string): ObservedContainer => ({
  id,
  name: `ruriko-abc-${agent}`,
  agent,
  image: "ruriko/gitai:0.1",
  state: "running",
  exitCode: 0,
  oomKilled: false,
  specDigest: spec(agent).specDigest,
  revision: "r1",
});
/** An engine showing `containers` that cannot read them back (Runtime.readBack absent). */
const withoutReadBack = (containers: ObservedContainer[], answers = true) => ({
  engine: { name: "the Kubernetes API server" } satisfies Pick<AgentEngine, "name">,
  runtime: { ping: async () => answers, list: async () => containers },
});

const dirs: string[] = [];
const opened: StateStores[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function stateWith(rows: Record<string, string>, adopt?: "lost" | "restored"): StateStores {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-adopt-"));
  dirs.push(dir);
  const state = openState(dir);
  opened.push(state);
  for (const [agent, containerId] of Object.entries(rows)) state.inventory.record(agent, { containerId, spec: spec(agent), imageId: null, stopped: false });
  if (adopt) state.meta.set(ADOPT_META, adopt);
  return state;
}

describe("adoption through the Runtime port, on an engine without a read-back", () => {
  test("a restored backup: what it recorded is kept, what is gone is dropped, what was made after it is left to the planner; the flag is cleared", async () => {
    const state = stateWith({ kept: "uid-kept", gone: "uid-gone", remade: "uid-old" }, "restored");
    const { engine, runtime } = withoutReadBack([workload("kept", "uid-kept"), workload("remade", "uid-new")]);
    const report = await adoptIfPending(state, engine, runtime, silent);
    assert.deepEqual(report, { mode: "restored", adopted: [], forgotten: ["gone"], skipped: [{ agent: "remade", container: "ruriko-abc-remade" }] });
    assert.deepEqual(
      state.inventory.list().map((e) => [e.agent, e.containerId]),
      [["kept", "uid-kept"], ["remade", "uid-old"]],
      "the row of a workload made after the backup stays as the backup has it: the planner sees the workload as replaced behind Ruriko's back",
    );
    assert.equal(state.meta.get(ADOPT_META), undefined, "done: the next start does not adopt again");
    assert.deepEqual(state.audit.forTarget(`instance/${state.instance}`).map((e) => e.action), ["state.restored"]);

    // What docs/operations.md says follows: the kept one is left alone, the one made after the backup is recreated once as drift.
    const plan = (agent: string, id: string) => planAgent({ agent, desired: { manifest: manifest(agent), spec: spec(agent) }, observed: [workload(agent, id)], inventory: state.inventory.get(agent)! }).changes;
    assert.deepEqual(plan("kept", "uid-kept"), []);
    assert.deepEqual(plan("remade", "uid-new").map((c) => [c.type, c.reason, c.drift]), [["recreate", "container was replaced behind Ruriko's back: recreate", true]]);
  });

  test("a lost database: a container that cannot be read back refuses the adoption, by name, and the flag stays for the next start", async () => {
    const state = stateWith({}, "lost");
    const { engine, runtime } = withoutReadBack([workload("newsbot", "uid-1")]);
    await assert.rejects(adoptIfPending(state, engine, runtime, silent), (error: Error) => {
      assert.ok(error instanceof AdoptionError);
      assert.match(error.message, /cannot adopt ruriko-abc-newsbot \(agent newsbot\) of instance \w+: Ruriko cannot read back from this engine/);
      return true;
    });
    assert.equal(state.meta.get(ADOPT_META), "lost");
    assert.deepEqual(state.inventory.list(), []);
  });

  test("a lost database with nothing on the engine needs no read-back: done", async () => {
    const state = stateWith({}, "lost");
    const { engine, runtime } = withoutReadBack([]);
    assert.deepEqual(await adoptIfPending(state, engine, runtime, silent), { mode: "lost", adopted: [], forgotten: [], skipped: [] });
    assert.equal(state.meta.get(ADOPT_META), undefined);
  });

  test("an engine that does not answer: serve does not start, the engine is named, the flag stays", async () => {
    const state = stateWith({ kept: "uid-kept" }, "restored");
    const { engine, runtime } = withoutReadBack([workload("kept", "uid-kept")], false);
    await assert.rejects(adoptIfPending(state, engine, runtime, silent), /a restored backup\), but the Kubernetes API server does not answer; start again once it does/);
    assert.equal(state.meta.get(ADOPT_META), "restored");
  });

  test("no flag: the engine is not asked", async () => {
    const state = stateWith({ kept: "uid-kept" });
    const never = async (): Promise<never> => assert.fail("the engine was asked");
    assert.equal(await adoptIfPending(state, { name: "the Kubernetes API server" }, { ping: never, list: never }, silent), undefined);
  });
});

describe("a lost database is refused naming what the chosen engine holds", () => {
  /** A state directory whose database was emptied: its instance-id is the evidence. */
  function lostStateDir(): { dir: string; instance: string } {
    const dir = mkdtempSync(join(tmpdir(), "ruriko-lost-"));
    dirs.push(dir);
    const state = openState(dir);
    const instance = state.instance;
    state.close();
    truncateSync(join(dir, STATE_DB_FILE), 0);
    return { dir, instance };
  }

  test("listed through the engine's runtime, for the instance the state directory names; without a read-back, adoption is not offered", async () => {
    const { dir, instance } = lostStateDir();
    const asked: string[] = [];
    const engine: AgentEngine = {
      name: "the Kubernetes API server",
      open: (i) => {
        asked.push(i);
        return { runtime: { ping: async () => true, list: async () => [workload("newsbot", "uid-1")] }, where: "in namespace agents of the Kubernetes cluster https://k8s.example:6443" };
      },
    };
    const health = new StorageHealth(join(dir, STATE_DB_FILE));
    await assert.rejects(openServeState({ stateDir: dir, adoptOrphans: false, engine, health }), (error: Error) => {
      assert.match(error.message, new RegExp(`Containers of instance ${instance} in namespace agents of the Kubernetes cluster https://k8s.example:6443: ruriko-abc-newsbot \\(agent newsbot, running, ruriko/gitai:0.1\\)\\.`));
      assert.match(error.message, /Restore a backup \(ruriko restore FILE\): what instance \S+ left on this engine cannot be adopted \(its containers cannot be read back\)\./);
      assert.doesNotMatch(error.message, /with `ruriko serve --adopt-orphans`/, "no offer the engine cannot keep");
      return true;
    });
    assert.deepEqual(asked, [instance]);
  });

  test("an engine whose runtime reads its containers back is offered --adopt-orphans", async () => {
    const { dir, instance } = lostStateDir();
    const engine: AgentEngine = {
      name: "the Kubernetes API server",
      open: () => ({ runtime: { ping: async () => true, list: async () => [workload("newsbot", "uid-1")], readBack: () => Promise.reject(new Error("not read in a refusal")) }, where: "in namespace agents" }),
    };
    const health = new StorageHealth(join(dir, STATE_DB_FILE));
    await assert.rejects(openServeState({ stateDir: dir, adoptOrphans: false, engine, health }), new RegExp(`take over what instance ${instance} left on the engine with \`ruriko serve --adopt-orphans\``));
  });

  test("an engine that cannot be reached (or configured) is named, and the refusal still stands", async () => {
    const engine: AgentEngine = {
      name: "the Kubernetes API server",
      open: () => {
        throw new Error("no Kubernetes cluster: give --kubeconfig");
      },
    };
    assert.equal(await describeContainers(engine, "abc"), "Whether containers of instance abc run is unknown: the Kubernetes API server did not answer (no Kubernetes cluster: give --kubeconfig)");
    const listFails: AgentEngine = { name: "the Docker engine", open: () => ({ runtime: { ping: async () => false, list: () => Promise.reject(new Error("connect ENOENT")) }, where: "on this Docker host" }) };
    assert.equal(await describeContainers(listFails, "abc"), "Whether containers of instance abc run on this Docker host is unknown: the Docker engine did not answer (connect ENOENT)");
  });
});
