/** Taking over containers the state database does not know: the spec read back exactly, and what is adopted or dropped. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AgentManifest } from "../../../src/api/generated/types.ts";
import { containerSpecFor } from "../../../src/controller/container-spec.ts";
import { planAdoption, specFromEngine } from "../../../src/controller/engine-adoption.ts";
import type { ContainerFacts } from "../../../src/runtime/runtime.ts";
import { LABELS, type ContainerSpec, type ObservedContainer } from "../../../src/runtime/runtime.ts";
import type { InventoryEntry } from "../../../src/store/inventory-store.ts";

const IMAGE_ENV = { PATH: "/usr/local/bin:/usr/bin", NODE_ENV: "production" };

const manifest = (spec: Partial<AgentManifest["spec"]>): AgentManifest =>
  ({ apiVersion: "ruriko.dev/v1alpha1", kind: "Agent", metadata: { name: "newsbot" }, spec: { image: "ruriko/gitai:0.1", gosuto: "newsbot", ...spec } }) as AgentManifest;

/** What the engine shows of a container docker-runtime.ts created from `spec`. */
function factsOf(spec: ContainerSpec): ContainerFacts {
  const host = spec.network === "host";
  return {
    id: "c1",
    image: spec.image,
    env: { ...IMAGE_ENV, ...spec.env, RURIKO_AGENT: spec.agent },
    imageEnv: IMAGE_ENV,
    memoryBytes: spec.memoryBytes ?? 0,
    nanoCpus: spec.cpus === undefined ? 0 : Math.round(spec.cpus * 1e9),
    pidsLimit: spec.pidsLimit,
    networkMode: host ? "host" : "ruriko-abc",
    exposedPorts: host ? [] : [`${spec.controlPort}/tcp`, "9999/tcp"],
    labels: { [LABELS.specDigest]: spec.specDigest, [LABELS.revision]: spec.revision, ...(host ? { [LABELS.controlPort]: String(spec.controlPort) } : {}) },
  };
}

describe("specFromEngine", () => {
  const cases: Array<[string, ContainerSpec]> = [
    ["defaults", containerSpecFor(manifest({}), "r1")],
    ["env, memory, cpus, pids", containerSpecFor(manifest({ env: { TZ: "UTC", LOG: "debug" }, resources: { memory: "512Mi", cpus: 0.5, pids: 64 } }), "r2")],
    ["an env variable set to the value the image sets", containerSpecFor(manifest({ env: { NODE_ENV: "production", TZ: "UTC" } }), "r3")],
    ["host networking", containerSpecFor(manifest({ env: { TZ: "UTC" } }), "r4", { network: "host", port: 23456 })],
  ];
  for (const [what, spec] of cases) {
    test(`reads back the spec exactly: ${what}`, () => {
      assert.deepEqual(specFromEngine("newsbot", factsOf(spec)), spec);
    });
  }

  test("a container whose configuration does not give its label's digest is not read back", () => {
    const spec = containerSpecFor(manifest({ env: { TZ: "UTC" } }), "r1");
    assert.equal(specFromEngine("newsbot", { ...factsOf(spec), image: "ruriko/gitai:0.2" }), undefined, "image changed behind Ruriko's back");
    assert.equal(specFromEngine("newsbot", { ...factsOf(spec), labels: {} }), undefined, "no digest label");
  });
});

const observed = (agent: string, id: string, startedAt: string, state: ObservedContainer["state"] = "running"): ObservedContainer => ({
  id,
  name: `ruriko-abc-${agent}`,
  agent,
  image: "ruriko/gitai:0.1",
  state,
  exitCode: 0,
  oomKilled: false,
  specDigest: "sha256:x",
  revision: "r1",
  startedAt,
});
const entry = (agent: string, containerId: string | null): InventoryEntry => ({
  agent,
  containerId,
  specDigest: "sha256:x",
  spec: {} as ContainerSpec,
  imageId: null,
  stopped: false,
  revision: "r1",
  createdAt: "t",
  updatedAt: "t",
});

describe("planAdoption", () => {
  const engine = [observed("a", "a-old", "2024-01-01"), observed("a", "a-new", "2024-02-01"), observed("b", "b1", "2024-01-01"), observed("c", "c2", "2024-01-01")];

  test("a lost database: the newest container of every agent (the others are left to the planner as extras)", () => {
    assert.deepEqual(planAdoption("lost", engine, []), { adopt: [engine[1], engine[2], engine[3]], forget: [] });
  });

  test("a restored backup: only what the backup does not match; rows whose container is gone are dropped", () => {
    const inventory = [entry("a", "a-new"), entry("b", "b0"), entry("d", "d1"), entry("e", null)];
    // a matches; b was recreated after the backup; c was created after it; d and e are gone.
    assert.deepEqual(planAdoption("restored", engine, inventory), { adopt: [engine[2], engine[3]], forget: ["d", "e"] });
  });
});
