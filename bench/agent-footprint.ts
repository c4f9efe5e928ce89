/**
 * What one idle agent costs in memory. One agent in its image under the controller (host networking), signed in
 * to a real Synapse, its model the stand-in, two MCP servers up: `gitai-http-tool` (Gitai's own) and
 * `mcp-fetch-server` (what the templates use). It answers a few questions (with and without a tool call) so that
 * every code path has been loaded and run, idles, and then the RSS (and PSS) of the Gitai process and of each
 * MCP server process is read from /proc on the host, a few times, median taken.
 *
 * Baseline in the same run: a bare `node -e "setInterval(…)"` in the same image with the entrypoint's node flags;
 * Gitai's figure is given as a ratio to it. Beside it, the same bare node with only some of Gitai's dependencies
 * imported, to say which part of Gitai's memory is what.
 */
import type Docker from "dockerode";
import { readFileSync } from "node:fs";
import { LABELS } from "../src/runtime/runtime.ts";
import { TEST_AGENT_IMAGE, type TestController } from "../test/helpers/controller-harness.ts";
import { startAgentWorld } from "./agent-world.ts";
import { median } from "./timing.ts";

const WARM_TURNS = 3;
const IDLE_MS = 10_000;
const SAMPLES = 5;
const SAMPLE_EVERY_MS = 1_000;
const BUDGET_MIB = 4096;
const KEEP_ALIVE = "setInterval(() => {}, 1e3)";

/**
 * Bare node, then the same with one part of what Gitai is made of loaded (and idle), each in its own container:
 * the difference to bare is what loading that part costs. The MCP SDK is loaded as its package ships it (the MCP
 * servers' copy in the image); Gitai carries its own inside its bundle.
 */
const BARE_PROGRAMS: Record<string, string> = {
  "bare node": KEEP_ALIVE,
  "+ one fetch (undici)": `require("node:http").createServer((q, s) => s.end("x")).listen(0, "127.0.0.1", function () { fetch("http://127.0.0.1:" + this.address().port).then((r) => r.text()).then(() => ${KEEP_ALIVE}); })`,
  "+ MCP SDK client": `Promise.all([import("@modelcontextprotocol/sdk/client/index.js"), import("@modelcontextprotocol/sdk/client/stdio.js")]).then(() => ${KEEP_ALIVE})`,
  "+ node:http server (ACP server)": `require("node:http").createServer((q, s) => s.end("x")).listen(0, "127.0.0.1", () => ${KEEP_ALIVE})`,
};

interface Memory {
  rssMiB: number;
  /** Shared pages (the node binary, libraries) divided among the processes mapping them; undefined when unreadable. */
  pssMiB: number | undefined;
  /** Pages this process alone maps (USS): what one more such process adds once many share the rest. */
  privateMiB: number | undefined;
}

/** A `kB` field of a /proc file, in MiB. */
function procField(path: string, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(path, "utf8"));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function memoryOf(pid: number): Memory {
  const rss = procField(`/proc/${pid}/status`, "VmRSS");
  if (rss === undefined) throw new Error(`cannot read /proc/${pid}/status (not in this PID namespace?)`);
  const rollup = `/proc/${pid}/smaps_rollup`;
  const clean = procField(rollup, "Private_Clean");
  const dirty = procField(rollup, "Private_Dirty");
  return { rssMiB: rss, pssMiB: procField(rollup, "Pss"), privateMiB: clean === undefined || dirty === undefined ? undefined : clean + dirty };
}

/** A container's processes as host PIDs (docker top answers from the host's view), with their command lines. */
export async function processesOf(docker: Docker, containerId: string): Promise<Array<{ pid: number; args: string }>> {
  const top = await docker.getContainer(containerId).top({ ps_args: "-eo pid,args" });
  const pid = top.Titles.indexOf("PID");
  const args = top.Titles.findIndex((t: string) => t === "COMMAND" || t === "ARGS");
  return (top.Processes as string[][]).map((p) => ({ pid: Number(p[pid]), args: p.slice(args).join(" ") }));
}

export function onlyPid(processes: Array<{ pid: number; args: string }>, marker: string): number {
  const found = processes.filter((p) => p.args.includes(marker));
  if (found.length !== 1) throw new Error(`expected one process running ${marker}, found ${JSON.stringify(processes)}`);
  return found[0]!.pid;
}

