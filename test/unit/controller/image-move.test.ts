import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AgentManifest, ApprovalPolicyManifest } from "../../../src/api/generated/types.ts";
import { requirementFor } from "../../../src/approvals/policy.ts";
import { proposalOf } from "../../../src/controller/changes.ts";
import { containerSpecFor } from "../../../src/controller/container-spec.ts";
import { describeImageMove, isImageMove, type ImageObservation } from "../../../src/controller/image-move.ts";
import { planAgent } from "../../../src/controller/planner.ts";
import type { ObservedContainer } from "../../../src/runtime/runtime.ts";
import type { InventoryEntry } from "../../../src/store/inventory-store.ts";

const IMAGE = "127.0.0.1:5000/agent:v1";
const ID_A = `sha256:${"a1".repeat(32)}`;
const ID_B = `sha256:${"b2".repeat(32)}`;
const DIGEST_A = `sha256:${"c3".repeat(32)}`;
const DIGEST_B = `sha256:${"d4".repeat(32)}`;

const manifest = (spec: Partial<AgentManifest["spec"]> = {}): AgentManifest =>
  ({ apiVersion: "ruriko.dev/v1alpha1", kind: "Agent", metadata: { name: "a1" }, spec: { image: IMAGE, gosuto: "a1", state: "Running", drift: "heal", ...spec } }) as AgentManifest;

function world(m: AgentManifest, image: ImageObservation | undefined, over: Partial<ObservedContainer> = {}) {
  const spec = containerSpecFor(m, "r1");
  const inventory: InventoryEntry = { agent: "a1", containerId: "c1", specDigest: spec.specDigest, spec, stopped: false, revision: "r1", createdAt: "", updatedAt: "" };
  const current: ObservedContainer = { id: "c1", name: "ruriko-x-a1", agent: "a1", image: IMAGE, imageId: ID_A, state: "running", exitCode: 0, oomKilled: false, specDigest: spec.specDigest, revision: "r1", ...over };
  return { agent: "a1", desired: { manifest: m, spec }, observed: [current], inventory, ...(image ? { image } : {}) };
}

const moved: ImageObservation = { reference: IMAGE, running: { id: ID_A, digest: DIGEST_A }, resolved: { id: ID_B, digest: DIGEST_B } };

describe("a moved tag", () => {
  test("is a recreate of the image field, from the running image to the resolved one", () => {
    const [change, ...rest] = planAgent(world(manifest(), moved)).changes;
    assert.equal(rest.length, 0);
    assert.equal(change!.type, "recreate");
    assert.equal(change!.reason, `image ${IMAGE} moved: digest sha256:${"c3".repeat(6)} → sha256:${"d4".repeat(6)}`);
    assert.deepEqual(change!.fields, ["image"]);
    assert.equal(change!.drift, false);
    assert.deepEqual([change!.fromDigest, change!.toDigest], [`image:${ID_A}`, `image:${ID_B}`]);
    assert.equal(isImageMove(change as Parameters<typeof isImageMove>[0]), true);
  });

  test("says image ids when the registry digests are not both known (an image built here)", () => {
    assert.equal(describeImageMove({ reference: "ruriko/gitai:dev", running: { id: ID_A }, resolved: { id: ID_B, digest: DIGEST_B } }), `image ruriko/gitai:dev moved: image id sha256:${"a1".repeat(6)} → sha256:${"b2".repeat(6)}`);
  });

  test("is nothing when the reference resolves to the running image, or the observation is about another container or reference", () => {
    assert.deepEqual(planAgent(world(manifest(), undefined)).changes, []);
    assert.deepEqual(planAgent(world(manifest(), { ...moved, resolved: moved.running })).changes, []);
    assert.deepEqual(planAgent(world(manifest(), moved, { imageId: ID_B })).changes, [], "the container already runs the resolved image");
    assert.deepEqual(planAgent(world(manifest(), { ...moved, reference: "127.0.0.1:5000/agent:v2" })).changes, []);
  });

  test("waits behind a start: a stopped-by-crash agent is started first, the move comes next", () => {
    const changes = planAgent(world(manifest(), moved, { state: "exited", exitCode: 1 })).changes;
    assert.deepEqual(changes.map((c) => c.type), ["start"]);
  });

  test("keeps a Stopped agent stopped: recreated, not started", () => {
    const changes = planAgent(world(manifest({ state: "Stopped" }), moved, { state: "exited" })).changes;
    assert.equal(changes.length, 1);
    assert.equal(changes[0]!.type === "recreate" && changes[0]!.start, false);
  });

  test("is parked by a rule on the image field, like any image change", () => {
    const policy = { apiVersion: "ruriko.dev/v1alpha1", kind: "ApprovalPolicy", metadata: { name: "default" }, spec: { room: "!a:localhost", approvers: ["@alice:localhost"], rules: [{ match: { kind: "Agent", fields: ["image"] }, require: "approval" }] } } as ApprovalPolicyManifest;
    const [change] = planAgent(world(manifest(), moved)).changes;
    const decision = requirementFor(proposalOf(change!).subject, [policy]);
    assert.equal(decision.required, true);
    assert.match(decision.why, /fields image/);
  });

  test("the pull policy is outside the container's digest: changing it alone plans nothing", () => {
    assert.equal(containerSpecFor(manifest({ imagePullPolicy: "Always" }), "r1").specDigest, containerSpecFor(manifest(), "r1").specDigest);
    assert.equal(containerSpecFor(manifest({ imagePullPolicy: "Always" }), "r1").imagePullPolicy, "Always");
    assert.equal(containerSpecFor(manifest({ imagePullPolicy: "IfNotPresent" }), "r1").imagePullPolicy, undefined, "the default is left out");
  });

  test("another tag of the same image is a change of the spec, as before", () => {
    const w = world(manifest(), undefined);
    const next = manifest({ image: "127.0.0.1:5000/agent:v2" });
    const changes = planAgent({ ...w, desired: { manifest: next, spec: containerSpecFor(next, "r2") } }).changes;
    assert.equal(changes[0]!.reason, `image changed ${IMAGE} → 127.0.0.1:5000/agent:v2`);
    assert.equal(changes[0]!.toDigest, containerSpecFor(next, "r2").specDigest);
  });
});
