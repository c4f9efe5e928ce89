/**
 * One conformance suite for every Runtime: the same controller, the same manifests, the same expectations, on
 * this host's Docker engine and on a real Kubernetes cluster (scripts/kubernetes/). Create and Ready, a Gosuto
 * applied without recreation, recreate on an image change, heal after the agent's process and then its workload
 * were removed behind Ruriko's back, data that outlives the agent's process, prune only what Ruriko owns,
 * removal only after approval, and no secret value in any object the engine holds.
 *
 * The Kubernetes half finds its cluster in RURIKO_TEST_KUBECONFIG (`bash scripts/kubernetes/start.sh` prints
 * one). Without it the half is skipped, except under CI=true, where it fails: CI must not pass without it.
 * RURIKO_TEST_RUNTIMES=docker|kubernetes runs one half only (development). On Kubernetes the runtime runs with
 * the credentials of the ServiceAccount that deploy/kubernetes/ruriko.yaml binds to its Role: the Role is proven
 * to be enough.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { KubeConfig, Watch, type V1Pod } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { AcpClient, type AcpEndpoint } from "../../src/acp/client.ts";
import type { AcpStatus } from "../../src/api/generated/types.ts";
import { loadSnapshotFromDirectory } from "../../src/api/load.ts";
import { approvalsDecide } from "../../src/cli/approvals.ts";
import { acpAddressOf } from "../../src/controller/agent-network.ts";
import { adoptEngineState } from "../../src/controller/engine-adoption.ts";
import { KubernetesRuntime } from "../../src/runtime/kubernetes-runtime.ts";
import type { Logger } from "../../src/observability/logger.ts";
import { LABELS, MANAGED_BY, type Runtime } from "../../src/runtime/runtime.ts";
import { openState } from "../../src/store/state.ts";
import { ensureAgentImage, isAwaitingApproval, isReady, startTestController, TEST_AGENT_IMAGE, waitFor, type TestController } from "../helpers/controller-harness.ts";
import { writeTree } from "../helpers/manifest-tree.ts";

const run = promisify(execFile);
const CANARY = "sk-canary-5f0c2e9a41d7";
const OTHER_IMAGE = "ruriko/gitai:conformance-b";
const ROOT = join(import.meta.dirname, "../..");

const gosuto = (name: string, prompt: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec:\n  persona: {systemPrompt: ${JSON.stringify(prompt)}}\n`;
const agent = (name: string, image = TEST_AGENT_IMAGE) =>
  `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec: {image: ${JSON.stringify(image)}, gosuto: ${name}, resources: {memory: 256Mi, cpus: 0.5}}\n`;
const binding = `apiVersion: ruriko.dev/v1alpha1\nkind: SecretBinding\nmetadata: {name: alpha-openai}\nspec: {agent: alpha, secret: openai-key, env: OPENAI_API_KEY}\n`;

/** What differs between engines: how the test reaches inside, goes behind Ruriko's back, and reads every object. */
interface Engine {
  name: string;
  /** Why this half cannot run here (skipped, or failed under CI); undefined when it can. */
  unavailable(): string | undefined;
  setup(): Promise<void>;
  /** `startTimeoutMs`: how long a start may wait for the engine to run the agent (where that is a wait). */
  makeRuntime?: (instance: string, logger: Logger, o?: { startTimeoutMs?: number }) => Runtime;
  /**
   * A memory size no node can give: an agent asking for it is never run, and its start waits for the engine until
   * its timeout. Where waiting on the engine is long (Kubernetes) and a stopping Ruriko must not wait it out.
   */
  unschedulableMemory?: string;
  /** Runs a Node.js script in the agent's Gitai container; its stdout. */
  exec(h: TestController, agentName: string, script: string): Promise<string>;
  /** The agent's process gone behind Ruriko's back: Docker: the container stopped; Kubernetes: the pod deleted. */
  killProcess(h: TestController, agentName: string): Promise<void>;
  /** The agent's container or workload deleted behind Ruriko's back. */
  deleteWorkload(h: TestController, agentName: string): Promise<void>;
  /** The workload's spec edited behind Ruriko's back (an env var added); absent where containers are immutable. */
  editWorkload?(h: TestController, agentName: string): Promise<void>;
  /** An object labelled like an agent's but of another instance; `present` says whether it is still there. */
  foreign(h: TestController, agentName: string): Promise<{ present(): Promise<boolean>; cleanup(): Promise<void> }>;
  /** Every object the engine holds for this instance, as text. */
  dumpAll(h: TestController): Promise<string>;
  /**
   * Every pod the cluster has made for the agent's workload since the suite began (by uid, from a watch), with
   * its Gitai container's restart count: how a create is shown to start the agent once. Kubernetes only.
   */
  podsOf?(h: TestController, agentName: string): Promise<Array<{ uid: string; restarts: number }>>;
  /** A runtime of this instance that reaches ACP through the API server's port-forward. Kubernetes only. */
  portForwardRuntime?(instance: string): KubernetesRuntime;
  teardown(): Promise<void>;
}

