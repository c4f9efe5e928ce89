/**
 * Ruriko against raw Docker, 20 agents, same image, same container options, same concurrency, same run:
 *  - start-to-all-Ready vs creating and starting the containers directly;
 *  - edit-to-converged (every agent's env changed) vs removing and re-creating them directly;
 *  - container killed → Ready again (median, p95), beside a bare `docker start` of a stopped container.
 * Every baseline counts a container done when Gitai in it answers /health: Ruriko's Ready means the agent
 * answered and holds its Gosuto, so a bare "container started" would compare different things.
 * Figures are ratios to the baseline measured in the same run: these machines are shared and noisy.
 */
import Docker from "dockerode";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import PQueue from "p-queue";
import { containerSpecFor } from "../src/controller/container-spec.ts";
import type { AgentManifest } from "../src/api/generated/types.ts";
import { DockerRuntime } from "../src/runtime/docker-runtime.ts";
import { isReady, removeInstanceResources, startTestController, TEST_AGENT_IMAGE } from "../test/helpers/controller-harness.ts";
import { writeTree } from "../test/helpers/manifest-tree.ts";
import { percentile, until } from "./timing.ts";

const AGENTS = 20;
const CONCURRENCY = 4;
const KILL_ROUNDS = 15;

const manifest = (name: string, tz: string) =>
  `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: {}\n---\napiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec:\n  image: ${TEST_AGENT_IMAGE}\n  gosuto: ${name}\n  env: {TZ: ${tz}}\n  resources: {memory: 128Mi}\n`;

const names = Array.from({ length: AGENTS }, (_, i) => `bench-${i}`);

/** Until the agent in the container answers GET /health on its published control port. */
async function waitHealthy(docker: Docker, containerId: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  let port: string | undefined;
  while (Date.now() < deadline) {
    port ??= (await docker.getContainer(containerId).inspect()).NetworkSettings.Ports?.["8765/tcp"]?.[0]?.HostPort;
    if (port && (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false))) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`container ${containerId} never answered /health`);
}

/**
 * The baseline: the same containers through the same runtime adapter, without the controller, each
 * counted done when its agent answers /health (what "Ready" means to a person scripting it by hand).
 */
async function rawRun(docker: Docker, tz: string, instance: string): Promise<number> {
  const runtime = new DockerRuntime({ docker, instance });
  const agentOf = (name: string) => ({ apiVersion: "ruriko.dev/v1alpha1", kind: "Agent", metadata: { name }, spec: { image: TEST_AGENT_IMAGE, gosuto: name, env: { TZ: tz }, resources: { memory: "128Mi" } } }) as AgentManifest;
  await runtime.prepare(containerSpecFor(agentOf(names[0]!), "raw"));
  const queue = new PQueue({ concurrency: CONCURRENCY });
  const started = performance.now();
  await Promise.all(
    names.map((name) =>
      queue.add(async () => {
        const agent = agentOf(name);
        const existing = (await runtime.list()).find((c) => c.agent === name);
        if (existing) await runtime.remove(existing.id);
        const c = await runtime.create(containerSpecFor(agent, "raw"));
        await runtime.start(c.id);
        await waitHealthy(docker, c.id);
      }),
    ),
  );
  return performance.now() - started;
}

export async function benchDocker() {
  const docker = new Docker();
  const rawInstance = `braw${Date.now().toString(36)}`;
  try {
    // Warm the image and the page cache once, outside every measurement.
    await rawRun(docker, "UTC", rawInstance);
    await removeInstanceResources(docker, rawInstance);

    const rawStartMs = await rawRun(docker, "UTC", rawInstance);
    const rawEditMs = await rawRun(docker, "Europe/Paris", rawInstance);
    await removeInstanceResources(docker, rawInstance);

    const h = await startTestController({ concurrency: CONCURRENCY });
    const files: Record<string, string> = {};
    for (const n of names) files[`${n}.yaml`] = manifest(n, "UTC");
    const dir = writeTree(files);
    try {
      let t = performance.now();
      await h.offer(dir);
      await until(() => names.every((n) => isReady(h.state.status.get(n))));
      const rurikoStartMs = performance.now() - t;

      for (const n of names) writeFileSync(join(dir, `${n}.yaml`), manifest(n, "Europe/Paris"));
      const before = new Map(names.map((n) => [n, h.state.status.get(n)!.containerId]));
      t = performance.now();
      await h.offer(dir);
      await until(() => names.every((n) => { const s = h.state.status.get(n); return isReady(s) && s!.containerId !== before.get(n); }));
      const rurikoEditMs = performance.now() - t;

      const healMs: number[] = [];
      const bareStartMs: number[] = [];
      for (let i = 0; i < KILL_ROUNDS; i++) {
        // A different agent each round: killing one agent again within minutes is a crash loop, and backs off.
        const name = names[i % AGENTS]!;
        const id = h.state.status.get(name)!.containerId!;
        const stampBefore = h.state.status.get(name)!.updatedAt;
        const killedAt = performance.now();
        await docker.getContainer(id).kill();
        await until(() => { const s = h.state.status.get(name); return !!s && s.updatedAt !== stampBefore && isReady(s) && s.containerState === "running"; });
        healMs.push(performance.now() - killedAt);
        // Baseline: a stopped container started by hand.
        const spare = await docker.createContainer({
          Image: TEST_AGENT_IMAGE,
          ExposedPorts: { "8765/tcp": {} },
          HostConfig: { ReadonlyRootfs: true, Tmpfs: { "/tmp": "" }, PortBindings: { "8765/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] } },
        });
        const s0 = performance.now();
        await spare.start();
        await waitHealthy(docker, spare.id);
        bareStartMs.push(performance.now() - s0);
        await spare.remove({ force: true });
      }
      return {
        agents: AGENTS,
        concurrency: CONCURRENCY,
        startToReady: { rurikoMs: rurikoStartMs, rawDockerMs: rawStartMs, ratio: rurikoStartMs / rawStartMs },
        editToConverged: { rurikoMs: rurikoEditMs, rawDockerMs: rawEditMs, ratio: rurikoEditMs / rawEditMs },
        killToReady: { rounds: KILL_ROUNDS, medianMs: percentile(healMs, 50), p95Ms: percentile(healMs, 95), bareDockerStartMedianMs: percentile(bareStartMs, 50) },
      };
    } finally {
      await h.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    await removeInstanceResources(docker, rawInstance);
  }
}