/** The node flags of the image's entrypoint (between the node binary and the script), so the baseline runs as Gitai does. */
async function entrypointNode(docker: Docker): Promise<{ node: string; flags: string[] }> {
  const [node, ...rest] = (await docker.getImage(TEST_AGENT_IMAGE).inspect()).Config.Entrypoint as string[];
  const script = rest.findIndex((a) => !a.startsWith("-"));
  return { node: node!, flags: rest.slice(0, script) };
}

/** A container of the agent image running `code` under the entrypoint's node; labelled so that h.stop() removes it. */
async function startBare(h: TestController, node: { node: string; flags: string[] }, code: string): Promise<string> {
  const c = await h.docker.createContainer({
    Image: TEST_AGENT_IMAGE,
    Entrypoint: [node.node, ...node.flags, "-e", code],
    Labels: { [LABELS.instance]: h.instance },
    HostConfig: { NetworkMode: "none", ReadonlyRootfs: true },
  });
  await c.start();
  return c.id;
}

const mib = (m: number) => Math.round(m * 10) / 10;
const medianOf = (values: Array<number | undefined>) => {
  const known = values.filter((v): v is number => v !== undefined);
  return known.length ? mib(median(known)) : null;
};
const summarise = (samples: Memory[]) => ({
  rssMiB: mib(median(samples.map((s) => s.rssMiB))),
  pssMiB: medianOf(samples.map((s) => s.pssMiB)),
  privateMiB: medianOf(samples.map((s) => s.privateMiB)),
});

export async function benchFootprint() {
  const world = await startAgentWorld({ name: "foot", extraMcps: [{ name: "fetch", command: "mcp-fetch-server" }] });
  const { h, model } = world;
  try {
    // Warm: every path a turn takes (Matrix, the model client, a policy decision, an MCP call) has run.
    for (let i = 0; i < WARM_TURNS; i++) {
      await world.turn(`warm-up ${i}`);
      model.script({ toolCalls: [{ name: "web__http_get", arguments: { url: `${world.pageUrl}/page/menu` } }] }, { text: "done" });
      await world.turn(`warm-up with a tool ${i}`);
    }

    const node = await entrypointNode(h.docker);
    const bare = Object.fromEntries(await Promise.all(Object.entries(BARE_PROGRAMS).map(async ([what, code]) => [what, await startBare(h, node, code)] as const)));
    // Idle together: the agent and the baselines have had the same time to settle (and collect garbage).
    await new Promise((r) => setTimeout(r, IDLE_MS));

    const agentProcesses = await processesOf(h.docker, h.state.status.get(world.agent)!.containerId!);
    const pids = {
      gitai: onlyPid(agentProcesses, "/app/gitai.mjs"),
      httpTool: onlyPid(agentProcesses, "gitai-http-tool"),
      fetchServer: onlyPid(agentProcesses, "mcp-fetch-server"),
    };
    const barePids = Object.fromEntries(await Promise.all(Object.entries(bare).map(async ([what, id]) => [what, (await processesOf(h.docker, id))[0]!.pid] as const)));

    const samples: Record<string, Memory[]> = {};
    for (let i = 0; i < SAMPLES; i++) {
      for (const [what, pid] of [...Object.entries(pids), ...Object.entries(barePids)]) (samples[what] ??= []).push(memoryOf(pid));
      await new Promise((r) => setTimeout(r, SAMPLE_EVERY_MS));
    }
    const m = Object.fromEntries(Object.entries(samples).map(([what, s]) => [what, summarise(s)]));
    const gitai = m.gitai!.rssMiB;
    const tool = m.httpTool!.rssMiB;
    const bareNode = m["bare node"]!.rssMiB;
    return {
      nodeFlags: node.flags,
      idleMs: IDLE_MS,
      samples: SAMPLES,
      gitai: m.gitai!,
      httpTool: m.httpTool!,
      fetchServer: m.fetchServer!,
      bareNode: m["bare node"]!,
      gitaiToBareNodeRatio: gitai / bareNode,
      agentsIn4GiB: { gitaiAndHttpTool: Math.floor(BUDGET_MIB / (gitai + tool)), gitaiOnly: Math.floor(BUDGET_MIB / gitai) },
      // The same bare node with parts of Gitai imported: what each part costs to load, over bare.
      importCost: Object.fromEntries(Object.keys(BARE_PROGRAMS).slice(1).map((what) => [what, { ...m[what]!, overBareMiB: mib(m[what]!.rssMiB - bareNode) }])),
      targetMiB: 90,
      targetMet: gitai <= 90,
    };
  } finally {
    await world.stop();
  }
}