const docker: Engine = {
  name: "docker",
  unavailable: () => undefined,
  async setup() {},
  async exec(h, agentName, script) {
    const [c] = await h.runtime.list(agentName);
    return (await run("docker", ["exec", c!.name, "/usr/local/bin/node", "-e", script])).stdout;
  },
  async killProcess(h, agentName) {
    const [c] = await h.runtime.list(agentName);
    await h.docker.getContainer(c!.id).stop({ t: 1 });
  },
  async deleteWorkload(h, agentName) {
    const [c] = await h.runtime.list(agentName);
    await h.docker.getContainer(c!.id).remove({ force: true });
  },
  async foreign(h, agentName) {
    const c = await h.docker.createContainer({
      Image: TEST_AGENT_IMAGE,
      name: `foreign-${h.instance}`,
      Labels: { [LABELS.agent]: agentName, [LABELS.managedBy]: MANAGED_BY, [LABELS.instance]: `${h.instance}-other` },
    });
    return {
      present: () => c.inspect().then(() => true, () => false),
      cleanup: () => c.remove({ force: true }).catch(() => {}),
    };
  },
  async dumpAll(h) {
    const filters = JSON.stringify({ label: [`${LABELS.instance}=${h.instance}`] });
    const parts: string[] = [];
    for (const c of await h.docker.listContainers({ all: true, filters })) parts.push(JSON.stringify(await h.docker.getContainer(c.Id).inspect()));
    for (const v of (await h.docker.listVolumes({ filters })).Volumes ?? []) parts.push(JSON.stringify(v));
    return parts.join("\n");
  },
  async teardown() {},
};

