/**
 * A hostile manifest tree under `ruriko serve` (issue 13): twenty 1 MiB files of `[`, a deep-nesting file and a
 * billion-laughs file are written into the watched directory while /healthz is asked again and again, one
 * request after the other, until the revision is refused. The baseline is /healthz on the same serve, idle,
 * in the same run; the figures are ratios against it, and the serve process's peak RSS. A last round adds
 * costly-but-allowed files (eight of 60,000 keys), which take seconds to parse whatever the limits: what a
 * long read does to /healthz. Each tree is also read in this process, on the main thread, for comparison.
 *   node bench/run.ts --only hostile
 */
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSnapshotFromDirectory } from "../src/api/load.ts";
import { newStateDir } from "../test/helpers/controller-harness.ts";
import { writeHostileTree } from "../test/helpers/hostile-tree.ts";
import { writeTree } from "../test/helpers/manifest-tree.ts";
import { startServe, type ServeProcess } from "../test/helpers/serve-process.ts";
import { median, percentile } from "./timing.ts";

const ROUNDS = 3;
const IDLE_SAMPLES = 300;
const COSTLY_FILES = 8;

export interface HostileResult {
  rounds: number;
  idle: Summary;
  /** /healthz asked from the moment the tree is on disk until the refusal shows in /api/v1/status. */
  hostile: Summary;
  ratio: Ratio;
  /** From the tree on disk to the refusal visible in the status API (includes the source's 300 ms debounce). */
  writtenToRefusedMs: number[];
  /** The hostile tree and eight files of 60,000 keys: seconds of parsing. */
  costly: { healthz: Summary; ratio: Ratio; writtenToRefusedMs: number };
  /** Errors of the refused revision, as the status API gave them in the last hostile round. */
  refusal: string[];
  serveRssMiB: { idle: number; peak: number };
  /** The same trees read in this process, on the main thread, without serve: how long that thread would stop. */
  inProcessLoadMs: { hostile: number; costly: number };
}

interface Summary {
  samples: number;
  medianMs: number;
  p95Ms: number;
  maxMs: number;
}

interface Ratio {
  median: number;
  p95: number;
  max: number;
}

export async function benchHostile(): Promise<HostileResult> {
  const inProcessLoadMs = { hostile: await timeInProcessLoad(0), costly: await timeInProcessLoad(COSTLY_FILES) };
  const { stateDir } = newStateDir();
  const dir = writeTree({ "gosutos/g.yaml": "apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: g}\nspec: {}\n" });
  const serve = await startServe(["--manifests", dir, "--allow-empty"], { stateDir });
  try {
    await waitUntil(async () => !!(await serve.status())?.source.appliedRevision, "the first revision applied", serve);
    const idle: number[] = [];
    for (let i = 0; i < IDLE_SAMPLES; i++) idle.push(await healthz(serve));
    const idleRss = memoryOf(serve.child.pid!).rss;

    const hostile: number[] = [];
    const writtenToRefusedMs: number[] = [];
    let refusal: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const r = await offer(serve, dir, `hostile-${round}`, 0);
      hostile.push(...r.samples);
      writtenToRefusedMs.push(r.ms);
      refusal = r.refusal;
    }
    const costly = await offer(serve, dir, "costly", COSTLY_FILES);
    const peak = memoryOf(serve.child.pid!).hwm;
    const idleSummary = summary(idle);
    return {
      rounds: ROUNDS,
      idle: idleSummary,
      hostile: summary(hostile),
      ratio: ratioOf(summary(hostile), idleSummary),
      writtenToRefusedMs,
      costly: { healthz: summary(costly.samples), ratio: ratioOf(summary(costly.samples), idleSummary), writtenToRefusedMs: costly.ms },
      refusal,
      serveRssMiB: { idle: idleRss, peak },
      inProcessLoadMs,
    };
  } finally {
    await serve.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/**
 * Writes the hostile tree (and `costly` files of 60,000 keys) under `dir/sub`, asks /healthz one request after
 * the other until the refusal naming `sub/` shows in the status API, then removes it again. A new `sub` each
 * time, so that each refusal is told apart by the files it names.
 */
async function offer(serve: ServeProcess, dir: string, sub: string, costly: number): Promise<{ samples: number[]; ms: number; refusal: string[] }> {
  writeHostileTree(dir, sub);
  for (let i = 0; i < costly; i++) writeFileSync(join(dir, sub, `costly-${i}.yaml`), costlyYaml());
  const written = performance.now();
  const samples: number[] = [];
  try {
    for (let i = 0; ; i++) {
      samples.push(await healthz(serve));
      if (i % 5 !== 4) continue;
      const errors = (await serve.status())?.source.errors ?? [];
      if (errors.some((e) => e.file.startsWith(`${sub}/`))) return { samples, ms: Math.round(performance.now() - written), refusal: errors.map((e) => e.text) };
      if (performance.now() - written > 600_000) throw new Error(`${sub}: no refusal after 10 minutes\n${serve.logTail()}`);
    }
  } finally {
    rmSync(join(dir, sub), { recursive: true, force: true });
  }
}

/** 60,000 keys in 1 MB: within every limit, and seconds of parsing for any YAML parser. */
function costlyYaml(): string {
  return Array.from({ length: 60_000 }, (_, k) => `key${k}: value`).join("\n").slice(0, 1_000_000);
}

/** Median of three loads of the tree in this process (after a first one that compiles the schemas). */
async function timeInProcessLoad(costly: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-bench-hostile-"));
  try {
    writeHostileTree(dir, "hostile");
    for (let i = 0; i < costly; i++) writeFileSync(join(dir, "hostile", `costly-${i}.yaml`), costlyYaml());
    await loadSnapshotFromDirectory(dir);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      await loadSnapshotFromDirectory(dir);
      times.push(performance.now() - started);
    }
    return round2(median(times));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function healthz(serve: ServeProcess): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${serve.url}/healthz`);
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`/healthz answered ${response.status}`);
  return performance.now() - started;
}

async function waitUntil(check: () => Promise<boolean>, what: string, serve: ServeProcess): Promise<void> {
  const deadline = Date.now() + 600_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${serve.logTail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** RSS now and its high-water mark (the peak over the process's life), in MiB, from /proc. */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rss: Math.round(kib("VmRSS") / 1024), hwm: Math.round(kib("VmHWM") / 1024) };
}

function summary(samples: number[]): Summary {
  return { samples: samples.length, medianMs: round2(median(samples)), p95Ms: round2(percentile(samples, 95)), maxMs: round2(Math.max(...samples)) };
}

function ratioOf(s: Summary, idle: Summary): Ratio {
  return { median: round2(s.medianMs / idle.medianMs), p95: round2(s.p95Ms / idle.p95Ms), max: round2(s.maxMs / idle.maxMs) };
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
