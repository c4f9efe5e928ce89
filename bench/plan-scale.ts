/**
 * Plan N synthetic agents: generate a manifest tree, then load + validate + plan it, in this process, and
 * report time and peak memory. Run once per size in its own process (bench/run.ts) so peak RSS is per size.
 * `cpuMs` is the process's CPU time over the same span (GC helper threads included): steadier than wall time
 * on a machine shared with other work, for comparing two versions.
 *   node bench/plan-scale.ts N
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSnapshotFromDirectory } from "../src/api/load.ts";
import { planFromState } from "../src/controller/plan-from-state.ts";
import { writeSyntheticAgents } from "./synthetic-agents.ts";

const n = Number(process.argv[2] ?? 100);
const dir = mkdtempSync(join(tmpdir(), "ruriko-bench-plan-"));
try {
  writeSyntheticAgents(dir, n);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const snapshot = await loadSnapshotFromDirectory(dir);
  const loaded = performance.now();
  if (snapshot.errors.length > 0) throw new Error(`synthetic manifests invalid: ${snapshot.errors[0]!.message}`);
  const plan = planFromState(snapshot, [], undefined);
  const planned = performance.now();
  const cpu = process.cpuUsage(cpuBefore);
  // Each agent: its container created, and its first Gosuto applied.
  if (plan.items.length !== 2 * n) throw new Error(`expected ${2 * n} changes, got ${plan.items.length}`);
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify({ agents: n, objects: snapshot.objects.size, loadValidateMs: loaded - started, planMs: planned - loaded, totalMs: planned - started, cpuMs: (cpu.user + cpu.system) / 1000, peakRssMb }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
