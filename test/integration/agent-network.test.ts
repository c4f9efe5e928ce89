/**
 * Agent networking chosen by the operator: host mode on real Docker with real Gitai. Each agent shares the
 * host's network namespace and serves ACP on its own 127.0.0.1 port, chosen once and kept; a create parked for
 * approval keeps the port it was planned with; switching the controller back to bridge recreates the agents,
 * saying why.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pino } from "pino";
import { AcpClient } from "../../src/acp/client.ts";
import { loadSnapshotFromDirectory } from "../../src/api/load.ts";
import { Controller } from "../../src/controller/controller.ts";
import { AGENT_NETWORK_META, HOST_PORT_RANGE } from "../../src/controller/container-spec.ts";
import { planFromState } from "../../src/controller/plan-from-state.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { LABELS } from "../../src/runtime/runtime.ts";
import { isAwaitingApproval, isReady, startTestController, TEST_AGENT_IMAGE, type TestController } from "../helpers/controller-harness.ts";
import { writeTree } from "../helpers/manifest-tree.ts";

const GOSUTO = (name: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec:\n  persona: {systemPrompt: "be brief"}\n`;
const AGENT = (name: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec:\n  image: ${TEST_AGENT_IMAGE}\n  gosuto: ${name}\n  resources: {memory: 128Mi, cpus: 0.5}\n`;
/** Only the creation of gamma waits for people: the port it is planned with must not move meanwhile. */
const POLICY = `apiVersion: ruriko.dev/v1alpha1
kind: ApprovalPolicy
metadata: {name: default}
spec:
  room: "!approvals:localhost"
  approvers: ["@alice:localhost"]
  rules:
    - match: {kind: Agent, operation: create, names: [gamma]}
      require: approval
`;

const agentFile = (name: string) => `${GOSUTO(name)}---\n${AGENT(name)}`;

