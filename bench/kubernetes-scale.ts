/**
 * Ruriko on Kubernetes at scale (npm run bench -- --only kubernetes), on the test cluster (scripts/kubernetes/,
 * started or reused here) with kwok fake nodes on the same API server:
 *  - 1,000 agents from an empty namespace to every StatefulSet created and its pod reported Running by the
 *    cluster, then an image change rolled to all 1,000 (every pod Running on the new image): times, API calls
 *    per agent (as serve counts them on /metrics, ruriko_kubernetes_requests_total: nothing stands between Ruriko
 *    and the API server to count them), reconciles per agent, Ruriko's peak RSS (VmHWM of its process). Also when
 *    a tenth, half and all of the StatefulSets existed (how fast the writer wrote, apart from how fast the cluster
 *    ran the pods) and the CPU the cluster's own processes spent in each create (the work a writer makes for it).
 *    kwok's pods never run a process, so the ACP steps (Ready) cannot complete there: what is measured is what
 *    the cluster reports.
 *  - The baseline, in the same run before Ruriko's part: the same objects written straight to the API server at
 *    the same concurrency (StatefulSets at 1 replica, no controller), and the image patched into each: what the
 *    cluster itself takes on these cores. Ruriko's times are also given as ratios to it.
 *  (20 agents to Ready on the real kubelet against `kubectl apply` of the same 20 StatefulSets: kubernetes-real.ts.)
 * Ruriko runs as `ruriko serve --runtime kubernetes`, its own process, as its Deployment runs it in a cluster: the tsc
 * build (what the image holds), with the Node flags of the container's command in deploy/kubernetes/ruriko.yaml.
 * RURIKO_BENCH_KUBE_SERVE=source runs it from the sources instead (`npm start`: Node strips the types of every
 * module it loads, ~30 MiB more). Serve's CPU time (user + system) is reported beside its memory.
 * Setup (outside every measurement): the test cluster stopped and started again (FRESH_CLUSTER), or else earlier
 * runs' namespaces gone (deleting one is minutes of the cluster's work); kwok nodes (10 × 200 pods), the real node
 * cordoned during the kwok part (so every pod lands on a kwok node), and 1,000 static PersistentVolumes of a class
 * of their own (kwok pods mount nothing, and the local provisioner's volumes are bound to the real node). All of it
 * removed afterwards.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { AppsV1Api, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, Watch, type V1Pod } from "@kubernetes/client-node";
import PQueue from "p-queue";
import { parseAllDocuments } from "yaml";
import { handoverSecretFor, statefulSetFor, workloadName } from "../src/runtime/kubernetes-objects.ts";
import { TEST_AGENT_IMAGE } from "../test/helpers/controller-harness.ts";
import { freePort } from "../test/helpers/synapse.ts";
import { buildRuriko, ENTRY_POINT_FLAGS } from "./build.ts";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..");
const CACHE = process.env.RURIKO_CACHE ?? join(homedir(), ".cache/ruriko");
const KUBECTL = join(CACHE, "kubernetes-v1.34.4/bin/kubectl");
const AGENTS = Number(process.env.RURIKO_BENCH_KUBE_AGENTS ?? 1000);
const KWOK_NODES = 10;
const CONCURRENCY = Number(process.env.RURIKO_BENCH_KUBE_CONCURRENCY ?? 64);
const NEW_IMAGE = "ruriko/gitai:conformance-b";
const STORAGE_CLASS = "ruriko-bench-static";
const SERVE_FROM = process.env.RURIKO_BENCH_KUBE_SERVE === "source" ? "source" : "built";

const manifest = (name: string, image: string) =>
  `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: {}\n---\napiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec: {image: ${JSON.stringify(image)}, gosuto: ${name}, resources: {memory: 128Mi}}\n`;

function writeAgents(dir: string, names: string[], image: string): void {
  for (const n of names) writeFileSync(join(dir, `${n}.yaml`), manifest(n, image));
}

export async function kubectl(kubeconfig: string, args: string[], input?: string): Promise<string> {
  const child = run(KUBECTL, ["--kubeconfig", kubeconfig, ...args], { maxBuffer: 256 * 1024 * 1024 });
  if (input !== undefined) {
    child.child.stdin!.end(input);
  }
  return (await child).stdout;
}
const applyList = (kubeconfig: string, items: unknown[]) => kubectl(kubeconfig, ["apply", "--server-side", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items }));

/**
 * What serve has done so far, from its own /metrics: its requests to the API server by verb and resource
 * (`ruriko_kubernetes_requests_total`, counted as each is sent, watches included) and its reconciles.
 */
