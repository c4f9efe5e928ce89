import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Docker from "dockerode";
import { approvalsDecide } from "../../src/cli/approvals.ts";
import { LABELS } from "../../src/runtime/runtime.ts";
import { isAwaitingApproval, isReady, startTestController, waitFor, TEST_AGENT_IMAGE, type TestController } from "../helpers/controller-harness.ts";
import { writeTree } from "../helpers/manifest-tree.ts";

const GOSUTO = (name: string) => `apiVersion: ruriko.dev/v1alpha1
kind: Gosuto
metadata: {name: ${name}}
spec:
  capabilities:
    - {name: deny-all, mcp: "*", tool: "*", allow: false}
`;
const AGENT = (name: string, extra = "") => `apiVersion: ruriko.dev/v1alpha1
kind: Agent
metadata: {name: ${name}}
spec:
  image: ${TEST_AGENT_IMAGE}
  gosuto: ${name}
  resources: {memory: 128Mi, cpus: 0.5}
${extra}`;
const POLICY = `apiVersion: ruriko.dev/v1alpha1
kind: ApprovalPolicy
metadata: {name: default}
spec:
  room: "!approvals:localhost"
  approvers: ["@alice:localhost", "@bob:localhost"]
  quorum: 1
  ttl: 1h
  rules:
    - match: {kind: Agent, operation: update, fields: [image]}
      require: approval
`;

function agentFiles(names: string[], extra: Record<string, string> = {}): Record<string, string> {
  const files: Record<string, string> = { "policies/default.yaml": POLICY };
  for (const n of names) {
    files[`gosutos/${n}.yaml`] = GOSUTO(n);
    files[`agents/${n}.yaml`] = AGENT(n, extra[n] ?? "");
  }
  return files;
}

