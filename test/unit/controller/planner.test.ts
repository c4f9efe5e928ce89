import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AgentManifest } from "../../../src/api/generated/types.ts";
import { containerSpecFor } from "../../../src/controller/container-spec.ts";
import { stringify } from "yaml";
import type { DesiredAgent, DesiredBinding, DesiredGosuto } from "../../../src/controller/agent-config.ts";
import { ABSENT, proposalOf } from "../../../src/controller/changes.ts";
import type { AppliedConfig } from "../../../src/store/applied-config-store.ts";
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
  return { agent: manifest.metadata.name, containerId, specDigest: spec.specDigest, spec, imageId: null, stopped: false, revision: "r1", createdAt: "", updatedAt: "" };
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

describe("planner: what the agent holds inside", () => {
  const m = agent();
  const spec = containerSpecFor(m, "r1");
  const running = { desired: desired(m), observed: [container({ specDigest: spec.specDigest })], inventory: inventoryOf(m) };
  const gosuto = (digest: string, specFields: Record<string, unknown>, name = "newsbot"): DesiredGosuto => ({ name, digest, yaml: stringify({ apiVersion: "ruriko.dev/v1alpha1", kind: "Gosuto", metadata: { name }, spec: specFields }), spec: specFields, source: "file-g" });
  const binding = (digest: string, secret = "openai-key"): DesiredBinding => ({ binding: "newsbot-openai", secret, env: "OPENAI_API_KEY", digest, source: "file-b" });
  const nothing: AppliedConfig = { gosuto: null, matrixUserId: null, grants: [] };
  const config = (desiredPart: Partial<DesiredAgent>, applied: AppliedConfig) => planAgent({ agent: "newsbot", ...running, desired: { ...running.desired, ...desiredPart }, applied }).changes;

  test("a first Gosuto is a Gosuto create that sets its fields; an edit is an update naming the fields changed", () => {
    const first = config({ gosuto: gosuto("d1", { persona: { model: "x" }, capabilities: [{ name: "all", allow: true }] }) }, nothing);
    assert.deepEqual(first.map((c) => [c.type, c.kind, c.object, c.operation, c.fields, c.fromDigest, c.toDigest, c.source]), [["gosuto", "Gosuto", "newsbot", "create", ["capabilities", "persona"], ABSENT, "d1", "file-g"]]);
    const applied: AppliedConfig = { ...nothing, gosuto: { name: "newsbot", digest: "d1", yaml: gosuto("d1", { persona: { model: "x" } }).yaml } };
    const edit = config({ gosuto: gosuto("d2", { persona: { model: "x" }, trust: { allowedSenders: ["*"] } }) }, applied);
    assert.deepEqual(edit.map((c) => [c.type, c.operation, c.fields, c.reason]), [["gosuto", "update", ["trust"], "trust changed"]]);
    assert.deepEqual(config({ gosuto: gosuto("d1", { persona: { model: "x" } }) }, applied), [], "applied already: nothing to do, whatever the agent reports");
  });

  test("a Gosuto applied before Ruriko kept its text: every field counts as changed", () => {
    const edit = config({ gosuto: gosuto("d2", { persona: { model: "x" } }) }, { ...nothing, gosuto: { name: null, digest: "d1", yaml: null } });
    assert.deepEqual(edit.map((c) => [c.operation, c.fields]), [["update", ["persona"]]]);
  });

  test("grants: a new binding, a changed one; revokes: a binding gone; re-added after a revoke it is a new grant", () => {
    const b1 = binding("b1");
    assert.deepEqual(config({ bindings: [b1] }, nothing).map((c) => [c.type, c.kind, c.object, c.operation, c.fromDigest, c.toDigest]), [["grant", "SecretBinding", "newsbot-openai", "grant", ABSENT, "b1"]]);
    const granted: AppliedConfig = { ...nothing, grants: [{ binding: "newsbot-openai", secret: "openai-key", env: "OPENAI_API_KEY", digest: "b1", approvalId: "r1" }] };
    assert.deepEqual(config({ bindings: [b1] }, granted), []);
    assert.deepEqual(config({ bindings: [binding("b2", "other-key")] }, granted).map((c) => [c.type, c.fromDigest, c.toDigest]), [["grant", "b1", "b2"]]);
    assert.deepEqual(config({ bindings: [] }, granted).map((c) => [c.type, c.operation, c.fromDigest, c.toDigest, c.reason]), [["revoke", "revoke", "b1", ABSENT, "revoke secret openai-key from agent newsbot"]]);
    // After the revoke was applied, the grant row is gone: the same binding back is a grant again.
    assert.deepEqual(config({ bindings: [b1] }, nothing).map((c) => [c.type, c.fromDigest]), [["grant", ABSENT]]);
  });

  test("a Matrix identity change is an Agent update of field matrix; one not known yet (account being made) is no change", () => {
    const ch = config({ matrixUserId: "@newsbot:hs" }, nothing);
    assert.deepEqual(ch.map((c) => [c.type, c.kind, c.operation, c.fields, c.fromDigest, c.toDigest]), [["identity", "Agent", "update", ["matrix"], ABSENT, "matrix:@newsbot:hs"]]);
    assert.deepEqual(config({ matrixUserId: undefined }, { ...nothing, matrixUserId: "@old:hs" }), []);
    assert.deepEqual(config({ matrixUserId: null }, { ...nothing, matrixUserId: "@old:hs" }).map((c) => [c.type, c.toDigest]), [["identity", ABSENT]]);
  });

  test("an agent no longer desired has no config changes: its removal covers them", () => {
    const removal = planAgent({ agent: "newsbot", observed: running.observed, inventory: running.inventory, applied: { ...nothing, grants: [{ binding: "b", secret: "s", env: null, digest: "b1", approvalId: null }] } });
    assert.deepEqual(removal.changes.map((c) => c.type), ["remove"]);
  });

  test("the gate sees each change with its object, and a Gosuto's summary names the agent", () => {
    const [g] = config({ gosuto: gosuto("d1", {}) }, nothing);
    const p = proposalOf(g!);
    assert.deepEqual([p.binding.objectKey, p.subject.kind, p.summary, p.sourceDigest], ["Gosuto/newsbot", "Gosuto", "Gosuto/newsbot for agent newsbot: first applied", "file-g"]);
  });
});

