/**
 * Real pods (npm run bench -- --only kubernetes-real): 20 agents to Ready on the test cluster's real kubelet
 * (scripts/kubernetes/, started or reused here), against `kubectl apply` of the same 20 StatefulSets, in
 * interleaved rounds (the order swaps every round; these machines are shared and noisy), each in a namespace of
 * its own, made before and deleted after the measurement.
 *  - kubectl: the 20 StatefulSets Ruriko would make (statefulSetFor, 1 replica), one `kubectl apply --server-side`;
 *    the clock runs from the spawn of kubectl to every pod Ready (its containers running: Gitai has no readiness
 *    probe), as a watch of the namespace sees it.
 *  - Ruriko: `ruriko serve --runtime kubernetes --concurrency 20` (all agents at once, as the apply is; the default
 *    is 4) spawned with the 20 manifests in place; the clock runs to every
 *    agent Ready in its status (the pod running, and Gitai configured over ACP at its pod address), read from
 *    /api/v1/status every 50 ms. Its pods' Ready time, from the same watch, is reported too.
 * Figures: median per way, and Ruriko's ratio to kubectl in the same run.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import Docker from "dockerode";
import { statefulSetFor } from "../src/runtime/kubernetes-objects.ts";
import { ensureAgentImage, TEST_AGENT_IMAGE } from "../test/helpers/controller-harness.ts";
import { startServe } from "../test/helpers/serve-process.ts";
import { cluster, kubectl, podWatch } from "./kubernetes-scale.ts";
import { median } from "./timing.ts";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..");
const AGENTS = 20;
const ROUNDS = Number(process.env.RURIKO_BENCH_KUBE_REAL_ROUNDS ?? 3);
const INSTANCE = "bench";
const MEMORY_BYTES = 128 * 1024 * 1024;
const TIMEOUT_MS = 5 * 60_000;

const names = Array.from({ length: AGENTS }, (_, i) => `agent-${String(i).padStart(2, "0")}`);
const manifest = (name: string) =>
  `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: {}\n---\napiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec: {image: ${JSON.stringify(TEST_AGENT_IMAGE)}, gosuto: ${name}, resources: {memory: 128Mi}}\n`;

/** The StatefulSets Ruriko makes for these agents, already at 1 replica: what an operator would apply by hand. */
function workloads(): unknown[] {
  return names.map((agent) => {
    const sts = statefulSetFor({ agent, image: TEST_AGENT_IMAGE, env: {}, memoryBytes: MEMORY_BYTES, pidsLimit: 256, specDigest: "bench", revision: "bench" }, { instance: INSTANCE, dataVolumeSize: "1Gi" });
    sts.spec!.replicas = 1;
    return sts;
  });
}

async function timeKubectl(kubeconfig: string, admin: KubeConfig, ns: string): Promise<number> {
  const watch = await podWatch(admin, ns);
  try {
    const t0 = performance.now();
    await kubectl(kubeconfig, ["-n", ns, "apply", "--server-side", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: workloads() }));
    await watch.until(() => [...watch.pods.values()].filter((p) => p.ready).length >= AGENTS, TIMEOUT_MS, `${AGENTS} pods Ready (kubectl)`);
    return performance.now() - t0;
  } finally {
    watch.close();
  }
}