function kubernetesEngine(): Engine {
  const kubeconfig = process.env.RURIKO_TEST_KUBECONFIG;
  const kubectlBin = process.env.RURIKO_TEST_KUBECTL ?? join(process.env.RURIKO_CACHE ?? join(homedir(), ".cache/ruriko"), "kubernetes-v1.34.4/bin/kubectl");
  const namespace = `ruriko-conf-${Math.random().toString(16).slice(2, 8)}`;
  const kubectl = async (...args: string[]) => (await run(kubectlBin, ["--kubeconfig", kubeconfig!, "-n", namespace, ...args], { maxBuffer: 64 * 1024 * 1024 })).stdout;
  const workload = async (h: TestController, agentName: string) => (await h.runtime.list(agentName))[0]!.name;
  /** Ruriko's own credentials: the ServiceAccount bound to the Role of deploy/kubernetes/, not the admin's. */
  let ruriko: KubeConfig | undefined;
  /** Every pod seen in the namespace, by name: uid → the last seen Gitai restart count. */
  const podsSeen = new Map<string, Map<string, number>>();
  let podWatch: { abort(): void } | undefined;
  return {
    name: "kubernetes",
    unavailable: () => (kubeconfig ? undefined : "RURIKO_TEST_KUBECONFIG is not set (bash scripts/kubernetes/start.sh prints a kubeconfig)"),
    async setup() {
      await kubectl("create", "namespace", namespace).catch(async () => run(kubectlBin, ["--kubeconfig", kubeconfig!, "create", "namespace", namespace]));
      for (const image of [TEST_AGENT_IMAGE, OTHER_IMAGE]) await run("bash", [join(ROOT, "scripts/kubernetes/load-image.sh"), image], { env: { ...process.env, KUBECONFIG: kubeconfig! } });
      // The manifests for Ruriko in a cluster: all of them accepted by the API server (a server-side dry run),
      // and the runtime below runs with nothing but the Role's permissions.
      const deploy = join(ROOT, "deploy/kubernetes/ruriko.yaml");
      await kubectl("apply", "--dry-run=server", "-f", deploy);
      const deployText = readFileSync(deploy, "utf8");
      const access = parseAllDocuments(deployText)
        .map((d) => d.toJS() as { kind: string })
        .filter((o) => ["ServiceAccount", "Role", "RoleBinding"].includes(o.kind));
      // The rule the Role carries commented out for --kube-acp-access port-forward, as an operator uncomments it:
      // a Role and binding of its own, so that the port-forward test runs with exactly what the manifest says.
      access.push(...portForwardAccess(deployText));
      const file = join(tmpdir(), `${namespace}-rbac.json`);
      writeFileSync(file, JSON.stringify({ apiVersion: "v1", kind: "List", items: access }));
      await kubectl("apply", "-f", file);
      rmSync(file);
      const token = (await kubectl("create", "token", "ruriko", "--duration=2h")).trim();
      const admin = new KubeConfig();
      admin.loadFromFile(kubeconfig!);
      const cluster = admin.getCurrentCluster()!;
      // Every pod of the namespace from here on, by the admin's watch: how often the cluster made or restarted one.
      const watch = new Watch(admin);
      podWatch = await watch.watch(`/api/v1/namespaces/${namespace}/pods`, {}, (_phase: string, pod: V1Pod) => {
        const name = pod.metadata?.name;
        const uid = pod.metadata?.uid;
        if (!name || !uid) return;
        const restarts = pod.status?.containerStatuses?.find((c) => c.name === "gitai")?.restartCount ?? 0;
        const byUid = podsSeen.get(name) ?? new Map<string, number>();
        byUid.set(uid, Math.max(restarts, byUid.get(uid) ?? 0));
        podsSeen.set(name, byUid);
      }, () => {});
      ruriko = new KubeConfig();
      ruriko.loadFromOptions({
        clusters: [cluster],
        users: [{ name: "ruriko", token }],
        contexts: [{ name: "ruriko", cluster: cluster.name, user: "ruriko", namespace }],
        currentContext: "ruriko",
      });
    },
    makeRuntime: (instance, logger, o) => new KubernetesRuntime({ kubeConfig: ruriko!, namespace, instance, log: logger, startTimeoutMs: o?.startTimeoutMs ?? 90_000 }),
    unschedulableMemory: "64Ti",
    portForwardRuntime: (instance) => new KubernetesRuntime({ kubeConfig: ruriko!, namespace, instance, acpAccess: "port-forward", startTimeoutMs: 90_000 }),
    async podsOf(h, agentName) {
      const seen = podsSeen.get(`${await workload(h, agentName)}-0`) ?? new Map<string, number>();
      return [...seen].map(([uid, restarts]) => ({ uid, restarts }));
    },
    async exec(h, agentName, script) {
      return kubectl("exec", `${await workload(h, agentName)}-0`, "-c", "gitai", "--", "/usr/local/bin/node", "-e", script);
    },
    async killProcess(h, agentName) {
      await kubectl("delete", "pod", `${await workload(h, agentName)}-0`, "--wait=false");
    },
    async deleteWorkload(h, agentName) {
      await kubectl("delete", "statefulset", await workload(h, agentName), "--wait=false");
    },
    async editWorkload(h, agentName) {
      await kubectl("set", "env", `statefulset/${await workload(h, agentName)}`, "-c", "gitai", "EDITED_BEHIND_BACK=1");
    },
    async foreign(h, agentName) {
      const name = `foreign-${h.instance}`;
      const labels = { [LABELS.agent]: agentName, [LABELS.managedBy]: MANAGED_BY, [LABELS.instance]: `${h.instance}-other` };
      const manifest = {
        apiVersion: "apps/v1",
        kind: "StatefulSet",
        metadata: { name, labels },
        spec: {
          replicas: 0,
          serviceName: name,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: { containers: [{ name: "gitai", image: TEST_AGENT_IMAGE }] } },
        },
      };
      const file = join(h.stateDir, "foreign.json");
      writeFileSync(file, JSON.stringify(manifest));
      await kubectl("apply", "-f", file);
      return {
        present: () => kubectl("get", "statefulset", name).then(() => true, () => false),
        cleanup: () => kubectl("delete", "statefulset", name, "--wait=false").then(() => {}, () => {}),
      };
    },
    async dumpAll() {
      const kinds = "statefulsets,pods,secrets,configmaps,persistentvolumeclaims,services,events,controllerrevisions";
      return (await kubectl("get", kinds, "-o", "yaml")) + (await run(kubectlBin, ["--kubeconfig", kubeconfig!, "get", "persistentvolumes", "-o", "yaml"])).stdout;
    },
    async teardown() {
      podWatch?.abort();
      await run(kubectlBin, ["--kubeconfig", kubeconfig!, "delete", "namespace", namespace, "--wait=false"]).catch(() => {});
    },
  };
}

