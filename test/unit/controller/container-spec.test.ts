import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { digestOf } from "../../../src/api/digest.ts";
import type { AgentManifest } from "../../../src/api/generated/types.ts";
import {
  ACP_PORT,
  appliedHostPort,
  containerSpecFor,
  describeSpecChange,
  expectedHostPort,
  HOST_PORT_RANGE,
  hostPortCandidates,
  preferredHostPort,
} from "../../../src/controller/container-spec.ts";
import { networkModeOf } from "../../../src/runtime/runtime.ts";
import { planAgent } from "../../../src/controller/planner.ts";
import type { InventoryEntry } from "../../../src/store/inventory-store.ts";

function agent(spec: Partial<AgentManifest["spec"]> = {}, name = "newsbot"): AgentManifest {
  return { apiVersion: "ruriko.dev/v1alpha1", kind: "Agent", metadata: { name }, spec: { image: "ruriko/gitai:0.1", gosuto: name, state: "Running", drift: "heal", ...spec } } as AgentManifest;
}

describe("container spec: agent network", () => {
  test("bridge is the default, and its digest is the one bridge specs always had", () => {
    const m = agent();
    const spec = containerSpecFor(m, "r1");
    assert.deepEqual(containerSpecFor(m, "r1", { network: "bridge" }), spec);
    assert.equal(spec.network, undefined, "a bridge spec carries no network field");
    assert.equal(networkModeOf(spec), "bridge");
    assert.equal(spec.controlPort, ACP_PORT);
    // Pinned: a change here would recreate every bridge agent on upgrade.
    assert.equal(spec.specDigest, digestOf({ image: "ruriko/gitai:0.1", env: {}, pidsLimit: 256, controlPort: ACP_PORT }));
  });

  test("host mode carries the mode and the chosen port, in the spec and in its digest", () => {
    const m = agent();
    const bridge = containerSpecFor(m, "r1");
    const host = containerSpecFor(m, "r1", { network: "host", port: 23456 });
    assert.equal(host.network, "host");
    assert.equal(host.controlPort, 23456);
    assert.notEqual(host.specDigest, bridge.specDigest);
    assert.notEqual(containerSpecFor(m, "r1", { network: "host", port: 23457 }).specDigest, host.specDigest, "another port, another digest");
    assert.equal(containerSpecFor(m, "r2", { network: "host", port: 23456 }).specDigest, host.specDigest, "the revision is not in the digest");
    assert.equal(appliedHostPort(host), 23456);
    assert.equal(appliedHostPort(bridge), undefined);
    assert.equal(appliedHostPort(undefined), undefined);
  });

  test("a mode switch is described as one, field network", () => {
    const m = agent();
    const bridge = containerSpecFor(m, "r1");
    const host = containerSpecFor(m, "r1", { network: "host", port: 23456 });
    assert.deepEqual(describeSpecChange(bridge, host), { fields: ["network"], text: "agent network bridge → host" });
    assert.deepEqual(describeSpecChange(host, bridge), { fields: ["network"], text: "agent network host → bridge" });
    const moved = containerSpecFor(m, "r1", { network: "host", port: 23457 });
    assert.deepEqual(describeSpecChange(host, moved), { fields: ["controlPort"], text: "control port 23456 → 23457" });
    const both = containerSpecFor(agent({ image: "ruriko/gitai:0.2" }), "r2", { network: "host", port: 23456 });
    assert.deepEqual(describeSpecChange(bridge, both), { fields: ["image", "network"], text: "image changed ruriko/gitai:0.1 → ruriko/gitai:0.2; agent network bridge → host" });
  });

  test("the planner recreates on a mode switch, naming it, and not when the applied port is kept", () => {
    const m = agent();
    const entry = (spec: ReturnType<typeof containerSpecFor>): InventoryEntry => ({ agent: "newsbot", containerId: "c1", specDigest: spec.specDigest, spec, imageId: null, stopped: false, revision: "r1", createdAt: "", updatedAt: "" });
    const container = (specDigest: string) => ({ id: "c1", name: "ruriko-x-newsbot", agent: "newsbot", image: "ruriko/gitai:0.1", state: "running" as const, exitCode: 0, oomKilled: false, revision: "r1", specDigest });
    const bridge = containerSpecFor(m, "r1");
    const host = containerSpecFor(m, "r2", { network: "host", port: 24001 });
    const switched = planAgent({ agent: "newsbot", desired: { manifest: m, spec: host }, observed: [container(bridge.specDigest)], inventory: entry(bridge) });
    assert.deepEqual(switched.changes.map((c) => [c.type, c.reason, c.fields, c.drift]), [["recreate", "agent network bridge → host", ["network"], false]]);
    const kept = planAgent({ agent: "newsbot", desired: { manifest: m, spec: containerSpecFor(m, "r3", { network: "host", port: 24001 }) }, observed: [container(host.specDigest)], inventory: entry(host) });
    assert.deepEqual(kept.changes, []);
  });

  test("host port candidates: in range, every port once, starting at the agent's preferred port", () => {
    const ports = [...hostPortCandidates("newsbot")];
    assert.equal(ports.length, HOST_PORT_RANGE.count);
    assert.equal(new Set(ports).size, HOST_PORT_RANGE.count);
    assert.ok(ports.every((p) => p >= HOST_PORT_RANGE.first && p < HOST_PORT_RANGE.first + HOST_PORT_RANGE.count));
    assert.ok(HOST_PORT_RANGE.first + HOST_PORT_RANGE.count <= 32768, "below Linux's ephemeral range");
    assert.equal(ports[0], preferredHostPort("newsbot"));
    assert.equal(preferredHostPort("newsbot"), preferredHostPort("newsbot"), "the same name, the same port");
    assert.notEqual(preferredHostPort("newsbot"), preferredHostPort("weatherbot"));
  });

  test("the port plan expects: the applied one, else the first candidate no other agent holds", () => {
    const m = agent();
    const preferred = preferredHostPort("newsbot");
    assert.equal(expectedHostPort("newsbot", []), preferred);
    const other = { agent: "other", spec: containerSpecFor(agent({}, "other"), "r1", { network: "host", port: preferred }) };
    assert.equal(expectedHostPort("newsbot", [other]), [...hostPortCandidates("newsbot")][1]);
    const own = { agent: "newsbot", spec: containerSpecFor(m, "r1", { network: "host", port: 21234 }) };
    assert.equal(expectedHostPort("newsbot", [other, own]), 21234);
    const bridgeOwn = { agent: "newsbot", spec: containerSpecFor(m, "r1") };
    assert.equal(expectedHostPort("newsbot", [bridgeOwn]), preferred, "a bridge spec records no host port");
  });
});
