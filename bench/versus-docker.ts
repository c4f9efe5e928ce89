/**
 * Ruriko beside a bare `docker run`, one agent at a time, in interleaved rounds (issue: "faster than the Docker
 * GitOps tools"). Three ways to get the same container (same image, same hardened options, same kind of network):
 *  - bare:    the docker CLI, `docker run -d …` (and `docker rm -f` + `docker run` for a change), as a person types it;
 *  - webhook: `ruriko serve --git <repo>`: a commit, then the push webhook (the clock starts at the webhook POST);
 *  - watch:   `ruriko serve --manifests <dir>`: the clock starts when the manifest file is written.
 * Measured, each round, for each way (the order of the ways rotates every round so none always goes first):
 *  - add an agent → its container started (the engine's `start` event, as this process receives it);
 *  - add an agent → the agent answers GET /health on its published port;
 *  - change its env → the new container answers /health.
 * Both `serve` processes are started once and are idle while the other ways run. Figures: min / median / max per
 * measurement and the ratio of medians to bare Docker in the same run (these machines are shared and noisy).
 *   node bench/versus-docker.ts [rounds]        (also: node bench/run.ts --only versus)
 */
import { execFile } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import Docker from "dockerode";
import { simpleGit } from "simple-git";
import { ensureAgentImage, newStateDir, removeInstanceResources, TEST_AGENT_IMAGE } from "../test/helpers/controller-harness.ts";
import { startServe, type ServeProcess } from "../test/helpers/serve-process.ts";
import { median } from "./timing.ts";

const run = promisify(execFile);
const WAYS = ["bare", "webhook", "watch"] as const;
type Way = (typeof WAYS)[number];
const MEASURES = ["addToStarted", "addToAnswers", "changeToAnswers", "addStartedToAnswers", "changeStartedToAnswers"] as const;
type Measure = (typeof MEASURES)[number];
const WEBHOOK_SECRET = "bench-webhook-secret";
const MEMORY = "256Mi";

const agentDoc = (name: string, tz: string) =>
  `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: {}\n---\napiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec:\n  image: ${TEST_AGENT_IMAGE}\n  gosuto: ${name}\n  env: {TZ: ${tz}}\n  resources: {memory: ${MEMORY}}\n`;

/** Arrival times of the engine's container `start` events, by container name, and waiters for them. */
class StartEvents {
  private readonly seen: Array<{ name: string; at: number }> = [];
  private readonly waiters = new Set<{ match: (name: string) => boolean; since: number; resolve: (at: number) => void }>();
  private stream: NodeJS.ReadableStream | undefined;

  async open(docker: Docker): Promise<void> {
    this.stream = (await docker.getEvents({ filters: { type: ["container"], event: ["start"] } })) as NodeJS.ReadableStream;
    let buffered = "";
    this.stream.on("data", (chunk: Buffer) => {
      const at = performance.now();
      buffered += chunk.toString("utf8");
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const name = (JSON.parse(line) as { Actor?: { Attributes?: { name?: string } } }).Actor?.Attributes?.name;
        if (!name) continue;
        this.seen.push({ name, at });
        for (const w of this.waiters) {
          if (at < w.since || !w.match(name)) continue;
          this.waiters.delete(w);
          w.resolve(at);
        }
      }
    });
  }

  /** When a container whose name satisfies `match` started, at or after `since`. */
  next(match: (name: string) => boolean, since: number): Promise<number> {
    const earlier = this.seen.find((e) => e.at >= since && match(e.name));
    if (earlier) return Promise.resolve(earlier.at);
    return new Promise((resolve) => this.waiters.add({ match, since, resolve }));
  }

  close(): void {
    (this.stream as unknown as { destroy?: () => void } | undefined)?.destroy?.();
  }
}

/** Until GET /health answers on the container's published control port; the time it first did. */
async function answers(docker: Docker, container: () => Promise<string | undefined>): Promise<number> {
  const deadline = Date.now() + 120_000;
  let port: string | undefined;
  while (Date.now() < deadline) {
    if (!port) {
      const ref = await container();
      if (ref) port = (await docker.getContainer(ref).inspect().catch(() => undefined))?.NetworkSettings.Ports?.["8765/tcp"]?.[0]?.HostPort;
    }
    if (port && (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false))) return performance.now();
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error("the agent never answered /health");
}

/** The id of the running container Ruriko's instance has for an agent, other than `not` (a recreate keeps the name). */
async function rurikoContainer(docker: Docker, instance: string, agent: string, not?: string): Promise<string | undefined> {
  const list = await docker.listContainers({ filters: { label: [`ruriko.dev/instance=${instance}`, `ruriko.dev/agent=${agent}`], status: ["running"] } });
  return list.map((c) => c.Id).find((id) => id !== not);
}