/**
 * The rule deploy/kubernetes/ruriko.yaml leaves commented out for `--kube-acp-access port-forward`, uncommented
 * into a Role and RoleBinding of its own for the same ServiceAccount.
 */
function portForwardAccess(deployText: string): Array<{ kind: string; [field: string]: unknown }> {
  const lines = deployText.split("\n");
  const start = lines.findIndex((l) => l.includes("Only with --kube-acp-access port-forward"));
  assert.ok(start >= 0, "deploy/kubernetes/ruriko.yaml documents the port-forward rule");
  const rule: string[] = [];
  for (const line of lines.slice(start + 1)) {
    const m = /^(\s*)# (.*)$/.exec(line);
    if (!m) break;
    rule.push(`${m[1]}${m[2]}`);
  }
  const rules = parseAllDocuments(`rules:\n${rule.join("\n")}`)[0]!.toJS() as { rules: unknown[] };
  const labels = { "app.kubernetes.io/name": "ruriko" };
  return [
    { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "ruriko-port-forward", labels }, rules: rules.rules },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "ruriko-port-forward", labels },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "ruriko-port-forward" },
      subjects: [{ kind: "ServiceAccount", name: "ruriko" }],
    },
  ];
}

const chosen = (process.env.RURIKO_TEST_RUNTIMES ?? "docker,kubernetes").split(",").map((s) => s.trim());
const engines = [docker, kubernetesEngine()].filter((e) => chosen.includes(e.name));

