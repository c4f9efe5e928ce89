import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AgentManifest, ApprovalPolicyManifest } from "../../../src/api/generated/types.ts";
import { requirementFor } from "../../../src/approvals/policy.ts";
import { proposalOf } from "../../../src/controller/changes.ts";
import { containerSpecFor } from "../../../src/controller/container-spec.ts";
import { approvedImage, describeImageMove, type ImageObservation } from "../../../src/controller/image-move.ts";
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

function world(m: AgentManifest, image: ImageObservation | undefined, over: Partial<ObservedContainer> = {}, imageId: string | null = ID_A) {
  const spec = containerSpecFor(m, "r1");
  const inventory: InventoryEntry = { agent: "a1", containerId: "c1", specDigest: spec.specDigest, spec, imageId, stopped: false, revision: "r1", createdAt: "", updatedAt: "" };
  const current: ObservedContainer = { id: "c1", name: "ruriko-x-a1", agent: "a1", image: IMAGE, imageId: ID_A, state: "running", exitCode: 0, oomKilled: false, specDigest: spec.specDigest, revision: "r1", ...over };
  return { agent: "a1", desired: { manifest: m, spec }, observed: [current], inventory, ...(image ? { image } : {}) };
}

const moved: ImageObservation = { reference: IMAGE, running: { id: ID_A, digest: DIGEST_A, present: true }, resolved: { id: ID_B, digest: DIGEST_B } };
/** The move, where the image the agent ran is gone from the engine (pruned). */
const movedAndGone: ImageObservation = { ...moved, running: { ...moved.running, present: false } };

