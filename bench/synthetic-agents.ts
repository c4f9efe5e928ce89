/**
 * The synthetic manifest tree of the plan benchmarks: N agents (an Agent and a Gosuto each, 500 to a directory)
 * and one ApprovalPolicy. Every agent's plan is its container created and its first Gosuto applied.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function writeSyntheticAgents(dir: string, n: number): void {
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
}