async function serveCounts(serve: Serve): Promise<{ requests: Map<string, number>; reconciles: number }> {
  const text = await (await fetch(`http://127.0.0.1:${serve.port}/metrics`)).text();
  const requests = new Map<string, number>();
  let reconciles = 0;
  for (const line of text.split("\n")) {
    const request = /^ruriko_kubernetes_requests_total\{verb="([^"]*)",resource="([^"]*)"\} (\d+)/.exec(line);
    if (request) requests.set(`${request[1]} ${request[2]}`.trim(), Number(request[3]));
    const reconcile = /^ruriko_reconcile_total\{[^}]*\} (\d+)/.exec(line);
    if (reconcile) reconciles += Number(reconcile[1]);
  }
  return { requests, reconciles };
}

/** `after` less `before`, kind by kind. */
const since = (after: Map<string, number>, before: Map<string, number>) => new Map([...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const).filter(([, v]) => v > 0));

/**
 * A watch of `path` that is started again whenever it ends until closed: the client ends a watch quiet for 30 s
 * (pods waiting on their volumes can be), and a new one's first events are every object as it is then.
 */
async function lastingWatch<T>(admin: KubeConfig, path: string, onEvent: (phase: string, object: T) => void): Promise<{ close(): void }> {
  let closed = false;
  let req: AbortController | undefined;
  const watch = async (): Promise<void> => {
    req = await new Watch(admin).watch(path, {}, onEvent, () => {
      if (!closed) void watch();
    });
  };
  await watch();
  return {
    close: () => {
      closed = true;
      req?.abort();
    },
  };
}

