/**
 * One Gitai agent as an operator runs it, for the agent benchmarks: in its image under the controller with host
 * networking, signed in to a real Synapse as an existing account, the model stand-in as its model (key granted
 * through a SecretBinding), `gitai-http-tool` allowed to read one loopback HTTP server (and any other MCP servers
 * asked for, allowed nothing). Alice, in the bench process, asks it things through her own /sync long poll.
 */
import { rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { AcpClient, type AcpEndpoint } from "../src/acp/client.ts";
import type { AcpStatus } from "../src/api/generated/types.ts";
import { agentMatrixTokenSecret } from "../src/controller/agent-config.ts";
import { startTestController, TEST_AGENT_IMAGE, type TestController } from "../test/helpers/controller-harness.ts";
import { writeTree } from "../test/helpers/manifest-tree.ts";
import { startModelStandin, type ModelStandin } from "../test/helpers/model-standin.ts";
import { startSynapse, type SynapseHandle } from "../test/helpers/synapse.ts";
import { Asker, matrixApi, type MatrixUser } from "../test/helpers/matrix-chat.ts";

export interface AgentWorld {
  h: TestController;
  synapse: SynapseHandle;
  model: ModelStandin;
  alice: MatrixUser;
  asker: Asker;
  /** The agent's room, where alice is its only allowed sender. */
  room: string;
  /** A loopback HTTP server the agent's `web__http_get` may read, under `${pageUrl}/page/`. */
  pageUrl: string;
  agent: string;
  /** The agent's ACP endpoint (host networking: its own 127.0.0.1 port). */
  endpoint(): Promise<AcpEndpoint>;
  /** Asks in the agent's room and waits for the reply; returns the turn's chat completions and its times. */
  turn(question: string): Promise<{ sentAt: number; answeredAt: number; standinMs: number; completions: number }>;
  stop(): Promise<void>;
}

export interface McpEntry {
  name: string;
  command: string;
}

const gosuto = (name: string, o: { room: string; alice: string; pageUrl: string; modelUrl: string; mcps: readonly McpEntry[] }) => `apiVersion: ruriko.dev/v1alpha1
kind: Gosuto
metadata: {name: ${name}}
spec:
  trust:
    allowedRooms: ["${o.room}"]
    allowedSenders: ["${o.alice}"]
  mcps:
${o.mcps.map((m) => `    - {name: ${m.name}, command: ${m.command}}\n`).join("")}  capabilities:
    - {name: page, mcp: web, tool: http_get, allow: true, constraints: {url_prefix: "${o.pageUrl}/page/"}}
    - {name: deny-all, mcp: "*", tool: "*", allow: false}
  persona:
    llmProvider: openai
    baseUrl: "${o.modelUrl}"
    model: standin-large
    systemPrompt: You answer briefly.
    apiKeySecretRef: llm-key
  limits: {maxTurnSteps: 4}
---
apiVersion: ruriko.dev/v1alpha1
kind: Agent
metadata: {name: ${name}}
spec:
  image: ${TEST_AGENT_IMAGE}
  gosuto: ${name}
  matrix: {userId: "@${name}:localhost"}
  resources: {memory: 512Mi}
---
apiVersion: ruriko.dev/v1alpha1
kind: SecretBinding
metadata: {name: ${name}-llm}
spec: {agent: ${name}, secret: llm-key}
`;

const WEB: McpEntry = { name: "web", command: "gitai-http-tool" };

/** Every part the Gosuto asks for is up: in its room, every MCP server running, the model probed. */
const working = (s: AcpStatus | undefined, room: string, mcps: readonly McpEntry[]) =>
  !!s && s.conversation?.state === "connected" && !!s.conversation.rooms?.includes(room) && s.model?.state === "ready" &&
  mcps.every((m) => s.mcps.some((x) => x.name === m.name && x.state === "running"));

function startPageServer(): Promise<Server> {
  const server = createServer((req, res) => res.end(req.url?.startsWith("/page/") ? "Today: lentil soup." : "no"));
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** The grant of the model key waits for approval (no policy in force): the local operator approves what is pending. */
function approvePending(h: TestController): void {
  const pending = h.state.approvals.list({ status: "pending" });
  for (const r of pending) h.state.approvals.vote(r.id, { approver: "cli:bench", decision: "approve", source: "cli", override: true });
  if (pending.length > 0) h.controller.flushStateChanges();
}

export async function startAgentWorld(options: { name: string; extraMcps?: readonly McpEntry[] }): Promise<AgentWorld> {
  const mcps = [WEB, ...(options.extraMcps ?? [])];
  // One after the other, each stopped on the way out: a server left open would keep the bench process alive.
  const stops: Array<() => Promise<unknown> | void> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await Promise.resolve(s()).catch(() => {});
  };
  try {
    const synapse = await startSynapse();
    stops.push(() => synapse.stop());
    const model = await startModelStandin();
    stops.push(() => model.close());
    const page = await startPageServer();
    stops.push(() => new Promise((r) => page.close(r)));
    const pageUrl = `http://127.0.0.1:${(page.address() as AddressInfo).port}`;
    const alice = await synapse.registerUser("alice");
    const bot = await synapse.registerUser(options.name);
    const room = (await matrixApi(synapse.baseUrl, alice.accessToken, "POST", "/createRoom", { preset: "private_chat", invite: [bot.userId] })).room_id as string;

    // No periodic /status polls: nothing but the benchmark's own traffic wakes the agent.
    const h = await startTestController({ agentNetwork: "host", agentMatrixHomeserver: synapse.baseUrl, agentPollMs: 600_000 });
    stops.push(() => h.stop());
    h.vault.secrets.set("llm-key", Buffer.from("sk-bench"));
    h.vault.secrets.set(agentMatrixTokenSecret(options.name), Buffer.from(bot.accessToken));
    const dir = writeTree({ [`${options.name}.yaml`]: gosuto(options.name, { room, alice: alice.userId, pageUrl, modelUrl: model.baseUrl, mcps }) });
    stops.push(() => rmSync(dir, { recursive: true, force: true }));

    const acp = new AcpClient();
    const endpoint = async (): Promise<AcpEndpoint> => {
      const [c] = await h.runtime.list(options.name);
      if (c?.controlHostPort === undefined || !h.vault.tokens.get(options.name)) throw new Error(`${options.name} has no ACP endpoint yet`);
      return { agent: options.name, baseUrl: `http://127.0.0.1:${c.controlHostPort}`, token: h.vault.tokens.get(options.name)! };
    };
    await h.offer(dir);
    await untilWorking(h, options.name, async () => acp.status(await endpoint(), "bench", { retries: 0 }), room, mcps);

    const asker = new Asker(synapse.baseUrl, alice);
    await asker.start();
    stops.push(() => asker.stop());
    return {
      h, synapse, model, alice, asker, room, pageUrl, agent: options.name, endpoint, stop,
      async turn(question) {
        const before = model.requests.length;
        const { eventId, sentAt } = await asker.ask(room, question);
        const answeredAt = await asker.answeredAt(eventId);
        const completions = model.requests.slice(before).filter((r) => r.path === "/v1/chat/completions");
        return { sentAt, answeredAt, standinMs: completions.reduce((sum, r) => sum + (r.durationMs ?? 0), 0), completions: completions.length };
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function untilWorking(h: TestController, agent: string, status: () => Promise<AcpStatus>, room: string, mcps: readonly McpEntry[]): Promise<void> {
  const deadline = Date.now() + 180_000;
  let last: AcpStatus | undefined;
  while (!working(last, room, mcps)) {
    if (Date.now() > deadline) throw new Error(`the agent never came up; last status: ${JSON.stringify(last)}; controller: ${JSON.stringify(h.state.status.get(agent))}`);
    approvePending(h);
    last = await status().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
  }
}