describe("controller against a real Docker engine", () => {
  let h: TestController;
  let dir: string;
  before(async () => {
    h = await startTestController();
    dir = writeTree(agentFiles(["alpha", "beta"]));
  });
  after(async () => {
    await h?.stop();
  });

  test("converges from nothing: every agent Ready with a hardened, labelled container", async () => {
    const event = await h.offer(dir);
    assert.equal(event.outcome, "applied");
    for (const agent of ["alpha", "beta"]) await h.waitForStatus(agent, isReady, "Ready");
    const containers = await h.containersOf();
    assert.equal(containers.length, 2);
    for (const c of containers) {
      assert.equal(c.State, "running");
      assert.equal(c.Labels[LABELS.managedBy], "ruriko");
      const info = await h.docker.getContainer(c.Id).inspect();
      assert.equal(info.HostConfig.ReadonlyRootfs, true);
      assert.deepEqual(info.HostConfig.CapDrop, ["ALL"]);
      assert.equal(info.HostConfig.Memory, 128 * 1024 * 1024);
      assert.equal(info.Config.User, "65532:65532");
    }
    const audit = h.state.audit.tail(50).filter((e) => e.action === "agent.create");
    assert.equal(audit.length, 2);
  });

  test("reconciling again does nothing", async () => {
    const before = (await h.containersOf()).map((c) => c.Id).sort();
    const auditBefore = h.state.audit.tail(1)[0]!.id;
    h.controller.queue.add("alpha", "again");
    h.controller.queue.add("beta", "again");
    await h.controller.queue.idle();
    assert.deepEqual((await h.containersOf()).map((c) => c.Id).sort(), before);
    assert.equal(h.state.audit.tail(1)[0]!.id, auditBefore);
  });

  test("editing one agent recreates only that agent", async () => {
    const [betaBefore] = await h.containersOf("beta");
    const [alphaBefore] = await h.containersOf("alpha");
    writeFileSync(join(dir, "agents/alpha.yaml"), AGENT("alpha", "  env: {TZ: Europe/Paris}\n"));
    await h.offer(dir);
    await h.waitForStatus("alpha", (s) => isReady(s) && s!.containerId !== alphaBefore!.Id, "recreated and Ready");
    const [alphaAfter] = await h.containersOf("alpha");
    const [betaAfter] = await h.containersOf("beta");
    assert.notEqual(alphaAfter!.Id, alphaBefore!.Id);
    assert.equal(betaAfter!.Id, betaBefore!.Id);
    const info = await h.docker.getContainer(alphaAfter!.Id).inspect();
    assert.ok(info.Config.Env.includes("TZ=Europe/Paris"));
    const entry = h.state.audit.tail(20).find((e) => e.action === "agent.recreate");
    assert.equal(entry?.payload.reason, "env changed: TZ");
  });

  test("a container stopped, then one removed behind Ruriko's back, is healed", async () => {
    const [beta] = await h.containersOf("beta");
    const stoppedAt = new Date().toISOString();
    await h.docker.getContainer(beta!.Id).stop({ t: 1 });
    await waitFor(() => h.state.audit.tail(20).some((e) => e.action === "agent.start" && e.target === "Agent/beta" && e.ts > stoppedAt), "beta restarted");
    await h.waitForStatus("beta", (s) => isReady(s) && s!.containerState === "running", "Ready again");
    const [restarted] = await h.containersOf("beta");
    assert.equal(restarted!.Id, beta!.Id);
    assert.equal(restarted!.State, "running");

    await h.docker.getContainer(beta!.Id).remove({ force: true });
    assert.ok(h.state.audit.tail(20).some((e) => e.action === "agent.start" && e.ts > stoppedAt && String(e.payload.reason).startsWith("container exited with code")));
    const removedAt = new Date().toISOString();
    await h.waitForStatus("beta", (s) => isReady(s) && s!.containerId !== beta!.Id, "recreated and Ready");
    const [recreated] = await h.containersOf("beta");
    assert.equal(recreated!.State, "running");
    // A forced removal kills the container first: the reconcile may see it exited (start, which finds it gone
    // and replaces it) or already gone (create). On a loaded engine the replacement itself may fail once (the
    // name is still held while Docker finishes the removal); Ruriko has then recorded that no container is its
    // own, and the next reconcile creates one as "missing". Either way a new container, and the audit says why.
    const healed = h.state.audit.tail(40).find((e) => e.target === "Agent/beta" && e.ts > removedAt && (e.action === "agent.create" || (e.action === "agent.start" && e.payload.replaced === beta!.Id)));
    assert.ok(healed, "the audit records the new container");
    if (healed.action === "agent.create") assert.match(String(healed.payload.reason), /behind Ruriko's back|container missing/);
  });

  test("a stopped container the engine refuses to start again is replaced, same spec, same data volume", async () => {
    // drift: report while the container is broken, so the break does not race a restart.
    writeFileSync(join(dir, "agents/beta.yaml"), AGENT("beta", "  drift: report\n"));
    await h.offer(dir);
    await h.waitForStatus("beta", (s) => isReady(s) && s!.observedRevision === h.controller.snapshot!.revision, "beta on drift: report");
    const [beta] = await h.containersOf("beta");
    await h.docker.getContainer(beta!.Id).stop({ t: 1 });
    await h.waitForStatus("beta", (s) => s?.conditions.some((c) => c.type === "Ready" && c.reason === "DriftReported") ?? false, "the stop reported");
    // As after an engine restart that left a stale task behind: this container cannot be started again
    // (here: attached to a network that is gone).
    const gone = await h.docker.createNetwork({ Name: `gone-${h.instance}` });
    await gone.connect({ Container: beta!.Id });
    await gone.remove();
    await assert.rejects(h.docker.getContainer(beta!.Id).start(), /not found/);

    const healAt = new Date().toISOString();
    writeFileSync(join(dir, "agents/beta.yaml"), AGENT("beta"));
    await h.offer(dir);
    await h.waitForStatus("beta", (s) => isReady(s) && s!.containerId !== beta!.Id && s!.containerState === "running", "beta replaced and Ready", 90_000);
    const start = h.state.audit.tail(30).find((e) => e.action === "agent.start" && e.target === "Agent/beta" && e.ts > healAt && e.result === "ok");
    assert.equal(start?.payload.replaced, beta!.Id, "the start replaced the container it could not start");
    assert.match(String(start?.payload.startError), /not found/);
    const [replaced] = await h.containersOf("beta");
    assert.equal(replaced!.Mounts.find((m) => m.Destination === "/data")?.Name, beta!.Mounts.find((m) => m.Destination === "/data")?.Name, "the same data volume");
  });

  test("a risky change waits for approval, and a newer commit supersedes the request", async () => {
    writeFileSync(join(dir, "agents/beta.yaml"), AGENT("beta", "  env: {STAGE: one}\n  imagePullPolicy: Never\n").replace(`image: ${TEST_AGENT_IMAGE}`, "image: ruriko/gitai:missing-1"));
    await h.offer(dir, "rev-one");
    const parked = await h.waitForStatus("beta", isAwaitingApproval, "AwaitingApproval");
    const first = h.state.approvals.list({ agent: "beta", status: "pending" });
    assert.equal(first.length, 1);
    assert.match(first[0]!.summary, /image changed ruriko\/gitai:dev → ruriko\/gitai:missing-1/);
    assert.match(parked!.conditions.find((c) => c.type === "AwaitingApproval")!.message, new RegExp(first[0]!.id));

    writeFileSync(join(dir, "agents/beta.yaml"), AGENT("beta", "  imagePullPolicy: Never\n").replace(`image: ${TEST_AGENT_IMAGE}`, "image: ruriko/gitai:missing-2"));
    await h.offer(dir, "rev-two");
    await h.waitForStatus("beta", (s) => isAwaitingApproval(s) && !s!.conditions.some((c) => c.message.includes(first[0]!.id)), "a new request");
    assert.equal(h.state.approvals.get(first[0]!.id)!.status, "superseded");
    const second = h.state.approvals.list({ agent: "beta", status: "pending" });
    assert.equal(second.length, 1);
    assert.equal(second[0]!.revision, "rev-two");
    // The running container was left alone while the change waited.
    const [beta] = await h.containersOf("beta");
    assert.equal(beta!.State, "running");
    assert.equal(beta!.Image, TEST_AGENT_IMAGE);

    // Approved, the change meets a missing image: a clear status error, not a crash.
    assert.equal(approvalsDecide(h.stateDir, second[0]!.id, "approve", {}), 0);
    const failed = await h.waitForStatus("beta", (s) => !!s?.lastError?.includes("not present on this host"), "image-missing error");
    assert.match(failed!.lastError!, /image ruriko\/gitai:missing-2 is not present on this host/);
  });

  test("removing an agent waits for approval, then happens after `approvals approve`", async () => {
    writeFileSync(join(dir, "agents/beta.yaml"), AGENT("beta"));
    await h.offer(dir, "rev-three");
    await h.waitForStatus("beta", isReady, "beta back to Ready");
    rmSync(join(dir, "agents/beta.yaml"));
    await h.offer(dir, "rev-four");
    await h.waitForStatus("beta", isAwaitingApproval, "removal parked");
    const [request] = h.state.approvals.list({ agent: "beta", status: "pending" });
    assert.equal(request!.operation, "delete");
    assert.equal((await h.containersOf("beta"))[0]!.State, "running");

    assert.equal(approvalsDecide(h.stateDir, request!.id, "approve", {}), 0);
    await h.waitForStatus("beta", (s) => s === undefined, "status gone after removal");
    assert.equal((await h.containersOf("beta")).length, 0);
    assert.equal(h.state.inventory.get("beta"), undefined);
    assert.equal(h.state.approvals.get(request!.id)!.status, "applied");
    const decided = h.state.audit.byTrace(request!.traceId).map((e) => e.action);
    assert.ok(decided.includes("approval.requested") && decided.includes("approval.approved") && decided.includes("agent.remove"), decided.join(","));
  });

  test("an invalid revision changes nothing running and its error is recorded", async () => {
    const before = (await h.containersOf()).map((c) => c.Id);
    writeFileSync(join(dir, "agents/alpha.yaml"), AGENT("alpha").replace("memory: 128Mi", "memory: lots"));
    const event = await h.offer(dir, "rev-bad");
    assert.equal(event.outcome, "rejected");
    const latest = h.state.revisions.latest()!;
    assert.equal(latest.outcome, "rejected");
    assert.equal(latest.errors[0]!.file, "agents/alpha.yaml");
    assert.equal(latest.errors[0]!.path, "spec.resources.memory");
    await h.controller.queue.idle();
    assert.deepEqual((await h.containersOf()).map((c) => c.Id), before);
    assert.equal(h.controller.snapshot!.revision, "rev-four");
  });

  test("an empty desired state prunes nothing", async () => {
    const empty = writeTree({ "README.md": "nothing here" });
    const event = await h.offer(empty, "rev-empty");
    assert.equal(event.outcome, "rejected");
    assert.match(event.outcome === "rejected" ? event.errors[0]!.message : "", /refusing to prune them all/);
    await h.controller.queue.idle();
    assert.equal((await h.containersOf("alpha")).length, 1);
  });

  test("containers Ruriko did not create are never touched", async () => {
    const docker = new Docker();
    const foreign = await docker.createContainer({
      Image: TEST_AGENT_IMAGE,
      name: `foreign-${h.instance}`,
      Labels: { [LABELS.agent]: "alpha", [LABELS.managedBy]: "ruriko", [LABELS.instance]: "someone-else" },
    });
    try {
      h.controller.queue.add("alpha", "foreign-check");
      await h.controller.queue.idle();
      const info = await foreign.inspect();
      assert.equal(info.State.Status, "created");
      assert.equal((await h.containersOf("alpha")).length, 1);
    } finally {
      await foreign.remove({ force: true });
    }
  });
});