/** Pods of a namespace by name, from a lasting watch: phase, image, Ready. */
export async function podWatch(admin: KubeConfig, namespace: string) {
  const pods = new Map<string, { phase: string; image: string; ready: boolean }>();
  let listeners: Array<() => void> = [];
  const watch = await lastingWatch<V1Pod>(admin, `/api/v1/namespaces/${namespace}/pods`, (phase, pod) => {
    const name = pod.metadata!.name!;
    if (phase === "DELETED") pods.delete(name);
    else pods.set(name, { phase: pod.status?.phase ?? "", image: pod.spec?.containers.find((c) => c.name === "gitai")?.image ?? "", ready: !!pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") });
    for (const l of listeners) l();
  });
  return {
    pods,
    /** Resolves when `check` holds over the pods (checked at every event). */
    until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
      return new Promise((resolve, reject) => {
        if (check()) return resolve();
        const timer = setTimeout(() => { listeners = listeners.filter((l) => l !== listener); reject(new Error(`timed out: ${what}`)); }, timeoutMs);
        const listener = () => {
          if (!check()) return;
          clearTimeout(timer);
          listeners = listeners.filter((l) => l !== listener);
          resolve();
        };
        listeners.push(listener);
      });
    },
    close: () => watch.close(),
  };
}

type PodWatch = Awaited<ReturnType<typeof podWatch>>;

/**
 * When each StatefulSet of a namespace was first seen (performance.now()): how fast the writer (Ruriko, or the
 * baseline's direct writes) got the workloads to the cluster, apart from how fast the cluster ran their pods.
 */
async function workloadsSeen(admin: KubeConfig, namespace: string) {
  const seen = new Map<string, number>();
  const watch = await lastingWatch<{ metadata?: { name?: string } }>(admin, `/apis/apps/v1/namespaces/${namespace}/statefulsets`, (phase, sts) => {
    const name = sts.metadata?.name;
    if (phase === "ADDED" && name && !seen.has(name)) seen.set(name, performance.now());
  });
  return {
    /** When a tenth, half and all of `count` had been seen, in ms after `t0`. */
    marks(count: number, t0: number): { tenthMs: number; halfMs: number; ms: number } {
      const times = [...seen.values()].sort((a, b) => a - b);
      const at = (n: number) => Math.round((times[Math.ceil(n) - 1] ?? NaN) - t0);
      return { tenthMs: at(count / 10), halfMs: at(count / 2), ms: at(count) };
    },
    close: () => watch.close(),
  };
}

/**
 * Until `count` pods run `image`; returns when (ms after `t0`) a tenth, half and all of them first did: the shape of
 * the curve tells a writer that holds pods back (a straight line) from a cluster that is slow to start them.
 */
async function untilRunning(w: PodWatch, image: string, count: number, t0: number, what: string): Promise<{ ms: number; tenthMs: number; halfMs: number }> {
  const marks: number[] = [];
  const running = () => [...w.pods.values()].filter((p) => p.phase === "Running" && p.image === image).length;
  await w.until(() => {
    const n = running();
    while (marks.length < 3 && n >= [Math.ceil(count / 10), Math.ceil(count / 2), count][marks.length]!) marks.push(performance.now() - t0);
    return n >= count;
  }, 20 * 60_000, what);
  return { ms: Math.round(marks[2]!), tenthMs: Math.round(marks[0]!), halfMs: Math.round(marks[1]!) };
}

/**
 * The baseline, measured in the same run on the same cluster: the objects Ruriko makes for the agents (each
 * StatefulSet already at 1 replica, and its handover Secret), written straight to the API server by this process
 * at Ruriko's concurrency, no controller between; then the same image change as a patch of each StatefulSet's
 * image (the cluster's own rolling update). What the cluster itself takes to start 1,000 pods on these cores.
 */
async function timeDirectWrites(admin: KubeConfig, w: PodWatch, ns: string, names: string[]) {
  const apps = admin.makeApiClient(AppsV1Api);
  const core = admin.makeApiClient(CoreV1Api);
  const instance = "bench-direct";
  const queue = new PQueue({ concurrency: CONCURRENCY });
  const spec = (agent: string, image: string) => ({ agent, image, env: {}, memoryBytes: 128 * 1024 * 1024, pidsLimit: 256, specDigest: "bench", revision: "bench" });
  const workloads = await workloadsSeen(admin, ns);
  const cpu0 = clusterCpu();
  const t0 = performance.now();
  await queue.addAll(names.map((agent) => async () => {
    const sts = statefulSetFor(spec(agent, TEST_AGENT_IMAGE), { instance, storageClass: STORAGE_CLASS, dataVolumeSize: "1Gi" });
    sts.spec!.replicas = 1;
    await core.createNamespacedSecret({ namespace: ns, body: handoverSecretFor(instance, agent, { "acp-token": Buffer.from("bench-token") }) });
    await apps.createNamespacedStatefulSet({ namespace: ns, body: sts });
  }));
  const create = { ...(await untilRunning(w, TEST_AGENT_IMAGE, names.length, t0, `${names.length} pods Running (direct writes)`)), created: workloads.marks(names.length, t0), clusterCpuS: cpuSince(cpu0) };
  workloads.close();
  const t1 = performance.now();
  await queue.addAll(names.map((agent) => async () => {
    const name = workloadName(instance, agent);
    const patch = [{ op: "replace", path: "/spec/template/spec/containers/0/image", value: NEW_IMAGE }];
    await apps.patchNamespacedStatefulSet({ name, namespace: ns, body: patch }, setHeaderOptions("Content-Type", PatchStrategy.JsonPatch));
  }));
  const roll = await untilRunning(w, NEW_IMAGE, names.length, t1, `${names.length} pods Running on ${NEW_IMAGE} (direct writes)`);
  return { create, roll };
}

/**
 * How Ruriko runs in a cluster, from the ruriko container of deploy/kubernetes/ruriko.yaml: Node's flags (those of
 * its `command`, else the image's entry point's) and the environment that shapes the process rather than configures
 * Ruriko (the allocator's MALLOC_ARENA_MAX, say; not RURIKO_*, which the bench gives as options).
 */
function deployedProcess(): { flags: string[]; env: Record<string, string> } {
  type Container = { name?: string; command?: string[]; env?: Array<{ name: string; value?: string }> };
  const docs = parseAllDocuments(readFileSync(join(ROOT, "deploy/kubernetes/ruriko.yaml"), "utf8")).map((d) => d.toJS() as { kind?: string; spec?: { template?: { spec?: { containers?: Container[] } } } } | null);
  const deployment = docs.find((d) => d?.kind === "Deployment");
  const container = deployment?.spec?.template?.spec?.containers?.find((c) => c.name === "ruriko");
  const env = Object.fromEntries((container?.env ?? []).filter((e) => e.value !== undefined && !e.name.startsWith("RURIKO_")).map((e) => [e.name, e.value!]));
  return { flags: container?.command ? container.command.filter((arg) => arg.startsWith("--")) : ENTRY_POINT_FLAGS, env };
}

interface Serve {
  child: ChildProcess;
  port: number;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/**
 * `ruriko serve` from `entry` (the build's or the sources' CLI) as deployed (its Node flags, then those of
 * RURIKO_BENCH_SERVE_NODE_OPTIONS: a profiler, say, on the command line, where V8's flags are allowed; its
 * environment); returns once it answers /healthz.
 */
async function startServe(entry: string, deployed: { flags: string[]; env: Record<string, string> }, args: string[], stateDir: string): Promise<Serve> {
  const port = await freePort();
  const log = openSync(join(stateDir, "serve.log"), "a");
  const flags = [...deployed.flags, ...(process.env.RURIKO_BENCH_SERVE_NODE_OPTIONS ?? "").split(/\s+/).filter(Boolean)];
  const child = spawn(process.execPath, [...flags, entry, "serve", "--state-dir", stateDir, "--http", `127.0.0.1:${port}`, ...args], { stdio: ["ignore", log, log], env: { ...process.env, ...deployed.env } });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null) child.kill(signal);
    await exited;
  };
  for (const deadline = Date.now() + 30_000; ; ) {
    if (child.exitCode !== null) throw new Error(`ruriko serve exited with ${child.exitCode}; see ${join(stateDir, "serve.log")}`);
    if (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) throw new Error("ruriko serve did not answer /healthz within 30 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, port, stop: () => end("SIGTERM"), kill: () => end("SIGKILL") };
}

/**
 * CPU seconds (user + system) so far of the cluster's own processes on this machine, by binary: the API server,
 * etcd, the controller manager, the scheduler, the kubelet, kwok. What each part of a run costs the cluster tells
 * the work a writer makes for it from the CPU that writer takes away from it on these shared cores.
 */
function clusterCpu(): Map<string, number> {
  const byBinary = new Map<string, number>();
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const argv0 = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]!;
      if (!argv0.startsWith(CACHE) || !/\/(kube-apiserver|etcd|kube-controller-manager|kube-scheduler|kubelet|kwok)$/.test(argv0)) continue;
      const name = argv0.slice(argv0.lastIndexOf("/") + 1);
      byBinary.set(name, (byBinary.get(name) ?? 0) + cpuSeconds(Number(pid)));
    } catch {
      // exited meanwhile
    }
  }
  return byBinary;
}