async function timeRuriko(kubeconfig: string, admin: KubeConfig, ns: string, work: string): Promise<{ readyMs: number; podsReadyMs: number }> {
  const dir = mkdtempSync(join(work, "round-"));
  const manifests = join(dir, "manifests");
  mkdirSync(manifests);
  mkdirSync(join(dir, "state"));
  for (const n of names) writeFileSync(join(manifests, `${n}.yaml`), manifest(n));
  const watch = await podWatch(admin, ns);
  let podsReadyAt: number | undefined;
  const podsReady = watch.until(() => [...watch.pods.values()].filter((p) => p.ready).length >= AGENTS, TIMEOUT_MS, `${AGENTS} pods Ready (Ruriko)`).then(() => (podsReadyAt = performance.now()));
  const t0 = performance.now();
  const serve = await startServe(
    ["--runtime", "kubernetes", "--kubeconfig", kubeconfig, "--kube-namespace", ns, "--manifests", manifests, "--concurrency", String(AGENTS), "--log-level", "warn"],
    // The young generation capped as the image's entry point caps it (Dockerfile).
    { stateDir: join(dir, "state"), env: { NODE_OPTIONS: "--max-semi-space-size=4" } },
  );
  try {
    const deadline = t0 + TIMEOUT_MS;
    for (;;) {
      const status = await serve.status();
      const ready = status?.agents.filter((a) => a.conditions.some((c) => c.type === "Ready" && c.status === "True")).length ?? 0;
      if (ready >= AGENTS) break;
      if (performance.now() > deadline) throw new Error(`timed out: ${ready}/${AGENTS} agents Ready\n${serve.logTail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const readyMs = performance.now() - t0;
    await podsReady;
    return { readyMs, podsReadyMs: podsReadyAt! - t0 };
  } finally {
    await serve.stop();
    watch.close();
  }
}

export async function benchKubernetesReal() {
  const kubeconfig = await cluster();
  const admin = new KubeConfig();
  admin.loadFromFile(kubeconfig);
  await ensureAgentImage(new Docker());
  await run("bash", [join(ROOT, "scripts/kubernetes/load-image.sh"), TEST_AGENT_IMAGE], { env: { ...process.env, KUBECONFIG: kubeconfig } });
  const work = mkdtempSync(join(tmpdir(), "ruriko-bench-kube-real-"));
  const kubectlMs: number[] = [];
  const rurikoMs: number[] = [];
  const rurikoPodsMs: number[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const ways = round % 2 === 0 ? (["kubectl", "ruriko"] as const) : (["ruriko", "kubectl"] as const);
      for (const way of ways) {
        const ns = `ruriko-bench-real-${way}-${Date.now().toString(36)}`;
        await kubectl(kubeconfig, ["create", "namespace", ns]);
        try {
          if (way === "kubectl") kubectlMs.push(await timeKubectl(kubeconfig, admin, ns));
          else {
            const r = await timeRuriko(kubeconfig, admin, ns, work);
            rurikoMs.push(r.readyMs);
            rurikoPodsMs.push(r.podsReadyMs);
          }
        } finally {
          // Pods, claims and their volumes gone before the next round starts (outside the measurement).
          await kubectl(kubeconfig, ["delete", "namespace", ns, "--wait=true", "--timeout=180s"]).catch(() => {});
        }
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const round = (xs: number[]) => xs.map((x) => Math.round(x));
  return {
    agents: AGENTS,
    rounds: ROUNDS,
    kubectlApplyToPodsReadyMs: round(kubectlMs),
    rurikoToAgentsReadyMs: round(rurikoMs),
    rurikoToPodsReadyMs: round(rurikoPodsMs),
    medianMs: { kubectl: Math.round(median(kubectlMs)), rurikoReady: Math.round(median(rurikoMs)), rurikoPodsReady: Math.round(median(rurikoPodsMs)) },
    ratio: { agentsReady: Math.round((median(rurikoMs) / median(kubectlMs)) * 100) / 100, podsReady: Math.round((median(rurikoPodsMs) / median(kubectlMs)) * 100) / 100 },
  };
}

export function printKubernetesReal(r: Awaited<ReturnType<typeof benchKubernetesReal>>): void {
  console.log(`kubernetes (real kubelet), ${r.agents} agents, ${r.rounds} interleaved rounds:`);
  console.log(`  kubectl apply of the same StatefulSets → every pod Ready: median ${(r.medianMs.kubectl / 1000).toFixed(1)} s (${r.kubectlApplyToPodsReadyMs.join(" / ")} ms)`);
  console.log(`  ruriko serve → every agent Ready (configured over ACP): median ${(r.medianMs.rurikoReady / 1000).toFixed(1)} s (${r.rurikoToAgentsReadyMs.join(" / ")} ms) = ${r.ratio.agentsReady}× kubectl`);
  console.log(`    its pods Ready: median ${(r.medianMs.rurikoPodsReady / 1000).toFixed(1)} s = ${r.ratio.podsReady}× kubectl`);
}
