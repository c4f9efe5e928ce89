/**
 * `ruriko serve` at idle (issue 15): two agents Ready, Matrix off, a directory source, nothing changing. Serve runs
 * as the image runs it (the tsc build: `node dist/src/cli/ruriko.js serve`) and as a checkout runs it (`node
 * src/cli/ruriko.ts serve`, Node stripping the types), both with the entry point's V8 flags, side by side, each with its own state and its own two
 * agents. Both are left to settle after their agents are Ready — the manifest reader's worker thread ends after
 * 60 s without a load, and V8's memory reducer gives back what starting took in a few full GCs over the next
 * minutes — then, over one window, the CPU time of each serve process and of every process it started (utime +
 * stime from /proc) and its memory (VmRSS, PSS, anonymous) are read. The main thread's voluntary context switches
 * say how often it wakes up: a poll shows there before it shows in CPU time.
 *
 * Baseline in the same window: a bare `node -e "setInterval(() => {}, 1e9)"`.
 *   node bench/run.ts --only idle
 */
import Docker from "dockerode";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { StatusReport } from "../src/controller/status-report.ts";
import { ensureAgentImage, newStateDir, removeInstanceResources } from "../test/helpers/controller-harness.ts";
import { agentYaml, GOSUTO_NEWSBOT, writeTree } from "../test/helpers/manifest-tree.ts";
import { freePort } from "../test/helpers/synapse.ts";
import { buildRuriko, ENTRY_POINT_FLAGS } from "./build.ts";
import { median } from "./timing.ts";

const REPO = join(import.meta.dirname, "..");
/** After the agents are Ready: past the loader thread's 60 s idle timeout and the memory reducer's GCs after it. */
const SETTLE_MS = 240_000;
/** 180 s: one clock tick (10 ms) is 0.006 % of one core; six agent polls of each agent fall in it. */
const WINDOW_MS = 180_000;
const RSS_EVERY_MS = 5_000;
const TARGET = { cpuPercent: 0.1, rssMiB: 100 };

export interface IdleFigures {
  /** CPU time of the process and every process it started, over the window, in % of one core. */
  cpuPercent: number;
  /** VmRSS at the end of the window, and its median over the window (sampled every 5 s). */
  rssMiB: number;
  rssMedianMiB: number;
  /** Shared pages (the node binary, libraries) divided among the processes that map them. */
  pssMiB: number;
  /** Anonymous memory: the heap, V8's and malloc's; what the process alone holds. */
  anonMiB: number;
  /** VmRSS of the processes it started, summed (none with a directory source). */
  childrenRssMiB: number;
  threads: number;
  /** Voluntary context switches of the main thread per second: how often it wakes up. */
  mainThreadWakeupsPerS: number;
}

export interface IdleResult {
  agents: number;
  settleS: number;
  windowS: number;
  built: IdleFigures;
  source: IdleFigures;
  bareNode: IdleFigures;
  target: typeof TARGET;
  /** Judged on the built serve (what the image runs), by VmRSS. */
  targetMet: { cpu: boolean; rss: boolean };
}

export async function benchIdle(): Promise<IdleResult> {
  const docker = new Docker();
  await ensureAgentImage(docker);
  const built = buildRuriko();
  try {
    const dir = writeTree({
      "gosutos/newsbot.yaml": GOSUTO_NEWSBOT,
      "agents/alpha.yaml": agentYaml("alpha"),
      "agents/beta.yaml": agentYaml("beta"),
    });
    const [builtServe, sourceServe] = await Promise.all([startIdleServe(join(built, "src/cli/ruriko.js"), dir), startIdleServe(join(REPO, "src/cli/ruriko.ts"), dir)]);
    const bare = spawn(process.execPath, ["-e", "setInterval(() => {}, 1e9)"], { stdio: "ignore" });
    try {
      await Promise.all([builtServe.ready, sourceServe.ready]);
      await sleep(SETTLE_MS);
      const [builtFigures, sourceFigures, bareFigures] = await Promise.all([measure(builtServe.child.pid!), measure(sourceServe.child.pid!), measure(bare.pid!)]);
      return {
        agents: 2,
        settleS: SETTLE_MS / 1000,
        windowS: WINDOW_MS / 1000,
        built: builtFigures,
        source: sourceFigures,
        bareNode: bareFigures,
        target: TARGET,
        targetMet: { cpu: builtFigures.cpuPercent <= TARGET.cpuPercent, rss: builtFigures.rssMiB <= TARGET.rssMiB },
      };
    } finally {
      bare.kill("SIGKILL");
      await Promise.all([builtServe.stop(docker), sourceServe.stop(docker)]);
    }
  } finally {
    rmSync(built, { recursive: true, force: true });
  }
}

/** `npm run build` into a directory of its own (the checkout's dist/ is left alone), with node_modules beside it. */