for (const engine of engines) {
  const reason = engine.unavailable();
  const inCi = process.env.CI === "true";
  describe(`runtime conformance: ${engine.name}`, { skip: reason && !inCi ? reason : false }, () => {
    let h: TestController;
    let dir: string;
    const acp = new AcpClient({ retries: 1 });
    const endpoint = async (name: string): Promise<AcpEndpoint> => {
      const [c] = await h.runtime.list(name);
      assert.ok(c, `${name} has a container`);
      const address = acpAddressOf("bridge", c);
      assert.ok(address.ok, `${name} is reachable: ${address.ok ? "" : address.problem}`);
      return { agent: name, baseUrl: address.value, token: h.vault.tokens.get(name)! };
    };
    const agentStatus = async (name: string): Promise<AcpStatus> => acp.status(await endpoint(name), "test");
    const gosutoDigest = async (name: string) => (await loadSnapshotFromDirectory(dir)).objects.get(`Gosuto/${name}`)!.digest;
    const configured = async (name: string) => {
      const want = await gosutoDigest(name);
      await h.waitForStatus(name, (s) => isReady(s) && s!.gosutoDigest === want, `${name} Ready with its Gosuto`, 90_000);
      await waitFor(async () => (await agentStatus(name).catch(() => undefined))?.gosutoDigest === want, `${name} holds its Gosuto`, 60_000);
    };

    before(async () => {
      if (reason) throw new Error(`CI=true and the ${engine.name} half cannot run: ${reason}`);
      const { default: Docker } = await import("dockerode");
      const d = new Docker();
      await ensureAgentImage(d);
      await d.getImage(TEST_AGENT_IMAGE).tag({ repo: "ruriko/gitai", tag: "conformance-b" });
      await engine.setup();
      h = await startTestController({ agentPollMs: 1000 }, engine.makeRuntime);
      dir = writeTree({
        "alpha.yaml": `${gosuto("alpha", "be brief")}---\n${agent("alpha")}`,
        "beta.yaml": `${gosuto("beta", "be kind")}---\n${agent("beta")}`,
        "alpha-openai.yaml": binding,
      });
    });
    after(async () => {
      await h?.stop();
      await engine.teardown();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test("create: every agent Ready, configured over ACP, its granted secret delivered", async () => {
      h.vault.secrets.set("openai-key", Buffer.from(CANARY));
      await h.offer(dir);
      await h.waitForStatus("alpha", isAwaitingApproval, "the grant parked", 90_000);
      const [grant] = h.state.approvals.list({ status: "pending" });
      h.state.approvals.vote(grant!.id, { approver: "cli:test", decision: "approve", source: "cli", override: true });
      for (const name of ["alpha", "beta"]) await configured(name);
      assert.deepEqual((await agentStatus("alpha")).secrets, [{ name: "openai-key", version: 1 }]);
      const containers = await h.runtime.list();
      assert.deepEqual(containers.map((c) => `${c.agent}:${c.state}`).sort(), ["alpha:running", "beta:running"]);
      if (engine.podsOf) {
        // The ACP token went in before the pod's start (Runtime.agentFilesWhileRunning): one pod, never restarted.
        for (const name of ["alpha", "beta"]) assert.deepEqual((await engine.podsOf(h, name)).map((p) => p.restarts), [0], `${name}: one pod from create to Ready, not restarted`);
      }
    });

    // Only where the engine has it: registered, never skipped (a skipped test in CI reads as a missing dependency).
    if (engine.portForwardRuntime) test("port-forward access: ACP reached through the API server on a 127.0.0.1 port", async () => {
      const runtime = engine.portForwardRuntime!(h.instance);
      // The runtime's forwards live as long as its subscription (as in serve).
      const subscription = runtime.subscribe(() => {});
      try {
        const [c] = await runtime.list("alpha");
        assert.equal(c?.state, "running");
        assert.equal(c!.controlAddress, undefined, "no pod address");
        assert.ok(c!.controlHostPort, "a local port");
        const address = acpAddressOf("bridge", c!);
        assert.ok(address.ok && address.value === `http://127.0.0.1:${c!.controlHostPort}`);
        const via = { agent: "alpha", baseUrl: address.value, token: h.vault.tokens.get("alpha")! };
        // Several requests, one tunnel each, all answered; the same listener for the same pod.
        const statuses = await Promise.all([1, 2, 3].map(() => acp.status(via, "test")));
        const want = await gosutoDigest("alpha");
        for (const s of statuses) assert.equal(s.gosutoDigest, want);
        assert.equal((await runtime.list("alpha"))[0]?.controlHostPort, c!.controlHostPort);
        await assert.rejects(acp.status({ ...via, token: "not-the-token" }, "test"), "the agent's ACP still checks the token");
      } finally {
        subscription.close();
      }
    });

    test("a Gosuto edit is applied over ACP without recreating the agent", async () => {
      const before = h.state.status.get("alpha")!.containerId;
      writeFileSync(join(dir, "alpha.yaml"), `${gosuto("alpha", "be thorough")}---\n${agent("alpha")}`);
      await h.offer(dir);
      await configured("alpha");
      assert.equal(h.state.status.get("alpha")!.containerId, before, "same container");
    });

    test("the agent's data outlives its process, which is configured again when it comes back", async () => {
      await engine.exec(h, "alpha", `require("fs").writeFileSync("/data/conformance.txt", "kept")`);
      const tokenBefore = h.vault.tokens.get("alpha");
      await engine.killProcess(h, "alpha");
      await waitFor(async () => (await h.runtime.list("alpha"))[0]?.state !== "running", "alpha's process gone", 30_000).catch(() => {});
      await configured("alpha");
      assert.equal((await engine.exec(h, "alpha", `process.stdout.write(require("fs").readFileSync("/data/conformance.txt", "utf8"))`)).trim(), "kept");
      assert.deepEqual((await agentStatus("alpha")).secrets, [{ name: "openai-key", version: 1 }], "its secret delivered again");
      assert.ok(h.vault.tokens.get("alpha"), `a token on record (was ${tokenBefore ? "one" : "none"})`);
    });

    test("a workload deleted behind Ruriko's back is made again", async () => {
      const before = h.state.status.get("beta")!.containerId;
      await engine.deleteWorkload(h, "beta");
      await h.waitForStatus("beta", (s) => isReady(s) && !!s!.containerId && s!.containerId !== before, "beta recreated and Ready", 90_000);
      await configured("beta");
    });

    test("an image change recreates the agent on the new image, its data kept", async () => {
      const before = h.state.status.get("alpha")!.containerId;
      writeFileSync(join(dir, "alpha.yaml"), `${gosuto("alpha", "be thorough")}---\n${agent("alpha", OTHER_IMAGE)}`);
      await h.offer(dir);
      await h.waitForStatus("alpha", (s) => isReady(s) && s!.containerId !== before, "alpha recreated", 90_000);
      await configured("alpha");
      const [c] = await h.runtime.list("alpha");
      assert.equal(c!.image, OTHER_IMAGE);
      assert.equal((await engine.exec(h, "alpha", `process.stdout.write(require("fs").readFileSync("/data/conformance.txt", "utf8"))`)).trim(), "kept");
    });

    if (engine.editWorkload) test("a workload edited behind Ruriko's back is recreated as applied", async () => {
      const before = h.state.status.get("alpha")!.containerId;
      await engine.editWorkload!(h, "alpha");
      await h.waitForStatus("alpha", (s) => isReady(s) && !!s!.containerId && s!.containerId !== before, "alpha recreated as applied", 90_000);
      await configured("alpha");
      const env = await engine.exec(h, "alpha", `process.stdout.write(JSON.stringify(process.env))`);
      assert.ok(!env.includes("EDITED_BEHIND_BACK"), "the edit is undone");
      const healed = h.state.audit.tail(40).find((e) => e.action === "agent.recreate" && e.target === "Agent/alpha" && e.payload.drift === true);
      assert.match(String(healed?.payload.reason), /behind Ruriko's back/);
    });

    test("a lost state database: each agent's workload is read back as the spec that made it (serve --adopt-orphans)", async () => {
      const stateDir = mkdtempSync(join(tmpdir(), "ruriko-adopt-"));
      const fresh = openState(stateDir);
      try {
        const readBack = h.runtime.readBack?.bind(h.runtime);
        assert.ok(readBack, `${engine.name} reads its containers back`);
        const report = await adoptEngineState({ list: () => h.runtime.list(), readFacts: readBack, inventory: fresh.inventory, meta: fresh.meta, audit: fresh.audit, transaction: fresh.transaction }, "lost", h.instance, "conformance");
        assert.deepEqual(report.adopted.map((a) => a.agent).sort(), ["alpha", "beta"]);
        for (const name of ["alpha", "beta"]) {
          const [recorded, adopted] = [h.state.inventory.get(name)!, fresh.inventory.get(name)!];
          assert.deepEqual([adopted.containerId, adopted.specDigest, adopted.spec.image, adopted.spec.env], [recorded.containerId, recorded.specDigest, recorded.spec.image, recorded.spec.env], `${name} adopted as Ruriko applied it`);
        }
      } finally {
        fresh.close();
        rmSync(stateDir, { recursive: true, force: true });
      }
    });

    test("removal waits for approval; pruning takes only what Ruriko owns", async () => {
      const foreign = await engine.foreign(h, "beta");
      try {
        rmSync(join(dir, "beta.yaml"));
        await h.offer(dir);
        await h.waitForStatus("beta", isAwaitingApproval, "removal parked", 60_000);
        assert.equal((await h.runtime.list("beta"))[0]?.state, "running", "still running while the removal waits");
        const [request] = h.state.approvals.list({ agent: "beta", status: "pending" });
        assert.equal(request!.operation, "delete");
        assert.equal(approvalsDecide(h.stateDir, request!.id, "approve", {}), 0);
        await h.waitForStatus("beta", (s) => s === undefined, "beta removed", 90_000);
        assert.equal((await h.runtime.list("beta")).length, 0);
        assert.ok(await foreign.present(), "the foreign object is untouched");
        assert.equal((await h.runtime.list("alpha"))[0]?.state, "running", "alpha untouched");
      } finally {
        await foreign.cleanup();
      }
    });

    test("no secret value in any object the engine holds", async () => {
      const text = await engine.dumpAll(h);
      assert.ok(text.includes(h.instance), "the dump is of this instance's objects");
      for (const needle of [CANARY, Buffer.from(CANARY).toString("base64")]) assert.ok(!text.includes(needle), `a secret value in the ${engine.name} objects`);
    });

    if (engine.unschedulableMemory) test("stopping while an agent waits for the engine to run it ends the wait at once, and reports no failure", async () => {
      // Its own Ruriko (another instance), whose start would wait 150 s for a pod no node can run.
      const makeRuntime = engine.makeRuntime!;
      const waiting = await startTestController({}, (instance, logger) => makeRuntime(instance, logger, { startTimeoutMs: 150_000 }));
      const tree = writeTree({ "gamma.yaml": `${gosuto("gamma", "be patient")}---\n${agent("gamma").replace("memory: 256Mi", `memory: ${engine.unschedulableMemory}`)}` });
      try {
        await waiting.offer(tree);
        // Its workload is made: the reconcile waits for its pod (or is about to; a wait begun after the stop ends too).
        await waitFor(async () => (await waiting.runtime.list("gamma")).length === 1, "gamma's workload made", 60_000);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          waiting.controller.stop(),
          new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("the controller still stopping after 60 s: it waited for the pod")), 60_000))),
        ]).finally(() => clearTimeout(timer));
        // Not a failure: no status written by the interrupted reconcile (the next start carries on), no error in it.
        assert.equal(waiting.state.status.get("gamma")?.lastError ?? null, null);
        const create = waiting.state.audit.tail(20).find((e) => e.action === "agent.create" && e.target === "Agent/gamma");
        assert.match(String(create?.payload.error), /Ruriko is stopping/, "the audit log says why the create did not finish");
        assert.equal((await waiting.runtime.list("gamma"))[0]?.state === "running", false);
      } finally {
        await waiting.stop();
        rmSync(tree, { recursive: true, force: true });
      }
    });
  });
}