/** `docker run` with the options Ruriko gives an agent (docker-runtime.ts containerCreateOptions), by hand. */
function dockerRunArgs(name: string, network: string, tz: string): string[] {
  return [
    "run", "-d", "--name", name,
    "--user", "65532:65532", "--read-only", "--tmpfs", "/tmp:rw,noexec,nosuid,size=64m",
    "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--pids-limit", "256", "--memory", "256m",
    "--mount", `type=volume,src=${name}-data,dst=/data`, "--restart", "no",
    "--network", network, "-p", "127.0.0.1::8765", "-e", `TZ=${tz}`, "-e", `RURIKO_AGENT=${name}`,
    "--label", "ruriko-bench=bare", TEST_AGENT_IMAGE,
  ];
}

function sign(body: string): string {
  return `sha256=${createHmac("sha256", WEBHOOK_SECRET).update(body).digest("hex")}`;
}

export interface VersusDockerResult {
  rounds: number;
  /** Per measurement and way: every sample, in ms. */
  samples: Record<Measure, Record<Way, number[]>>;
  summary: Record<Measure, Record<Way, { minMs: number; medianMs: number; maxMs: number; ratioToBare: number }>>;
}

export async function benchVersusDocker(rounds = 12): Promise<VersusDockerResult> {
  const docker = new Docker();
  await ensureAgentImage(docker);
  const bareNetwork = `ruriko-bench-bare-${Date.now().toString(36)}`;
  await docker.createNetwork({ Name: bareNetwork, Labels: { "ruriko-bench": "bare" } });
  const events = new StartEvents();
  await events.open(docker);

  // The git way: a repository Ruriko follows, committed to by this process.
  const repo = mkdtempSync(join(tmpdir(), "ruriko-bench-repo-"));
  const git = simpleGit(repo);
  await git.init(["--initial-branch=main"]);
  await git.addConfig("user.email", "bench@localhost").addConfig("user.name", "bench");
  mkdirSync(join(repo, "agents"));
  writeFileSync(join(repo, "agents", "README.md"), "bench\n");
  await git.add(".").commit("start");
  const watched = mkdtempSync(join(tmpdir(), "ruriko-bench-watch-"));

  const gitState = newStateDir();
  const watchState = newStateDir();
  const serves: ServeProcess[] = [];
  const samples = Object.fromEntries(MEASURES.map((m) => [m, Object.fromEntries(WAYS.map((w) => [w, [] as number[]]))])) as VersusDockerResult["samples"];
  try {
    // Matrix off, no periodic fetch: the webhook is the only trigger of the git way.
    const gitServe = await startServe(["--git", repo, "--branch", "main", "--path", "agents", "--git-interval", "3600", "--allow-empty", "--log-level", "info"], {
      stateDir: gitState.stateDir,
      env: { RURIKO_WEBHOOK_SECRET: WEBHOOK_SECRET },
    });
    serves.push(gitServe);
    const watchServe = await startServe(["--manifests", watched, "--allow-empty", "--log-level", "info"], { stateDir: watchState.stateDir });
    serves.push(watchServe);

    const webhook = async () => {
      const body = JSON.stringify({ ref: "refs/heads/main" });
      const r = await fetch(`${gitServe.url}/api/v1/webhooks/git`, { method: "POST", headers: { "content-type": "application/json", "x-github-event": "push", "x-hub-signature-256": sign(body) }, body });
      if (r.status !== 202) throw new Error(`webhook answered ${r.status}`);
    };
    const commit = async (name: string, tz: string) => {
      writeFileSync(join(repo, "agents", `${name}.yaml`), agentDoc(name, tz));
      await git.add(".").commit(`${name}: TZ ${tz}`);
    };

    /** One way, one round: add (→ started, → answers), then change env (→ new container answers). */
    const measure = async (way: Way, round: number) => {
      const name = `vs-${way}-${round}`;
      const instance = way === "webhook" ? gitState.instance : watchState.instance;
      let t0: number;
      let started: Promise<number>;
      if (way === "bare") {
        t0 = performance.now();
        started = events.next((n) => n === name, t0);
        await run("docker", dockerRunArgs(name, bareNetwork, "UTC"));
      } else if (way === "webhook") {
        await commit(name, "UTC");
        t0 = performance.now();
        started = events.next((n) => n.endsWith(`-${name}`), t0);
        await webhook();
      } else {
        t0 = performance.now();
        started = events.next((n) => n.endsWith(`-${name}`), t0);
        writeFileSync(join(watched, `${name}.yaml`), agentDoc(name, "UTC"));
      }
      const startedAt = await started;
      const firstName = way === "bare" ? name : await rurikoContainer(docker, instance, name);
      const answeredAt = await answers(docker, async () => firstName);
      samples.addToStarted[way].push(startedAt - t0);
      samples.addToAnswers[way].push(answeredAt - t0);
      samples.addStartedToAnswers[way].push(answeredAt - startedAt);
      // Let the agent settle (Ruriko finishes its handshake) before changing it, as a person would.
      await new Promise((r) => setTimeout(r, 1500));

      let t1: number;
      const matchNew = way === "bare" ? (n: string) => n === name : (n: string) => n.endsWith(`-${name}`);
      if (way === "bare") {
        t1 = performance.now();
        await run("docker", ["rm", "-f", name]);
        await run("docker", dockerRunArgs(name, bareNetwork, "Europe/Paris"));
      } else if (way === "webhook") {
        await commit(name, "Europe/Paris");
        t1 = performance.now();
        await webhook();
      } else {
        t1 = performance.now();
        writeFileSync(join(watched, `${name}.yaml`), agentDoc(name, "Europe/Paris"));
      }
      const restartedAt = await events.next(matchNew, t1);
      const changedAt = await answers(docker, () => (way === "bare" ? Promise.resolve(name) : rurikoContainer(docker, instance, name, firstName)));
      samples.changeToAnswers[way].push(changedAt - t1);
      samples.changeStartedToAnswers[way].push(changedAt - restartedAt);
    };

    // A warm-up round for each way, not counted: images and page cache warm, both serves past their first work.
    for (const way of WAYS) await measure(way, -1);
    for (const m of MEASURES) for (const w of WAYS) samples[m][w].length = 0;

    for (let round = 0; round < rounds; round++) {
      const order = WAYS.map((_, i) => WAYS[(i + round) % WAYS.length]!);
      for (const way of order) await measure(way, round);
      console.error(`round ${round + 1}/${rounds}: ${order.map((w) => `${w} ${samples.addToStarted[w].at(-1)!.toFixed(0)}/${samples.changeToAnswers[w].at(-1)!.toFixed(0)} ms`).join(", ")}`);
    }
  } finally {
    events.close();
    for (const s of serves) await s.stop().catch(() => {});
    for (const instance of [gitState.instance, watchState.instance]) await removeInstanceResources(docker, instance).catch(() => {});
    const bare = await docker.listContainers({ all: true, filters: { label: ["ruriko-bench=bare"] } });
    for (const c of bare) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {});
    const volumes = (await docker.listVolumes()).Volumes?.filter((v) => /^vs-bare-.*-data$/.test(v.Name)) ?? [];
    for (const v of volumes) await docker.getVolume(v.Name).remove().catch(() => {});
    await docker.getNetwork(bareNetwork).remove().catch(() => {});
    for (const dir of [repo, watched, gitState.stateDir, watchState.stateDir]) rmSync(dir, { recursive: true, force: true });
  }

  const summary = Object.fromEntries(
    MEASURES.map((m) => {
      const bareMedian = median(samples[m].bare);
      return [m, Object.fromEntries(WAYS.map((w) => {
        const s = samples[m][w];
        return [w, { minMs: Math.round(Math.min(...s)), medianMs: Math.round(median(s)), maxMs: Math.round(Math.max(...s)), ratioToBare: Number((median(s) / bareMedian).toFixed(2)) }];
      }))];
    }),
  ) as VersusDockerResult["summary"];
  return { rounds, samples, summary };
}

export function printVersusDocker(r: VersusDockerResult): void {
  const label: Record<Measure, string> = {
    addToStarted: "add an agent → container started",
    addToAnswers: "add an agent → answers /health",
    changeToAnswers: "change env → new container answers",
    addStartedToAnswers: "(added: started → answers)",
    changeStartedToAnswers: "(changed: new container started → answers)",
  };
  console.log(`Ruriko vs bare docker run, ${r.rounds} interleaved rounds (min / median / max ms; ratio of medians to bare):`);
  for (const m of MEASURES) {
    const s = r.summary[m];
    console.log(`  ${label[m]}: ${WAYS.map((w) => `${w} ${s[w].minMs} / ${s[w].medianMs} / ${s[w].maxMs}${w === "bare" ? "" : ` (${s[w].ratioToBare}×)`}`).join(", ")}`);
  }
}

if (import.meta.main) {
  const rounds = Number(process.argv[2] ?? 12);
  const result = await benchVersusDocker(rounds);
  printVersusDocker(result);
  console.log(JSON.stringify(result.summary));
  process.exit(0);
}