describe("agent network: host mode (real Docker, real Gitai)", () => {
  let h: TestController;
  let dir: string;
  let bridge: Controller | undefined;
  const acp = new AcpClient({ retries: 1 });

  const containerOf = async (agent: string) => {
    const [c] = await h.containersOf(agent);
    assert.ok(c, `${agent} has a container`);
    return h.docker.getContainer(c.Id).inspect();
  };
  const instanceNetworks = async () => (await h.docker.listNetworks({ filters: JSON.stringify({ label: [`${LABELS.instance}=${h.instance}`] }) })).map((n) => n.Name);
  const portOf = async (agent: string) => Number((await containerOf(agent)).Config.Labels[LABELS.controlPort]);
  const agentActions = (sinceId: number) => h.state.audit.tail(200).filter((e) => e.id > sinceId && e.action.startsWith("agent.") && e.action !== "agent.token.issued");

  before(async () => {
    h = await startTestController({ agentNetwork: "host", agentPollMs: 1000 });
    dir = writeTree({ "policy.yaml": POLICY, "alpha.yaml": agentFile("alpha") });
  });
  after(async () => {
    await bridge?.stop();
    await h?.stop();
  });

  test("an agent becomes Ready on its own 127.0.0.1 port, sharing the host's network, hardened as ever", async () => {
    await h.offer(dir);
    const ready = await h.waitForStatus("alpha", isReady, "Ready");
    const info = await containerOf("alpha");
    assert.equal(info.Id, ready!.containerId);
    const port = Number(info.Config.Labels[LABELS.controlPort]);
    assert.ok(port >= HOST_PORT_RANGE.first && port < HOST_PORT_RANGE.first + HOST_PORT_RANGE.count, `port ${port} in the host port range`);

    assert.equal(info.HostConfig.NetworkMode, "host");
    assert.ok(!info.HostConfig.PortBindings || Object.keys(info.HostConfig.PortBindings).length === 0, "no port bindings");
    assert.deepEqual(Object.keys(info.NetworkSettings.Networks), ["host"], "not on the instance's bridge network");
    assert.deepEqual(await instanceNetworks(), [], "no bridge network made for nothing: each takes one of the engine's few address pools");
    assert.deepEqual(info.Config.Cmd, ["--host", "127.0.0.1", "--port", String(port)]);
    // Hardening does not depend on the network mode.
    assert.equal(info.Config.User, "65532:65532");
    assert.equal(info.HostConfig.ReadonlyRootfs, true);
    assert.deepEqual(info.HostConfig.CapDrop, ["ALL"]);
    assert.deepEqual(info.HostConfig.SecurityOpt, ["no-new-privileges"]);
    assert.equal(info.HostConfig.PidsLimit, 256);
    assert.equal(info.HostConfig.Memory, 128 * 1024 * 1024);
    assert.equal(info.HostConfig.NanoCpus, 0.5e9);
    assert.ok(info.Mounts.some((m) => m.Type === "volume" && m.Destination === "/data"));

    const entry = h.state.inventory.get("alpha")!;
    assert.equal(entry.spec.network, "host");
    assert.equal(entry.spec.controlPort, port);
    assert.equal(info.Config.Labels[LABELS.specDigest], entry.specDigest);

    // Ruriko's own ACP channel, on the loopback port: the agent answers with the Gosuto it was given.
    const status = await acp.status({ agent: "alpha", baseUrl: `http://127.0.0.1:${port}`, token: h.vault.tokens.get("alpha")! }, "test");
    assert.equal(status.agent, "alpha");
    assert.equal(status.gosutoDigest, ready!.gosutoDigest);
    const observed = await h.runtime.list("alpha");
    assert.equal(observed[0]!.controlHostPort, port, "the runtime reports the port from the label");
  });

  test("reconciling again, and a new revision that changes nothing, recreate nothing: the port is kept", async () => {
    const before = (await containerOf("alpha")).Id;
    const port = await portOf("alpha");
    const since = h.state.audit.tail(1)[0]!.id;
    h.controller.queue.add("alpha", "again");
    await h.controller.queue.idle();
    await h.offer(dir, "r-again");
    await h.controller.queue.idle();
    assert.equal((await containerOf("alpha")).Id, before);
    assert.equal(await portOf("alpha"), port);
    assert.deepEqual(agentActions(since), []);
    assert.ok(isReady(h.state.status.get("alpha")));
    // `ruriko plan` reads the mode serve runs with from the state, and plans the port serve gave: nothing to do.
    h.state.meta.set(AGENT_NETWORK_META, "host");
    const plan = planFromState(await loadSnapshotFromDirectory(dir), await h.runtime.list(), h.state);
    assert.deepEqual(plan.items.filter((i) => i.agent === "alpha"), []);
    h.state.meta.set(AGENT_NETWORK_META, "bridge");
    const asBridge = planFromState(await loadSnapshotFromDirectory(dir), await h.runtime.list(), h.state);
    assert.deepEqual(asBridge.items.filter((i) => i.agent === "alpha").map((i) => [i.action, i.reason]), [["recreate", "agent network host → bridge"]]);
  });

  test("a second agent gets a port of its own", async () => {
    writeFileSync(join(dir, "beta.yaml"), agentFile("beta"));
    await h.offer(dir);
    await h.waitForStatus("beta", isReady, "Ready");
    const [alpha, beta] = [await portOf("alpha"), await portOf("beta")];
    assert.notEqual(alpha, beta);
    const status = await acp.status({ agent: "beta", baseUrl: `http://127.0.0.1:${beta}`, token: h.vault.tokens.get("beta")! }, "test");
    assert.equal(status.agent, "beta");
    assert.ok(isReady(h.state.status.get("alpha")), "alpha untouched");
  });

  test("a create parked for approval keeps the port it was planned with until it is carried out", async () => {
    writeFileSync(join(dir, "gamma.yaml"), agentFile("gamma"));
    await h.offer(dir);
    await h.waitForStatus("gamma", isAwaitingApproval, "the create parked");
    const [request, ...more] = h.state.approvals.list({ agent: "gamma" });
    assert.equal(more.length, 0);
    for (let i = 0; i < 3; i++) {
      h.controller.queue.add("gamma", `again-${i}`);
      await h.controller.queue.idle();
    }
    // The same change each time: the request is not superseded by a re-plan with another port.
    assert.deepEqual(h.state.approvals.list({ agent: "gamma" }).map((r) => [r.id, r.status]), [[request!.id, "pending"]]);
    h.state.approvals.vote(request!.id, { approver: "cli:test", decision: "approve", source: "cli", override: true });
    h.controller.flushStateChanges();
    await h.waitForStatus("gamma", isReady, "Ready once approved");
    const info = await containerOf("gamma");
    assert.equal(info.Config.Labels[LABELS.specDigest], request!.toDigest, "created exactly as approved");
    assert.ok(![await portOf("alpha"), await portOf("beta")].includes(await portOf("gamma")));
  });

  test("switching the controller to bridge recreates every agent, saying the network changed", async () => {
    const before = new Map<string, string>();
    for (const agent of ["alpha", "beta", "gamma"]) before.set(agent, (await containerOf(agent)).Id);
    const since = h.state.audit.tail(1)[0]!.id;
    await h.controller.stop();
    // Same state, same engine, the operator's option changed: `serve` restarted without --agent-network host. The
    // runtime is the stopped controller's (stopWaiting: it pulls no more), which holds here: the image is present.
    const logger = createLogger({ level: "debug", pretty: false, destination: pino.destination({ dest: h.logFile, sync: true }) });
    bridge = new Controller({ runtime: h.runtime, stores: h.state, vault: h.vault, stateDir: h.stateDir, logger, concurrency: 4, backoffBaseMs: 200, backoffMaxMs: 2000 });
    bridge.start();
    bridge.offer(await loadSnapshotFromDirectory(dir));
    for (const agent of ["alpha", "beta", "gamma"]) {
      await h.waitForStatus(agent, (s) => isReady(s) && s!.containerId !== before.get(agent), `${agent} recreated on the bridge and Ready`);
    }
    const recreated = agentActions(since).filter((e) => e.action === "agent.recreate");
    assert.deepEqual(recreated.map((e) => [e.target, e.payload.reason]).sort(), [
      ["Agent/alpha", "agent network host → bridge"],
      ["Agent/beta", "agent network host → bridge"],
      ["Agent/gamma", "agent network host → bridge"],
    ]);
    for (const agent of ["alpha", "beta", "gamma"]) {
      const info = await containerOf(agent);
      assert.equal(info.HostConfig.NetworkMode, `ruriko-${h.instance}`);
      assert.equal(info.HostConfig.PortBindings?.["8765/tcp"]?.[0]?.HostIp, "127.0.0.1");
      assert.equal(info.Config.Labels[LABELS.controlPort], undefined);
      assert.equal(h.state.inventory.get(agent)!.spec.network, undefined);
    }
    assert.deepEqual(await instanceNetworks(), [`ruriko-${h.instance}`], "the bridge network, made when the first bridged agent needed it");
  });
});