describe("a moved tag", () => {
  test("is a recreate of the image field, from the running image to the resolved one", () => {
    const [change, ...rest] = planAgent(world(manifest(), moved)).changes;
    assert.equal(rest.length, 0);
    assert.equal(change!.type, "recreate");
    assert.equal(change!.reason, `image ${IMAGE} moved: digest sha256:${"c3".repeat(6)} → sha256:${"d4".repeat(6)}`);
    assert.deepEqual(change!.fields, ["image"]);
    assert.equal(change!.drift, false);
    assert.deepEqual([change!.fromDigest, change!.toDigest], [`image:${ID_A}`, `image:${ID_B}`]);
    assert.equal(change!.type === "recreate" && change!.imageId, ID_B, "made from exactly the image approved, whatever the tag names by then");
  });

  test("says image ids when the registry digests are not both known (an image built here)", () => {
    assert.equal(describeImageMove({ reference: "ruriko/gitai:dev", running: { id: ID_A, present: true }, resolved: { id: ID_B, digest: DIGEST_B } }), `image ruriko/gitai:dev moved: image id sha256:${"a1".repeat(6)} → sha256:${"b2".repeat(6)}`);
  });

  test("is nothing when the reference resolves to the running image, or the observation is about another container or reference", () => {
    assert.deepEqual(planAgent(world(manifest(), undefined)).changes, []);
    assert.deepEqual(planAgent(world(manifest(), { ...moved, resolved: moved.running })).changes, []);
    assert.deepEqual(planAgent(world(manifest(), moved, { imageId: ID_B }, null)).changes, [], "the container already runs the resolved image");
    assert.deepEqual(planAgent(world(manifest(), { ...moved, reference: "127.0.0.1:5000/agent:v2" })).changes, []);
  });

  test("waits behind a start: a stopped-by-crash agent is started first, the move comes next", () => {
    const plan = planAgent(world(manifest(), moved, { state: "exited", exitCode: 1 }));
    assert.deepEqual(plan.changes.map((c) => c.type), ["start"]);
    assert.deepEqual(plan.deferred.map((c) => [c.type, c.fromDigest, c.toDigest]), [["recreate", `image:${ID_A}`, `image:${ID_B}`]], "gated meanwhile: its request is kept");
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

describe("the image the agent is approved to run", () => {
  const heal = (image: ImageObservation | undefined, drift: "heal" | "report" = "heal") => {
    const w = world(manifest({ drift }), image);
    return planAgent({ ...w, observed: [] });
  };
  const changed = (image: ImageObservation | undefined) => {
    const w = world(manifest(), image);
    const next = manifest({ resources: { memory: "256Mi" } });
    return planAgent({ ...w, desired: { manifest: next, spec: containerSpecFor(next, "r2") } });
  };

  test("is the one Ruriko last made the container from, else the one the container runs, while the reference is the same", () => {
    const spec = containerSpecFor(manifest(), "r1");
    const container = { imageId: ID_B };
    assert.equal(approvedImage(IMAGE, container, { spec, imageId: ID_A }), ID_A);
    assert.equal(approvedImage(IMAGE, container, { spec, imageId: null }), ID_B, "an inventory row from before the record");
    assert.equal(approvedImage(IMAGE, undefined, { spec, imageId: ID_A }), ID_A, "the container is gone");
    assert.equal(approvedImage("127.0.0.1:5000/agent:v2", container, { spec, imageId: ID_A }), undefined, "a new reference is a change of its own");
    assert.equal(approvedImage(IMAGE, container, undefined), undefined, "nothing Ruriko made (no record of an approval)");
    assert.equal(approvedImage(IMAGE, {}, { spec, imageId: null }), undefined, "the engine cannot tell (Kubernetes)");
  });

  test("a container removed while a moved tag waits for approval is made again from the approved image: the move still waits", () => {
    const [change, ...rest] = heal(moved).changes;
    assert.equal(rest.length, 0);
    assert.deepEqual([change!.type, change!.drift, change!.fields, change!.reason], ["create", true, [], "container was removed behind Ruriko's back: recreate"]);
    assert.equal(change!.type === "create" && change!.imageId, ID_A);
    assert.equal(heal(undefined).changes[0]!.type === "create" && (heal(undefined).changes[0] as { imageId?: string }).imageId, ID_A, "pinned when nothing moved too");
    assert.deepEqual(heal(moved).deferred.map((c) => [c.type, c.fields, c.fromDigest, c.toDigest]), [["recreate", ["image"], `image:${ID_A}`, `image:${ID_B}`]], "the move, deferred behind the heal, keeps its request");
    assert.deepEqual(heal(undefined).deferred, []);
  });

  test("when that image is gone from the engine, the heal carries the move: a gated change of the image, bound to the image it goes to", () => {
    const [change] = heal(movedAndGone).changes;
    assert.equal(change!.type, "create");
    assert.deepEqual([change!.drift, change!.operation, change!.fields], [false, "update", ["image"]]);
    assert.match(change!.reason, /^container was removed behind Ruriko's back: recreate; image \S+ moved: digest sha256:c3c3\S* → sha256:d4d4\S* \(the image it ran is no longer on this host\)$/);
    assert.equal(change!.type === "create" && change!.imageId, ID_B);
    const spec = containerSpecFor(manifest(), "r1");
    assert.deepEqual([change!.fromDigest, change!.toDigest], [`${spec.specDigest}+image:${ID_A}`, `${spec.specDigest}+image:${ID_B}`]);
    const policy = { apiVersion: "ruriko.dev/v1alpha1", kind: "ApprovalPolicy", metadata: { name: "default" }, spec: { room: "!a:localhost", approvers: ["@alice:localhost"], rules: [{ match: { kind: "Agent", operation: "update", fields: ["image"] }, require: "approval" }] } } as ApprovalPolicyManifest;
    assert.equal(requirementFor(proposalOf(change!).subject, [policy]).required, true, "a drift repair would go without approval: this one does not");
  });

  test("with drift: report, a removed container is reported, move or not", () => {
    const plan = heal(movedAndGone, "report");
    assert.deepEqual(plan.changes, []);
    assert.deepEqual(plan.reported.map((r) => r.message), ["container was removed behind Ruriko's back: recreate"]);
  });

  test("another field's change made while a moved tag waits runs the approved image: the move is not slipped in with it", () => {
    const [change, ...rest] = changed(moved).changes;
    assert.equal(rest.length, 0);
    assert.deepEqual([change!.type, change!.fields], ["recreate", ["resources"]]);
    assert.equal(change!.type === "recreate" && change!.imageId, ID_A);
    assert.deepEqual(changed(moved).deferred.map((c) => c.toDigest), [`image:${ID_B}`]);
    assert.deepEqual(changed(movedAndGone).deferred, [], "carried by the change itself");
    const [folded] = changed(movedAndGone).changes;
    assert.deepEqual(folded!.fields, ["resources", "image"]);
    assert.equal(folded!.type === "recreate" && folded!.imageId, ID_B);
  });

  test("a new reference is not pinned: its image is what the change is about", () => {
    const w = world(manifest(), moved);
    const next = manifest({ image: "127.0.0.1:5000/agent:v2" });
    const [change] = planAgent({ ...w, desired: { manifest: next, spec: containerSpecFor(next, "r2") } }).changes;
    assert.equal(change!.type === "recreate" && change!.imageId, undefined);
  });
});