const peakRssMiB = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
/** User and system CPU time of the process so far, in seconds (clock ticks of /proc/<pid>/stat, 100 a second). */
const cpuSeconds = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
/** The cluster's CPU seconds since `before`, by binary, and in all. */
const cpuSince = (before: Map<string, number>) => {
  const spent = Object.fromEntries([...clusterCpu()].map(([k, v]) => [k, Math.round((v - (before.get(k) ?? 0)) * 10) / 10] as const).sort((a, b) => b[1] - a[1]));
  return { ...spent, all: Math.round(Object.values(spent).reduce((a, b) => a + b, 0) * 10) / 10 };
};
const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

/**
 * Each run deletes its namespaces without waiting: the cluster then spends minutes deleting 1,000 pods, StatefulSets
 * and claims. A run starts once earlier runs' namespaces are gone, and Ruriko's part once the baseline's is, so that
 * neither shares the cluster with that.
 */
async function untilNamespacesGone(kubeconfig: string, prefix = "ruriko-bench-"): Promise<void> {
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    const left = (await kubectl(kubeconfig, ["get", "namespaces", "-o", "name"])).split("\n").filter((n) => n.startsWith(`namespace/${prefix}`));
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`namespaces are still being deleted: ${left.join(", ")}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/** The test cluster's kubeconfig: started, or the running one. `fresh`: stopped first (its state goes with it). */
export async function cluster(o: { fresh?: boolean } = {}): Promise<string> {
  if (o.fresh) await run("bash", [join(ROOT, "scripts/kubernetes/stop.sh")], { maxBuffer: 1 << 20 });
  const { stdout } = await run("bash", [join(ROOT, "scripts/kubernetes/start.sh")], { maxBuffer: 1 << 20 });
  return stdout.trim();
}

/**
 * Each run on a cluster started for it: the test cluster's API server grows run after run (1.9 GB of RSS after 7
 * runs, 2.7 GB after 10, when a baseline stalled), and the runs slowed with it, both parts. RURIKO_BENCH_KUBE_REUSE=1
 * keeps a running one (faster to iterate; figures then drift).
 */
const FRESH_CLUSTER = process.env.RURIKO_BENCH_KUBE_REUSE !== "1";

export async function benchKubernetesScale() {
  const kubeconfig = await cluster({ fresh: FRESH_CLUSTER });
  const admin = new KubeConfig();
  admin.loadFromFile(kubeconfig);
  const ns = `ruriko-bench-${Date.now().toString(36)}`;
  const work = mkdtempSync(join(tmpdir(), "ruriko-bench-kube-"));
  const names = Array.from({ length: AGENTS }, (_, i) => `agent-${String(i).padStart(4, "0")}`);
  const nodes = Array.from({ length: KWOK_NODES }, (_, i) => `kwok-${i}`);
  const deployed = deployedProcess();
  let built: string | undefined;
  let serve: Serve | undefined;
  let watch: Awaited<ReturnType<typeof podWatch>> | undefined;
  try {
    built = SERVE_FROM === "built" ? buildRuriko() : undefined;
    const entry = built ? join(built, "src/cli/ruriko.js") : join(ROOT, "src/cli/ruriko.ts");
    // --- setup, outside every measurement -------------------------------------------------------------------
    await untilNamespacesGone(kubeconfig);
    await run("bash", [join(ROOT, "scripts/kubernetes/kwok.sh"), "start", kubeconfig]);
    await applyList(kubeconfig, nodes.map((name, i) => ({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name, labels: { type: "kwok", "kubernetes.io/hostname": name }, annotations: { "kwok.x-k8s.io/node": "fake" } },
      // Pod addresses on loopback: Ruriko (pod-ip access) tries ACP on them, and must meet a refused connection here,
      // never a packet leaving the host.
      spec: { podCIDR: `127.90.${i}.0/24` },
      status: { allocatable: { cpu: "64", memory: "512Gi", pods: "200" }, capacity: { cpu: "64", memory: "512Gi", pods: "200" } },
    })));
    await kubectl(kubeconfig, ["wait", "--for=condition=Ready", ...nodes.map((n) => `node/${n}`), "--timeout=60s"]);
    await kubectl(kubeconfig, ["cordon", "localhost"]);
    await applyList(kubeconfig, [
      // Bound as the scheduler places each pod, as the test cluster's own class and Kubernetes's advice for static
      // volumes have it. Bound at once instead (Immediate), a pod made before the volume controller bound its claim
      // failed to schedule and was tried again at every binding: 18,564 and 46,899 failed attempts in the two parts
      // of one run, a storm that grew with the load and was most of the cluster's extra work in Ruriko's part.
      { apiVersion: "storage.k8s.io/v1", kind: "StorageClass", metadata: { name: STORAGE_CLASS }, provisioner: "kubernetes.io/no-provisioner", volumeBindingMode: "WaitForFirstConsumer", reclaimPolicy: "Retain" },
      // One per claim of each part (the baseline's, Ruriko's): a released volume is not bound again.
      ...[...names, ...names].map((_, i) => ({
        apiVersion: "v1",
        kind: "PersistentVolume",
        metadata: { name: `${ns}-${i}`, labels: { "ruriko.dev/bench": ns } },
        spec: { storageClassName: STORAGE_CLASS, capacity: { storage: "1Gi" }, accessModes: ["ReadWriteOnce"], persistentVolumeReclaimPolicy: "Retain", hostPath: { path: `/nonexistent/${ns}-${i}` } },
      })),
    ]);
    // --- the baseline: the same objects written straight to the API server ------------------------------------
    const directNs = `${ns}-direct`;
    await kubectl(kubeconfig, ["create", "namespace", directNs]);
    const directWatch = await podWatch(admin, directNs);
    const direct = await timeDirectWrites(admin, directWatch, directNs, names).finally(() => directWatch.close());
    await kubectl(kubeconfig, ["delete", "namespace", directNs, "--wait=false"]);
    await untilNamespacesGone(kubeconfig, directNs);

    await kubectl(kubeconfig, ["create", "namespace", ns]);
    watch = await podWatch(admin, ns);
    const manifests = join(work, "manifests");
    rmSync(manifests, { recursive: true, force: true });
    await run("mkdir", ["-p", manifests, join(work, "state")]);
    writeAgents(manifests, names, TEST_AGENT_IMAGE);

    // --- 1,000 agents: empty namespace → every pod Running -----------------------------------------------------
    const w = watch;
    const workloads = await workloadsSeen(admin, ns);
    const cpu0 = clusterCpu();
    const t0 = performance.now();
    serve = await startServe(
      entry,
      deployed,
      ["--runtime", "kubernetes", "--kubeconfig", kubeconfig, "--kube-namespace", ns, "--kube-storage-class", STORAGE_CLASS, "--manifests", manifests, "--concurrency", String(CONCURRENCY), "--log-level", "warn"],
      join(work, "state"),
    );
    const pid = serve.child.pid!;
    let peak = 0;
    const sampler = setInterval(() => { try { peak = Math.max(peak, peakRssMiB(pid)); } catch { /* exited */ } }, 500);
    const create = await untilRunning(w, TEST_AGENT_IMAGE, AGENTS, t0, `${AGENTS} pods Running`);
    const createMs = create.ms;
    const created = workloads.marks(AGENTS, t0);
    const createClusterCpu = cpuSince(cpu0);
    workloads.close();
    const createCounts = await serveCounts(serve);
    const createPeak = Math.max(peak, peakRssMiB(pid));
    const createCpu = cpuSeconds(pid);
    const settledRss = rssMiB(pid);

    // --- an image change rolled to all 1,000 ---------------------------------------------------------------
    const t1 = performance.now();
    writeAgents(manifests, names, NEW_IMAGE);
    const roll = await untilRunning(w, NEW_IMAGE, AGENTS, t1, `${AGENTS} pods Running on ${NEW_IMAGE}`);
    const rollMs = roll.ms;
    const rollCounts = await serveCounts(serve);
    const rollCalls = since(rollCounts.requests, createCounts.requests);
    clearInterval(sampler);
    const rollPeak = Math.max(peak, peakRssMiB(pid));
    const rollCpu = cpuSeconds(pid) - createCpu;
    await serve.stop();
    serve = undefined;

    const perAgent = (m: Map<string, number>) => Object.fromEntries([...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round((v / AGENTS) * 100) / 100]));
    return {
      agents: AGENTS,
      serve: SERVE_FROM,
      nodeFlags: deployed.flags,
      env: deployed.env,
      kwokNodes: KWOK_NODES,
      concurrency: CONCURRENCY,
      direct,
      createToRunning: { ms: Math.round(createMs), tenthMs: create.tenthMs, halfMs: create.halfMs, created, clusterCpuS: createClusterCpu, vsDirect: Math.round((createMs / direct.create.ms) * 100) / 100, apiCallsPerAgent: Math.round((sum(createCounts.requests) / AGENTS) * 100) / 100, byKind: perAgent(createCounts.requests), reconcilesPerAgent: Math.round((createCounts.reconciles / AGENTS) * 10) / 10, peakRssMiB: Math.round(createPeak), rssAfterMiB: Math.round(settledRss), serveCpuS: Math.round(createCpu * 10) / 10 },
      imageRoll: { ms: Math.round(rollMs), tenthMs: roll.tenthMs, halfMs: roll.halfMs, vsDirect: Math.round((rollMs / direct.roll.ms) * 100) / 100, apiCallsPerAgent: Math.round((sum(rollCalls) / AGENTS) * 100) / 100, byKind: perAgent(rollCalls), reconcilesPerAgent: Math.round(((rollCounts.reconciles - createCounts.reconciles) / AGENTS) * 10) / 10, peakRssMiB: Math.round(rollPeak), serveCpuS: Math.round(rollCpu * 10) / 10 },
      target: { runningMs: 60_000, rssMiB: 200, met: createMs <= 60_000 && rollPeak <= 200 },
    };
  } finally {
    await serve?.kill().catch(() => {});
    watch?.close();
    for (const n of [ns, `${ns}-direct`]) await kubectl(kubeconfig, ["delete", "namespace", n, "--wait=false", "--ignore-not-found"]).catch(() => {});
    await kubectl(kubeconfig, ["delete", "nodes", ...nodes, "--ignore-not-found", "--wait=false"]).catch(() => {});
    await kubectl(kubeconfig, ["delete", "pv", "-l", `ruriko.dev/bench=${ns}`, "--wait=false"]).catch(() => {});
    await kubectl(kubeconfig, ["delete", "storageclass", STORAGE_CLASS, "--ignore-not-found"]).catch(() => {});
    await kubectl(kubeconfig, ["uncordon", "localhost"]).catch(() => {});
    await run("bash", [join(ROOT, "scripts/kubernetes/kwok.sh"), "stop"]).catch(() => {});
    rmSync(work, { recursive: true, force: true });
    if (built) rmSync(built, { recursive: true, force: true });
  }
}

export function printKubernetesScale(r: Awaited<ReturnType<typeof benchKubernetesScale>>): void {
  console.log(`kubernetes (kwok, ${r.kwokNodes} fake nodes), ${r.agents} agents, --concurrency ${r.concurrency}, serve ${r.serve === "built" ? "built" : "from the sources"}, node ${r.nodeFlags.join(" ")}${Object.entries(r.env).map(([k, v]) => ` ${k}=${v}`).join("")}:`);
  const curve = (m: { tenthMs: number; halfMs: number; ms: number }) => `a tenth ${(m.tenthMs / 1000).toFixed(1)} s, half ${(m.halfMs / 1000).toFixed(1)} s, all ${(m.ms / 1000).toFixed(1)} s`;
  console.log(`  baseline, the same objects written straight to the API server (${r.concurrency} at a time): StatefulSets created: ${curve(r.direct.create.created)}; pods Running: ${curve(r.direct.create)} (the cluster's CPU ${r.direct.create.clusterCpuS.all} s); image patched, rolled: ${curve(r.direct.roll)}`);
  console.log(`  empty namespace → every StatefulSet created and its pod Running: ${(r.createToRunning.ms / 1000).toFixed(1)} s (${r.createToRunning.vsDirect}× the baseline; ${curve(r.createToRunning)}), ${r.createToRunning.apiCallsPerAgent} API calls and ${r.createToRunning.reconcilesPerAgent} reconciles per agent, Ruriko peak RSS ${r.createToRunning.peakRssMiB} MiB (${r.createToRunning.rssAfterMiB} MiB after), serve's CPU ${r.createToRunning.serveCpuS} s`);
  console.log(`    StatefulSets created: ${curve(r.createToRunning.created)}; the cluster's CPU ${r.createToRunning.clusterCpuS.all} s (${JSON.stringify(r.createToRunning.clusterCpuS)}, baseline ${JSON.stringify(r.direct.create.clusterCpuS)}); calls per agent: ${JSON.stringify(r.createToRunning.byKind)}`);
  console.log(`  image change rolled to all: ${(r.imageRoll.ms / 1000).toFixed(1)} s (${r.imageRoll.vsDirect}× the baseline; ${curve(r.imageRoll)}), ${r.imageRoll.apiCallsPerAgent} API calls and ${r.imageRoll.reconcilesPerAgent} reconciles per agent, peak RSS ${r.imageRoll.peakRssMiB} MiB, serve's CPU ${r.imageRoll.serveCpuS} s`);
  console.log(`    calls per agent: ${JSON.stringify(r.imageRoll.byKind)}`);
  console.log(`  target ≤ 60 s and ≤ 200 MiB: ${r.target.met ? "met" : "NOT met"}`);
}
