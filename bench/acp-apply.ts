/**
 * Gosuto edit → applied inside every one of 20 running agents, through Ruriko (snapshot → reconcile →
 * GET /status → PUT /config), beside the bare ACP `PUT /config` calls to the same agents at the same
 * concurrency, measured in the same run.
 */
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import PQueue from "p-queue";
import { stringify } from "yaml";
import { AcpClient } from "../src/acp/client.ts";
import { parseManifestFile } from "../src/api/parse.ts";
import { isReady, startTestController, TEST_AGENT_IMAGE } from "../test/helpers/controller-harness.ts";
import { writeTree } from "../test/helpers/manifest-tree.ts";
import { percentile, until } from "./timing.ts";

const AGENTS = 20;
const CONCURRENCY = 4;
const ROUNDS = 5;
const names = Array.from({ length: AGENTS }, (_, i) => `acp-${i}`);
const gosuto = (name: string, round: number) => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec:\n  persona: {systemPrompt: "round ${round}"}\n`;
const agent = (name: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec: {image: "${TEST_AGENT_IMAGE}", gosuto: ${name}}\n`;

export async function benchAcp() {
  // No periodic /status polls during the measurement: only the edit drives the pushes.
  const h = await startTestController({ concurrency: CONCURRENCY, agentPollMs: 600_000 });
  const files: Record<string, string> = {};
  for (const n of names) files[`${n}.yaml`] = `${gosuto(n, 0)}---\n${agent(n)}`;
  const dir = writeTree(files);
  try {
    await h.offer(dir);
    await until(() => names.every((n) => isReady(h.state.status.get(n))));

    const perAgent: number[] = [];
    const allApplied: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const want = new Map<string, string>();
      for (const n of names) {
        const text = gosuto(n, round);
        writeFileSync(join(dir, `${n}.yaml`), `${text}---\n${agent(n)}`);
        want.set(n, parseManifestFile("g.yaml", Buffer.from(text)).objects[0]!.digest);
      }
      const seen = new Map<string, number>();
      const t0 = performance.now();
      await h.offer(dir);
      await until(() => {
        for (const n of names) if (!seen.has(n) && h.state.status.get(n)?.gosutoDigest === want.get(n)) seen.set(n, performance.now() - t0);
        return seen.size === AGENTS;
      });
      allApplied.push(Math.max(...seen.values()));
      perAgent.push(...seen.values());
    }

    // The baseline: the same PUTs straight to the agents, same concurrency.
    const acp = new AcpClient();
    const endpoints = await Promise.all(
      names.map(async (n) => {
        const [c] = await h.containersOf(n);
        const port = c!.Ports.find((p) => p.IP === "127.0.0.1")!.PublicPort;
        return { agent: n, baseUrl: `http://127.0.0.1:${port}`, token: h.vault.tokens.get(n)! };
      }),
    );
    const barePut: number[] = [];
    const bareAll: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const queue = new PQueue({ concurrency: CONCURRENCY });
      const t0 = performance.now();
      await Promise.all(
        endpoints.map((ep) =>
          queue.add(async () => {
            const [obj] = parseManifestFile("g.yaml", Buffer.from(gosuto(ep.agent, 100 + round))).objects;
            const s = performance.now();
            await acp.putConfig(ep, { gosuto: stringify(obj!.object), digest: obj!.digest }, `bench-${round}`);
            barePut.push(performance.now() - s);
          }),
        ),
      );
      bareAll.push(performance.now() - t0);
    }
    return {
      agents: AGENTS,
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
      editToApplied: { perAgentMedianMs: percentile(perAgent, 50), perAgentP95Ms: percentile(perAgent, 95), allAgentsMedianMs: percentile(allApplied, 50) },
      bareAcpPut: { perCallMedianMs: percentile(barePut, 50), perCallP95Ms: percentile(barePut, 95), allAgentsMedianMs: percentile(bareAll, 50) },
    };
  } finally {
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