describe("planner: nothing waiting for approval slips in", () => {
  test("a container gone while an update waits is put back as applied, not as the manifests now ask", () => {
    const applied = agent();
    const next = agent({ image: "ruriko/gitai:evil" });
    for (const containerId of ["c1", null]) {
      const p = plan({ desired: desired(next), observed: [], inventory: inventoryOf(applied, containerId) });
      assert.deepEqual(p.changes.map((c) => [c.type, c.type === "create" ? c.spec.image : null, c.drift, c.toDigest]), [["create", "ruriko/gitai:0.1", containerId !== null, containerSpecFor(applied, "r1").specDigest]]);
    }
  });

  test("an agent Ruriko stopped is started again by a gated change of state, not as a crash repair", () => {
    const m = agent();
    const spec = containerSpecFor(m, "r1");
    const stopped = { ...inventoryOf(m), stopped: true };
    const p = plan({ desired: desired(m), observed: [container({ specDigest: spec.specDigest, state: "exited", exitCode: 143 })], inventory: stopped });
    assert.deepEqual(p.changes.map((c) => [c.type, c.operation, c.fields, c.drift, c.reason]), [["start", "start", ["state"], false, "spec.state is Running: start"]]);
    const crashed = plan({ desired: desired(m), observed: [container({ specDigest: spec.specDigest, state: "exited", exitCode: 137 })], inventory: inventoryOf(m) });
    assert.deepEqual(crashed.changes.map((c) => [c.type, c.drift]), [["start", true]]);
  });
});