interface IdleServe {
  child: ChildProcess;
  /** Resolves once both agents are Ready. */
  ready: Promise<void>;
  /** SIGTERM, then removes what its instance created and its state. */
  stop(docker: Docker): Promise<void>;
}

/** Starts serve on `dir` with a state of its own, at the default log level (as an operator runs it). */
async function startIdleServe(entry: string, dir: string): Promise<IdleServe> {
  const { stateDir, instance } = newStateDir();
  const port = await freePort();
  const logFile = join(stateDir, "serve.log");
  const child = spawn(process.execPath, [...ENTRY_POINT_FLAGS, entry, "serve", "--manifests", dir, "--state-dir", stateDir, "--http", `127.0.0.1:${port}`], { stdio: ["ignore", openSync(logFile, "a"), openSync(logFile, "a")] });
  const ready = untilReady(`http://127.0.0.1:${port}`, child, logFile);
  ready.catch(() => {});
  return {
    child,
    ready,
    async stop(docker) {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      await removeInstanceResources(docker, instance);
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

async function untilReady(url: string, serve: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 300_000;
  while (Date.now() < deadline) {
    if (serve.exitCode !== null) throw new Error(`serve exited with ${serve.exitCode}:\n${tail(logFile)}`);
    const status = await fetch(`${url}/api/v1/status`).then((r) => r.json() as Promise<StatusReport>, () => undefined);
    const ready = status?.agents.filter((a) => a.conditions.some((c) => c.type === "Ready" && c.status === "True")) ?? [];
    if (ready.length === 2) return;
    await sleep(200);
  }
  throw new Error(`the two agents were not Ready after 5 minutes:\n${tail(logFile)}`);
}

/** CPU over the window (the process and its descendants), memory sampled along it. */
async function measure(pid: number): Promise<IdleFigures> {
  const tick = clockTick();
  const cpuBefore = cpuTicksOf(pid);
  const wakeupsBefore = wakeupsOf(pid);
  const started = performance.now();
  const rss: number[] = [];
  while (performance.now() - started < WINDOW_MS) {
    rss.push(kB(`/proc/${pid}/status`, "VmRSS") / 1024);
    await sleep(Math.max(0, Math.min(RSS_EVERY_MS, WINDOW_MS - (performance.now() - started))));
  }
  const seconds = (performance.now() - started) / 1000;
  const cpuAfter = cpuTicksOf(pid);
  const children = descendantsOf(pid).reduce((sum, child) => sum + (kBOrZero(`/proc/${child}/status`, "VmRSS") / 1024), 0);
  return {
    cpuPercent: round3(((cpuAfter - cpuBefore) / tick / seconds) * 100),
    rssMiB: round1(kB(`/proc/${pid}/status`, "VmRSS") / 1024),
    rssMedianMiB: round1(median(rss)),
    pssMiB: round1(kB(`/proc/${pid}/smaps_rollup`, "Pss") / 1024),
    anonMiB: round1(kB(`/proc/${pid}/status`, "RssAnon") / 1024),
    childrenRssMiB: round1(children),
    threads: readdirSync(`/proc/${pid}/task`).length,
    mainThreadWakeupsPerS: round1((wakeupsOf(pid) - wakeupsBefore) / seconds),
  };
}

/** utime + stime of the process (all its threads) and of every live descendant, in clock ticks. */
function cpuTicksOf(pid: number): number {
  return [pid, ...descendantsOf(pid)].reduce((sum, p) => sum + ticksOf(p), 0);
}

function ticksOf(pid: number): number {
  try {
    // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are 14 and 15.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

function descendantsOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const task of tasks) {
    let children = "";
    try {
      children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8");
    } catch {
      continue;
    }
    for (const child of children.split(" ").filter(Boolean).map(Number)) out.push(child, ...descendantsOf(child));
  }
  return out;
}

function wakeupsOf(pid: number): number {
  return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/task/${pid}/status`, "utf8"))?.[1] ?? 0);
}

function clockTick(): number {
  const out = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  return Number(out.stdout.trim()) || 100;
}

function kB(path: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(path, "utf8"));
  if (!m) throw new Error(`no ${field} in ${path}`);
  return Number(m[1]);
}

function kBOrZero(path: string, field: string): number {
  try {
    return kB(path, field);
  } catch {
    return 0;
  }
}

function tail(file: string, lines = 30): string {
  return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round1 = (n: number) => Math.round(n * 10) / 10;
const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** One line per figure set, for the bench table. */
export function describeIdle(label: string, f: IdleFigures): string {
  return `${label}: CPU ${f.cpuPercent.toFixed(3)} % of one core, RSS ${f.rssMiB} MiB (median ${f.rssMedianMiB}, PSS ${f.pssMiB}, anonymous ${f.anonMiB}), children ${f.childrenRssMiB} MiB, ${f.threads} threads, main thread wakes ${f.mainThreadWakeupsPerS}/s`;
}
