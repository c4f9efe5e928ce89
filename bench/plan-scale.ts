/**
 * Plan N synthetic agents: generate a manifest tree, then load + validate + plan it, in this process, and
 * report time and peak memory. Run once per size in its own process (bench/run.ts) so peak RSS is per size.
 * `cpuMs` is the process's CPU time over the same span (GC helper threads included): steadier than wall time
 * on a machine shared with other work, for comparing two versions.
 *   node bench/plan-scale.ts N
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSnapshotFromDirectory } from "../src/api/load.ts";
import { planFromState } from "../src/controller/plan-from-state.ts";

const n = Number(process.argv[2] ?? 100);
const dir = mkdtempSync(join(tmpdir(), "ruriko-bench-plan-"));
try {
  const perDir = 500;
  for (let i = 0; i < n; i++) {
    const sub = join(dir, `team-${Math.floor(i / perDir)}`);
    if (i % perDir === 0) mkdirSync(sub, { recursive: true });
    const name = `agent-${i}`;
    writeFileSync(
      join(sub, `${name}.yaml`),
      `apiVersion: ruriko.dev/v1alpha1
kind: Agent
metadata: {name: ${name}, labels: {team: t${i % 7}}}
spec:
  image: ruriko/gitai:0.1.${i % 3}
  gosuto: ${name}
  env: {TZ: UTC, SHARD: "${i % 16}"}
  resources: {memory: 128Mi, cpus: 0.5}
---
apiVersion: ruriko.dev/v1alpha1
kind: Gosuto
metadata: {name: ${name}}
spec:
  trust: {allowedRooms: ["!room${i}:localhost"], allowedSenders: ["@owner:localhost"]}
  limits: {maxTokensPerRequest: 4000, maxRequestsPerMinute: 10}
  mcps:
    - {name: fetch, command: mcp-fetch-server}
  capabilities:
    - {name: fetch, mcp: fetch, tool: fetch, allow: true, constraints: {method: GET}}
    - {name: deny-all, mcp: "*", tool: "*", allow: false}
`,
    );
  }
  writeFileSync(
    join(dir, "policy.yaml"),
    `apiVersion: ruriko.dev/v1alpha1
kind: ApprovalPolicy
metadata: {name: default}
spec:
  room: "!approvals:localhost"
  approvers: ["@alice:localhost"]
  rules: [{match: {kind: Agent, operation: update, fields: [image]}, require: approval}]
`,
  );
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
