/**
 * `ruriko plan` over N synthetic agents as a user runs it from the image: the `tsc` build with the entry point's
 * V8 flags, in its own process, with an empty state directory (no engine is asked). Reports the whole command's
 * wall time (Node's start, module loading and printing the 2·N-line plan included) and the process's peak RSS,
 * beside the same command from the sources (`node src/cli/ruriko.ts`, Node stripping the types), in interleaved
 * rounds. The in-process figure of load + validate + plan alone is plan-scale.ts's.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildRuriko, ENTRY_POINT_FLAGS } from "./build.ts";
import { writeSyntheticAgents } from "./synthetic-agents.ts";
import { median } from "./timing.ts";

const REPO = join(import.meta.dirname, "..");
/** Loaded before the CLI: prints the process's peak RSS (KiB) on stderr as it exits. */
const PEAK_RSS_ON_EXIT = 'data:text/javascript,process.on("exit",()=>process.stderr.write("\\npeak-rss-kib "+process.resourceUsage().maxRSS+"\\n"))';

export interface PlanCliFigures {
  wallMs: { min: number; median: number; max: number };
  peakRssMiB: { min: number; median: number; max: number };
}
export interface PlanCliResult {
  agents: number;
  rounds: number;
  built: PlanCliFigures;
  source: PlanCliFigures;
  target: { peakRssMB: number };
}

function runPlan(entry: string, manifests: string, stateDir: string): { wallMs: number; peakRssMiB: number } {
  const started = performance.now();
  const r = spawnSync(process.execPath, [...ENTRY_POINT_FLAGS, "--import", PEAK_RSS_ON_EXIT, entry, "plan", "--manifests", manifests, "--state-dir", stateDir], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  const wallMs = performance.now() - started;
  if (r.status !== 0 || !/\d+ change\(s\)/.test(r.stdout.slice(-200))) throw new Error(`ruriko plan failed (${r.status}): ${r.stderr.slice(-300)}`);
  const peak = /peak-rss-kib (\d+)/.exec(r.stderr);
  if (!peak) throw new Error("ruriko plan exited without its peak RSS");
  return { wallMs, peakRssMiB: Number(peak[1]) / 1024 };
}

function summary(xs: number[]): { min: number; median: number; max: number } {
  return { min: Math.round(Math.min(...xs)), median: Math.round(median(xs)), max: Math.round(Math.max(...xs)) };
}

export async function benchPlanCli(agents = 10_000, rounds = 5): Promise<PlanCliResult> {
  const built = buildRuriko();
  const manifests = mkdtempSync(join(tmpdir(), "ruriko-bench-plan-cli-"));
  const stateDir = mkdtempSync(join(tmpdir(), "ruriko-bench-plan-state-"));
  try {
    writeSyntheticAgents(manifests, agents);
    const entries = { built: join(built, "src/cli/ruriko.js"), source: join(REPO, "src/cli/ruriko.ts") };
    const samples = { built: { wall: [] as number[], rss: [] as number[] }, source: { wall: [] as number[], rss: [] as number[] } };
    // One warm-up of each (page cache), then rounds whose order alternates.
    for (const entry of Object.values(entries)) runPlan(entry, manifests, stateDir);
    for (let round = 0; round < rounds; round++) {
      for (const way of round % 2 === 0 ? (["built", "source"] as const) : (["source", "built"] as const)) {
        const r = runPlan(entries[way], manifests, stateDir);
        samples[way].wall.push(r.wallMs);
        samples[way].rss.push(r.peakRssMiB);
      }
    }
    const figures = (way: "built" | "source"): PlanCliFigures => ({ wallMs: summary(samples[way].wall), peakRssMiB: summary(samples[way].rss) });
    return { agents, rounds, built: figures("built"), source: figures("source"), target: { peakRssMB: 150 } };
  } finally {
    for (const dir of [built, manifests, stateDir]) rmSync(dir, { recursive: true, force: true });
  }
}
