/**
 * The three agent network modes, where tests cannot go with real containers: these tests may address only
 * loopback, so the named network (`network:NAME`, reached by container name) is covered here, pure — the ACP
 * address, the URLs agents are handed, the container spec and the engine's create request, and adoption.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { digestOf } from "../../../src/api/digest.ts";
import type { AgentManifest } from "../../../src/api/generated/types.ts";
import { acpAddressOf, agentHomeserverOf, agentSideUrl, isLoopbackHost, namedNetworkCheck, parseAgentNetwork, recordedAgentNetwork } from "../../../src/controller/agent-network.ts";
import { ACP_PORT, containerSpecFor, describeSpecChange } from "../../../src/controller/container-spec.ts";
import { specFromEngine } from "../../../src/controller/engine-adoption.ts";
import { planAgent } from "../../../src/controller/planner.ts";
import type { ContainerFacts } from "../../../src/runtime/runtime.ts";
import { containerCreateOptions } from "../../../src/runtime/docker-runtime.ts";
import { LABELS, networkModeOf, type AgentNetworkMode } from "../../../src/runtime/runtime.ts";
import type { InventoryEntry } from "../../../src/store/inventory-store.ts";

const agent = (spec: Partial<AgentManifest["spec"]> = {}): AgentManifest =>
  ({ apiVersion: "ruriko.dev/v1alpha1", kind: "Agent", metadata: { name: "newsbot" }, spec: { image: "ruriko/gitai:0.1", gosuto: "newsbot", state: "Running", drift: "heal", ...spec } }) as AgentManifest;

const NAMED: AgentNetworkMode = "network:ruriko-agents";
const parsed = (text: string) => parseAgentNetwork(text);

describe("--agent-network values", () => {
  test("bridge, host and network:NAME", () => {
    assert.deepEqual(parsed("bridge"), { ok: true, value: "bridge" });
    assert.deepEqual(parsed("host"), { ok: true, value: "host" });
    assert.deepEqual(parsed("network:ruriko-agents"), { ok: true, value: "network:ruriko-agents" });
    assert.deepEqual(parsed("network:ops_agents.1"), { ok: true, value: "network:ops_agents.1" });
  });

  test("anything else is refused with what was expected", () => {
    assert.match((parsed("overlay") as { problem: string }).problem, /expected bridge, host or network:NAME, got "overlay"/);
    assert.match((parsed("network:") as { problem: string }).problem, /needs a Docker network name/);
    assert.match((parsed("network:-x") as { problem: string }).problem, /needs a Docker network name/);
    assert.match((parsed("network:a b") as { problem: string }).problem, /needs a Docker network name/);
    for (const builtin of ["bridge", "host", "none", "default"]) assert.match((parsed(`network:${builtin}`) as { problem: string }).problem, /Docker's own network/, builtin);
  });

  test("what a state database recorded: bridge when nothing or something unreadable", () => {
    assert.equal(recordedAgentNetwork(undefined), "bridge");
    assert.equal(recordedAgentNetwork("host"), "host");
    assert.equal(recordedAgentNetwork(NAMED), NAMED);
    assert.equal(recordedAgentNetwork("nonsense"), "bridge");
  });
});

describe("where Ruriko reaches an agent's ACP", () => {
  const container = { name: "ruriko-3f9a0c21-newsbot" };

  test("bridge: the port published on 127.0.0.1", () => {
    assert.deepEqual(acpAddressOf("bridge", { ...container, controlHostPort: 49153, network: "ruriko-3f9a0c21" }), { ok: true, value: "http://127.0.0.1:49153" });
    assert.deepEqual(acpAddressOf("bridge", { ...container, network: "ruriko-3f9a0c21" }), { ok: false, problem: "the container's control port is not published" });
  });

  test("host: the agent's own 127.0.0.1 port", () => {
    assert.deepEqual(acpAddressOf("host", { ...container, controlHostPort: 23456, network: "host" }), { ok: true, value: "http://127.0.0.1:23456" });
  });

  test("network:NAME: the container's name on that network, port 8765", () => {
    assert.deepEqual(acpAddressOf(NAMED, { ...container, network: "ruriko-agents" }), { ok: true, value: `http://ruriko-3f9a0c21-newsbot:${ACP_PORT}` });
    assert.deepEqual(acpAddressOf(NAMED, { ...container, network: "elsewhere" }), { ok: false, problem: "the container is not attached to network ruriko-agents (it is on elsewhere)" });
  });

  test("a container made in another mode is reached where it is until its recreate is carried out", () => {
    assert.deepEqual(acpAddressOf(NAMED, { ...container, controlHostPort: 49153, network: "ruriko-3f9a0c21" }), { ok: true, value: "http://127.0.0.1:49153" });
  });
});

describe("URLs as the agent sees them", () => {
  test("loopback addresses", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "localhost", "synapse.localhost", "[::1]", "::1", "0.0.0.0"]) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ["synapse", "10.0.0.1", "matrix.example.org", "127.example.org"]) assert.equal(isLoopbackHost(h), false, h);
  });

  test("host mode: a loopback URL means the same to the agent as to Ruriko", () => {
    assert.deepEqual(agentHomeserverOf("host", { matrixHomeserver: "http://127.0.0.1:8008" }), { url: "http://127.0.0.1:8008" });
    assert.deepEqual(agentSideUrl("host", "http://127.0.0.1:11434/v1", "the model base URL"), { url: "http://127.0.0.1:11434/v1" });
  });

  test("bridge and network:NAME: a loopback URL is the agent's own container, and says so", () => {
    for (const mode of ["bridge", NAMED] as const) {
      const seen = agentHomeserverOf(mode, { matrixHomeserver: "http://127.0.0.1:8008" })!;
      assert.equal(seen.url, "http://127.0.0.1:8008", "handed over unchanged");
      assert.match(seen.problem!, new RegExp(`is a loopback address: with --agent-network ${mode} an agent reaches its own container there.*set --agent-matrix-homeserver`));
      assert.match(agentSideUrl(mode, "http://localhost:11434/v1", "the model base URL").problem!, /^the model base URL http:\/\/localhost:11434\/v1 is a loopback address/);
    }
  });

  test("in a compose network Ruriko and the agents see the homeserver under one name", () => {
    assert.deepEqual(agentHomeserverOf(NAMED, { matrixHomeserver: "http://synapse:8008" }), { url: "http://synapse:8008" });
    assert.deepEqual(agentSideUrl(NAMED, "http://ollama:11434/v1", "the model base URL"), { url: "http://ollama:11434/v1" });
  });

  test("--agent-matrix-homeserver is what agents get, whatever Ruriko uses", () => {
    assert.deepEqual(agentHomeserverOf("bridge", { matrixHomeserver: "http://127.0.0.1:8008", agentMatrixHomeserver: "http://matrix.example.org" }), { url: "http://matrix.example.org" });
    assert.match(agentHomeserverOf("bridge", { matrixHomeserver: "http://synapse:8008", agentMatrixHomeserver: "http://127.0.0.1:8008" })!.problem!, /^--agent-matrix-homeserver http:\/\/127.0.0.1:8008 is a loopback address/);
    assert.equal(agentHomeserverOf("bridge", {}), undefined);
  });

  test("not a URL", () => {
    assert.deepEqual(agentSideUrl("bridge", "not a url", "the homeserver"), { url: "not a url", problem: 'the homeserver "not a url" is not a URL' });
  });
});

describe("the named network on Docker", () => {
  test("it must exist; Ruriko should be one of its containers", () => {
    assert.match(namedNetworkCheck("ruriko-agents", undefined, "abc").error!, /Docker has no network ruriko-agents/);
    assert.deepEqual(namedNetworkCheck("ruriko-agents", { Containers: { "0123456789abcdef": { Name: "compose-ruriko-1" } } }, "0123456789ab"), {});
    assert.deepEqual(namedNetworkCheck("ruriko-agents", { Containers: { "ffff": { Name: "ruriko" } } }, "ruriko"), {});
    assert.match(namedNetworkCheck("ruriko-agents", { Containers: {} }, "laptop").warning!, /does not appear among the containers attached to network ruriko-agents/);
    assert.match(namedNetworkCheck("ruriko-agents", { Containers: null }, "laptop").warning!, /must run in a container attached to it/);
  });
});

describe("container spec for network:NAME", () => {
  const m = agent();
  const named = containerSpecFor(m, "r1", { network: NAMED });

  test("the mode, its network's name and the ACP port are in the spec and its digest", () => {
    assert.equal(named.network, NAMED);
    assert.equal(named.controlPort, ACP_PORT);
    assert.equal(networkModeOf(named), NAMED);
    assert.equal(named.specDigest, digestOf({ image: "ruriko/gitai:0.1", env: {}, pidsLimit: 256, network: NAMED, controlPort: ACP_PORT }));
    assert.notEqual(named.specDigest, containerSpecFor(m, "r1").specDigest);
    assert.notEqual(containerSpecFor(m, "r1", { network: "network:other" }).specDigest, named.specDigest, "another network, another container");
  });

  test("a switch to it is a recreate, described with the flag's value", () => {
    const bridge = containerSpecFor(m, "r1");
    assert.deepEqual(describeSpecChange(bridge, named), { fields: ["network"], text: "agent network bridge → network:ruriko-agents" });
    assert.deepEqual(describeSpecChange(named, containerSpecFor(m, "r1", { network: "network:other" })), { fields: ["network"], text: "agent network network:ruriko-agents → network:other" });
    const entry: InventoryEntry = { agent: "newsbot", containerId: "c1", specDigest: bridge.specDigest, spec: bridge, imageId: null, stopped: false, revision: "r1", createdAt: "", updatedAt: "" };
    const container = { id: "c1", name: "ruriko-x-newsbot", agent: "newsbot", image: "ruriko/gitai:0.1", state: "running" as const, exitCode: 0, oomKilled: false, revision: "r1", specDigest: bridge.specDigest };
    const plan = planAgent({ agent: "newsbot", desired: { manifest: m, spec: named }, observed: [container], inventory: entry });
    assert.deepEqual(plan.changes.map((c) => [c.type, c.reason]), [["recreate", "agent network bridge → network:ruriko-agents"]]);
  });
});

describe("the engine's create request in each mode", () => {
  const ctx = { name: "ruriko-i1-newsbot", volume: "ruriko-i1-newsbot-data", volumeLabels: { [LABELS.agent]: "newsbot" }, labels: { [LABELS.agent]: "newsbot" }, bridgeNetwork: "ruriko-i1" };
  const m = agent({ resources: { memory: "128Mi", cpus: 0.5 } });

  test("network:NAME: attached to NAME only, the ACP port exposed but not published, Gitai's default command", () => {
    const options = containerCreateOptions(containerSpecFor(m, "r1", { network: NAMED }), ctx);
    assert.equal(options.HostConfig?.NetworkMode, "ruriko-agents");
    assert.deepEqual(options.NetworkingConfig, { EndpointsConfig: { "ruriko-agents": {} } });
    assert.equal(options.HostConfig?.PortBindings, undefined, "nothing published");
    assert.deepEqual(options.ExposedPorts, { "8765/tcp": {} });
    assert.equal(options.Cmd, undefined);
    assert.equal(options.name, "ruriko-i1-newsbot", "the name Ruriko reaches it by");
    assert.deepEqual(options.Labels, ctx.labels);
  });

  test("bridge: the instance's network, the ACP port published on 127.0.0.1", () => {
    const options = containerCreateOptions(containerSpecFor(m, "r1"), ctx);
    assert.equal(options.HostConfig?.NetworkMode, "ruriko-i1");
    assert.deepEqual(options.HostConfig?.PortBindings, { "8765/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] });
    assert.equal(options.NetworkingConfig, undefined);
  });

  test("host: the host's namespace, Gitai on its own 127.0.0.1 port, named in a label", () => {
    const options = containerCreateOptions(containerSpecFor(m, "r1", { network: "host", port: 23456 }), ctx);
    assert.equal(options.HostConfig?.NetworkMode, "host");
    assert.deepEqual(options.Cmd, ["--host", "127.0.0.1", "--port", "23456"]);
    assert.equal(options.Labels?.[LABELS.controlPort], "23456");
    assert.equal(options.HostConfig?.PortBindings, undefined);
  });

  test("hardened the same in every mode", () => {
    const hardening = (mode: Parameters<typeof containerSpecFor>[2]) => {
      const { HostConfig: h, User } = containerCreateOptions(containerSpecFor(m, "r1", mode), ctx);
      return { User, ro: h?.ReadonlyRootfs, cap: h?.CapDrop, sec: h?.SecurityOpt, pids: h?.PidsLimit, mem: h?.Memory, cpu: h?.NanoCpus, restart: h?.RestartPolicy };
    };
    const bridge = hardening({ network: "bridge" });
    assert.deepEqual(bridge, { User: "65532:65532", ro: true, cap: ["ALL"], sec: ["no-new-privileges"], pids: 256, mem: 128 * 1024 * 1024, cpu: 0.5e9, restart: { Name: "no" } });
    assert.deepEqual(hardening({ network: NAMED }), bridge);
    assert.deepEqual(hardening({ network: "host", port: 23456 }), bridge);
  });
});

describe("adoption reads a named-network container back", () => {
  test("its spec is found from what the engine shows", () => {
    const spec = containerSpecFor(agent({ env: { TZ: "UTC" } }), "r7", { network: NAMED });
    const facts: ContainerFacts = {
      id: "c1",
      image: spec.image,
      env: { TZ: "UTC", RURIKO_AGENT: "newsbot", NODE_ENV: "production" },
      imageEnv: { NODE_ENV: "production" },
      memoryBytes: 0,
      nanoCpus: 0,
      pidsLimit: 256,
      networkMode: "ruriko-agents",
      exposedPorts: ["8765/tcp"],
      labels: { [LABELS.specDigest]: spec.specDigest, [LABELS.revision]: "r7" },
    };
    assert.deepEqual(specFromEngine("newsbot", facts), { ...spec, revision: "r7" });
  });
});
