/**
 * npm run bench: every benchmark, results in bench/results/<date>.json and printed as a table.
 *   node bench/run.ts [--only plan|docker|versus|acp|decision|footprint|turn|hostile|idle|kubernetes|kubernetes-real]
 * kubernetes starts (or reuses) the test cluster of scripts/kubernetes/ and runs kwok beside it; kubernetes-real
 * runs 20 agents on the cluster's real kubelet beside `kubectl apply`. Neither is part of the default run
 * (minutes, and a cluster): only with --only.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchAcp } from "./acp-apply.ts";
import { benchFootprint } from "./agent-footprint.ts";
import { benchDecision } from "./approval-decision.ts";
import { benchDocker } from "./docker-converge.ts";
import { benchHostile } from "./hostile-tree.ts";
import { benchPlanCli } from "./plan-cli.ts";
import { benchIdle, describeIdle } from "./idle.ts";
import { benchKubernetesReal, printKubernetesReal } from "./kubernetes-real.ts";
import { benchKubernetesScale, printKubernetesScale } from "./kubernetes-scale.ts";
import { benchTurn } from "./turn-overhead.ts";
import { benchVersusDocker, printVersusDocker } from "./versus-docker.ts";

const { values } = parseArgs({ options: { only: { type: "string" } } });
const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
};

if (!values.only || values.only === "plan") {
  const plan: Array<Record<string, number>> = [];
  for (const n of [100, 1000, 10_000]) {
    // Each size in its own process, so that peak memory is that size's alone.
    const out = execFileSync(process.execPath, [join(import.meta.dirname, "plan-scale.ts"), String(n)], { encoding: "utf8", maxBuffer: 1 << 20 });
    const r = JSON.parse(out.trim().split("\n").at(-1)!) as Record<string, number>;
    plan.push({ ...r, msPerAgent: r.totalMs! / n });
    console.log(`plan ${n} agents: ${r.totalMs!.toFixed(0)} ms (load+validate ${r.loadValidateMs!.toFixed(0)}, plan ${r.planMs!.toFixed(0)}), ${(r.totalMs! / n).toFixed(3)} ms/agent, peak RSS ${r.peakRssMb!.toFixed(0)} MB`);
  }
  results.plan = plan;
  const cli = await benchPlanCli();
  results.planCli = cli;
  for (const way of ["built", "source"] as const) {
    const f = cli[way];
    console.log(`ruriko plan, ${cli.agents} agents, ${way} (whole command, ${cli.rounds} rounds): wall ${f.wallMs.min} / ${f.wallMs.median} / ${f.wallMs.max} ms, peak RSS ${f.peakRssMiB.min} / ${f.peakRssMiB.median} / ${f.peakRssMiB.max} MiB`);
  }
}

if (!values.only || values.only === "docker") {
  const d = await benchDocker();
  results.docker = d;
  console.log(`start → all Ready, ${d.agents} agents: Ruriko ${d.startToReady.rurikoMs.toFixed(0)} ms vs raw Docker ${d.startToReady.rawDockerMs.toFixed(0)} ms = ${d.startToReady.ratio.toFixed(2)}×`);
  console.log(`edit → converged, ${d.agents} agents: Ruriko ${d.editToConverged.rurikoMs.toFixed(0)} ms vs raw Docker ${d.editToConverged.rawDockerMs.toFixed(0)} ms = ${d.editToConverged.ratio.toFixed(2)}×`);
  console.log(`killed → Ready: median ${d.killToReady.medianMs.toFixed(0)} ms, p95 ${d.killToReady.p95Ms.toFixed(0)} ms (bare docker start median ${d.killToReady.bareDockerStartMedianMs.toFixed(0)} ms)`);
}

if (!values.only || values.only === "versus") {
  const v = await benchVersusDocker();
  results.versus = v;
  printVersusDocker(v);
}

if (!values.only || values.only === "acp") {
  const a = await benchAcp();
  results.acp = a;
  console.log(`Gosuto edit → applied, ${a.agents} agents: per agent median ${a.editToApplied.perAgentMedianMs.toFixed(0)} ms, p95 ${a.editToApplied.perAgentP95Ms.toFixed(0)} ms; all ${a.agents} ${a.editToApplied.allAgentsMedianMs.toFixed(0)} ms`);
  console.log(`bare ACP PUT /config: per call median ${a.bareAcpPut.perCallMedianMs.toFixed(1)} ms, p95 ${a.bareAcpPut.perCallP95Ms.toFixed(1)} ms; all ${a.agents} ${a.bareAcpPut.allAgentsMedianMs.toFixed(0)} ms`);
}

if (!values.only || values.only === "decision") {
  const d = await benchDecision();
  results.decision = d;
  console.log(`approval decision → change applied (${d.rounds} rounds; the change's own time, ungated: median ${d.changeOwnTimeMedianMs} ms):`);
  for (const [how, m] of [["ruriko approvals approve (another process)", d.cli], ["in-process vote (as a Matrix reaction)", d.inProcess]] as const) {
    console.log(`  ${how}: median ${m.decisionToAppliedMedianMs} ms, minus the change's own time ${m.minusOwnTimeMedianMs} ms; decision → acting on it median ${m.decisionToActingMedianMs} ms (max ${m.decisionToActingMaxMs} ms)`);
  }
}

if (!values.only || values.only === "footprint") {
  const f = await benchFootprint();
  results.footprint = f;
  console.log(`idle agent, RSS (PSS) after ${f.idleMs / 1000} s idle: Gitai ${f.gitai.rssMiB} MiB (${f.gitai.pssMiB}) = ${f.gitaiToBareNodeRatio.toFixed(2)}× bare node ${f.bareNode.rssMiB} MiB; gitai-http-tool ${f.httpTool.rssMiB} MiB (${f.httpTool.pssMiB}); mcp-fetch-server ${f.fetchServer.rssMiB} MiB (${f.fetchServer.pssMiB})`);
  console.log(`agents in 4 GiB by RSS: ${f.agentsIn4GiB.gitaiAndHttpTool} (Gitai + gitai-http-tool), ${f.agentsIn4GiB.gitaiOnly} (Gitai alone); target Gitai ≤ ${f.targetMiB} MiB ${f.targetMet ? "met" : "NOT met"}`);
}

if (!values.only || values.only === "turn") {
  const t = await benchTurn();
  results.turn = t;
  const { noTool, oneTool } = t.gitaiOverhead;
  console.log(`turn overhead (reply seen − asked − the model's own time, ${t.rounds} rounds): Gitai median ${noTool.medianMs} ms, p95 ${noTool.p95Ms} ms; with one tool call median ${oneTool.medianMs} ms, p95 ${oneTool.p95Ms} ms; echo bot baseline median ${t.echoBaseline.medianMs} ms, p95 ${t.echoBaseline.p95Ms} ms`);
  console.log(`Gitai's own share (overhead − echo baseline, medians): ${t.gitaiOwnShare.noToolMedianMs} ms, with one tool call ${t.gitaiOwnShare.oneToolMedianMs} ms; target ≤ ${t.targetMs} ms median: overhead ${t.targetMet.overhead ? "met" : "NOT met"}, own share ${t.targetMet.ownShare ? "met" : "NOT met"}`);
}

if (!values.only || values.only === "hostile") {
  const h = await benchHostile();
  results.hostile = h;
  console.log(`hostile tree under serve (${h.rounds} rounds; twenty 1 MiB files of "[", a deep file, a billion-laughs file): written → refused ${h.writtenToRefusedMs.join(" / ")} ms; peak RSS ${h.serveRssMiB.peak} MiB (idle ${h.serveRssMiB.idle} MiB)`);
  console.log(`  /healthz idle: median ${h.idle.medianMs} ms, p95 ${h.idle.p95Ms} ms, max ${h.idle.maxMs} ms; while the tree is read: median ${h.hostile.medianMs} ms, p95 ${h.hostile.p95Ms} ms, max ${h.hostile.maxMs} ms (${h.hostile.samples} requests) = ${h.ratio.median}× / ${h.ratio.p95}× / ${h.ratio.max}×`);
  console.log(`  with eight costly-but-allowed files too: written → refused ${h.costly.writtenToRefusedMs} ms; /healthz median ${h.costly.healthz.medianMs} ms, p95 ${h.costly.healthz.p95Ms} ms, max ${h.costly.healthz.maxMs} ms (${h.costly.healthz.samples} requests) = ${h.costly.ratio.median}× / ${h.costly.ratio.p95}× / ${h.costly.ratio.max}×`);
  console.log(`  the same trees read in-process, on the main thread: ${h.inProcessLoadMs.hostile} ms, with the costly files ${h.inProcessLoadMs.costly} ms`);
}

if (!values.only || values.only === "idle") {
  const i = await benchIdle();
  results.idle = i;
  console.log(`serve idle, ${i.agents} agents Ready, Matrix off, after ${i.settleS} s settling, over ${i.windowS} s:`);
  console.log(`  ${describeIdle("built (node dist/src/cli/ruriko.js)", i.built)}`);
  console.log(`  ${describeIdle("source (node src/cli/ruriko.ts)", i.source)}`);
  console.log(`  ${describeIdle("bare node (baseline)", i.bareNode)}`);
  console.log(`  target ≤ ${i.target.cpuPercent} % CPU: ${i.targetMet.cpu ? "met" : "NOT met"}; ≤ ${i.target.rssMiB} MiB RSS: ${i.targetMet.rss ? "met" : "NOT met"}`);
}

if (values.only === "kubernetes") {
  const k = await benchKubernetesScale();
  results.kubernetes = k;
  printKubernetesScale(k);
}

if (values.only === "kubernetes-real") {
  const k = await benchKubernetesReal();
  results.kubernetesReal = k;
  printKubernetesReal(k);
}

const dir = join(import.meta.dirname, "results");
mkdirSync(dir, { recursive: true });
const file = join(dir, `${String(results.date).replace(/[:.]/g, "-")}.json`);
writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
console.log(`results in ${file}`);
