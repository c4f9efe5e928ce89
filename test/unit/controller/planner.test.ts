import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AgentManifest } from "../../../src/api/generated/types.ts";
import { containerSpecFor } from "../../../src/controller/container-spec.ts";
import { ABSENT } from "../../../src/controller/changes.ts";
import { planAgent, type AgentPlanInput } from "../../../src/controller/planner.ts";
import type { ObservedContainer } from "../../../src/runtime/runtime.ts";
import type { InventoryEntry } from "../../../src/store/inventory-store.ts";

function agent(spec: Partial<AgentManifest["spec"]> = {}, name = "newsbot"): AgentManifest {
  return { apiVersion: "ruriko.dev/v1alpha1", kind: "Agent", metadata: { name }, spec: { image: "ruriko/gitai:0.1", gosuto: name, state: "Running", drift: "heal", ...spec } } as AgentManifest;
}

function container(over: Partial<ObservedContainer> & { specDigest: string }): ObservedContainer {
  return { id: "c1", name: "ruriko-x-newsbot", agent: "newsbot", image: "ruriko/gitai:0.1", state: "running", exitCode: 0, oomKilled: false, revision: "r1", ...over };
}

function inventoryOf(manifest: AgentManifest, containerId: string | null = "c1"): InventoryEntry {
  const spec = containerSpecFor(manifest, "r1");
  return { agent: manifest.metadata.name, containerId, specDigest: spec.specDigest, spec, revision: "r1", createdAt: "", updatedAt: "" };
}

function plan(input: Omit<AgentPlanInput, "agent">) {
  return planAgent({ agent: "newsbot", ...input });
}

const desired = (m: AgentManifest) => ({ manifest: m, spec: containerSpecFor(m, "r2") });

describe("planner", () => {
  test("a new agent is created and started", () => {
    const m = agent();
    const p = plan({ desired: desired(m), observed: [] });
    assert.deepEqual(p.changes.map((a) => [a.type, a.reason, a.operation, a.drift]), [["create", "new agent: create", "create", false]]);
    assert.equal(p.changes[0]!.type === "create" && p.changes[0]!.start, true);
  });

  test("a converged agent needs nothing, whatever the revision", () => {
    const m = agent();
    const spec = containerSpecFor(m, "r1");
    const p = plan({ desired: desired(m), observed: [container({ specDigest: spec.specDigest })], inventory: inventoryOf(m) });
    assert.deepEqual(p.changes, []);
  });

  test("an image change recreates, with the change in words", () => {
    const old = agent();
    const next = agent({ image: "ruriko/gitai:0.2" });
    const p = plan({ desired: desired(next), observed: [container({ specDigest: containerSpecFor(old, "r1").specDigest })], inventory: inventoryOf(old) });
    assert.equal(p.changes.length, 1);
    const a = p.changes[0]!;
    assert.equal(a.type, "recreate");
    assert.equal(a.reason, "image changed ruriko/gitai:0.1 → ruriko/gitai:0.2");
    assert.deepEqual(a.fields, ["image"]);
    assert.equal(a.drift, false);
    assert.equal(a.fromDigest, containerSpecFor(old, "r1").specDigest);
    assert.equal(a.toDigest, containerSpecFor(next, "r2").specDigest);
  });

  test("resources and env changes are named", () => {
    const old = agent({ env: { TZ: "UTC" }, resources: { memory: "128Mi" } });
    const next = agent({ env: { TZ: "Europe/Paris", LANG: "C" }, resources: { memory: "256Mi" } });
    const p = plan({ desired: desired(next), observed: [container({ specDigest: containerSpecFor(old, "r1").specDigest })], inventory: inventoryOf(old) });
    assert.equal(p.changes[0]!.reason, "env changed: LANG, TZ; resources changed: memory 128Mi → 256Mi");
  });

  test("a state change to Stopped stops without recreating", () => {
    const m = agent({ state: "Stopped" });
    const p = plan({ desired: desired(m), observed: [container({ specDigest: containerSpecFor(m, "r1").specDigest })], inventory: inventoryOf(m) });
    assert.deepEqual(p.changes.map((a) => [a.type, a.reason]), [["stop", "spec.state is Stopped: stop"]]);
  });

  test("a crashed container is started again, with its exit code; an OOM kill says so", () => {
    const m = agent();
    const digest = containerSpecFor(m, "r1").specDigest;
    const crashed = plan({ desired: desired(m), observed: [container({ specDigest: digest, state: "exited", exitCode: 137 })], inventory: inventoryOf(m) });
    assert.deepEqual(crashed.changes.map((a) => [a.type, a.reason, a.drift]), [["start", "container exited with code 137: start", true]]);
    const oom = plan({ desired: desired(m), observed: [container({ specDigest: digest, state: "exited", exitCode: 137, oomKilled: true })], inventory: inventoryOf(m) });
    assert.match(oom.changes[0]!.reason, /out of memory/);
  });

  test("a container removed behind Ruriko's back is recreated as drift; with drift: report it is only reported", () => {
    const m = agent();
    const healed = plan({ desired: desired(m), observed: [], inventory: inventoryOf(m) });
    assert.deepEqual(healed.changes.map((a) => [a.type, a.drift, a.reason]), [["create", true, "container was removed behind Ruriko's back: recreate"]]);
    const reportOnly = agent({ drift: "report" });
    const reported = plan({ desired: desired(reportOnly), observed: [], inventory: inventoryOf(reportOnly) });
    assert.deepEqual(reported.changes, []);
    assert.deepEqual(reported.reported, [{ agent: "newsbot", message: "container was removed behind Ruriko's back: recreate" }]);
  });

  test("an interrupted create (inventory without container id) is a plain create, not drift", () => {
    const m = agent();
    const p = plan({ desired: desired(m), observed: [], inventory: inventoryOf(m, null) });
    assert.deepEqual(p.changes.map((a) => [a.type, a.drift, a.reason]), [["create", false, "container missing: create"]]);
  });

  test("an agent no longer desired is removed, bound to its applied digest", () => {
    const m = agent();
    const digest = containerSpecFor(m, "r1").specDigest;
    const p = plan({ observed: [container({ specDigest: digest })], inventory: inventoryOf(m) });
    assert.deepEqual(p.changes.map((a) => [a.type, a.operation, a.reason, a.fromDigest, a.toDigest]), [["remove", "delete", "not in desired state: remove", digest, ABSENT]]);
  });

  test("a second container for the same agent is removed", () => {
    const m = agent();
    const digest = containerSpecFor(m, "r1").specDigest;
    const p = plan({
      desired: desired(m),
      observed: [container({ specDigest: digest, startedAt: "2026-01-02" }), container({ id: "c0", name: "old", specDigest: digest, startedAt: "2026-01-01" })],
      inventory: inventoryOf(m),
    });
    assert.deepEqual(p.changes.map((a) => [a.type, a.type === "remove" ? a.containerId : null]), [["remove", "c0"]]);
  });

  test("planning is deterministic and the same input gives the same plan", () => {
    const m = agent({ image: "ruriko/gitai:0.3" });
    const input = { desired: desired(m), observed: [container({ specDigest: "sha256:old" })], inventory: inventoryOf(agent()) };
    assert.deepEqual(plan(input), plan(input));
  });
});
