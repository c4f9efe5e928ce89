/**
 * The cron-agent template as an operator uses it: templates/cron-agent/gosuto.yaml with its room, people, model
 * and schedule set, run by the controller in the agent image (host networking) on a real Synapse. On schedule
 * its prompt is a turn: the model stand-in asks for a page, `mcp-fetch-server` (shipped in the image) fetches it
 * under the template's policy, and the digest is posted to the target room.
 *
 * The fetch server refuses private addresses, as it should for an agent on the web, so the page comes through
 * an egress proxy — as in many deployments: a loopback CONNECT proxy the test runs, named by the server's
 * standard proxy variables (`mcps[].env`), that tunnels every site to the test's page server.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, stringify } from "yaml";
import { AcpClient, type AcpEndpoint } from "../../src/acp/client.ts";
import type { AcpStatus, GosutoManifest } from "../../src/api/generated/types.ts";
import { agentMatrixTokenSecret } from "../../src/controller/agent-config.ts";
import { startTestController, TEST_AGENT_IMAGE, waitFor, type TestController } from "../helpers/controller-harness.ts";
import { writeTree } from "../helpers/manifest-tree.ts";
import { matrixApi, timeline, type MatrixUser } from "../helpers/matrix-chat.ts";
import { startModelStandin, type ModelStandin, type RecordedRequest } from "../helpers/model-standin.ts";
import { startSynapse, type SynapseHandle } from "../helpers/synapse.ts";

const TEMPLATE = join(import.meta.dirname, "../../templates/cron-agent/gosuto.yaml");
const NAME = "digest";
const listen = (server: Server) => new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));

describe("the cron-agent template, end to end in the agent image (real Synapse, mcp-fetch-server, the model stand-in)", () => {
  let synapse: SynapseHandle;
  let model: ModelStandin;
  let h: TestController;
  let alice: MatrixUser;
  let room: string;
  let pages: Server;
  let proxy: Server;
  let dir: string;
  /** Sites asked of the proxy (CONNECT host:port), and pages asked of the page server (Host + path). */
  const tunnelled: string[] = [];
  const served: string[] = [];
  const acp = new AcpClient({ retries: 0 });

  const endpoint = async (): Promise<AcpEndpoint> => {
    const [c] = await h.runtime.list(NAME);
    const token = h.vault.tokens.get(NAME);
    if (c?.controlHostPort === undefined || !token) throw new Error("no ACP endpoint yet");
    return { agent: NAME, baseUrl: `http://127.0.0.1:${c.controlHostPort}`, token };
  };
  const status = async () => acp.status(await endpoint(), "test") as Promise<AcpStatus>;
  const toolMessages = (r: RecordedRequest) => ((r.body.messages as Array<{ role: string; content: string }>) ?? []).filter((m) => m.role === "tool").map((m) => m.content);

  before(async () => {
    [synapse, model] = await Promise.all([startSynapse(), startModelStandin()]);
    pages = createServer((req, res) => {
      served.push(`${req.headers.host}${req.url}`);
      res.setHeader("content-type", "text/html");
      res.end(req.url === "/today" ? "<html><body><h1>Today</h1><p>The river festival opens at noon.</p></body></html>" : "<p>elsewhere</p>");
    });
    const pagesPort = await listen(pages);
    proxy = createServer((_req, res) => res.writeHead(405).end());
    proxy.on("connect", (req, client, head) => {
      tunnelled.push(String(req.url));
      const upstream = connect(pagesPort, "127.0.0.1", () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    });
    const proxyPort = await listen(proxy);

    alice = await synapse.registerUser("alice");
    const bot = await synapse.registerUser(NAME);
    room = (await matrixApi(synapse.baseUrl, alice.accessToken, "POST", "/createRoom", { preset: "private_chat", invite: [bot.userId] })).room_id as string;

    // The template, with what its README says to set: name, rooms, people, schedule, prompt, model; plus the proxy.
    const gosuto = parse(readFileSync(TEMPLATE, "utf8")) as GosutoManifest;
    const spec = gosuto.spec!;
    gosuto.metadata.name = NAME;
    spec.trust = { allowedRooms: [room], allowedSenders: [alice.userId] };
    spec.messaging = { ...spec.messaging, allowedTargets: [{ roomId: room }] };
    spec.gateways = [{ ...spec.gateways![0]!, schedule: "*/4 * * * * *", target: room, prompt: "Read http://news.example.org/today and give me the digest." }];
    spec.capabilities![0]!.constraints = { ...spec.capabilities![0]!.constraints, url_prefix: "http://news.example.org/" };
    spec.mcps![0]!.env = { NODE_USE_ENV_PROXY: "1", HTTP_PROXY: `http://127.0.0.1:${proxyPort}` };
    spec.persona = { ...spec.persona, baseUrl: model.baseUrl, model: "standin-1" };
    // Each firing: the model asks for the page the prompt names and for one the policy does not allow, then digests.
    model.setDefault((r) =>
      toolMessages(r).length === 0
        ? { toolCalls: [{ name: "fetch__fetch_markdown", arguments: { url: "http://news.example.org/today" } }, { name: "fetch__fetch_markdown", arguments: { url: "http://intranet.example.org/secrets" } }] }
        : { text: `Digest: ${toolMessages(r).join(" | ")}` },
    );

    h = await startTestController({ agentNetwork: "host", agentMatrixHomeserver: synapse.baseUrl, agentPollMs: 600_000 });
    h.vault.secrets.set("openai-api-key", Buffer.from("sk-cron"));
    h.vault.secrets.set(agentMatrixTokenSecret(NAME), Buffer.from(bot.accessToken));
    dir = writeTree({
      "digest.yaml": `${stringify(gosuto)}---
apiVersion: ruriko.dev/v1alpha1
kind: Agent
metadata: {name: ${NAME}}
spec:
  image: ${TEST_AGENT_IMAGE}
  gosuto: ${NAME}
  matrix: {userId: "${bot.userId}"}
  resources: {memory: 512Mi}
---
apiVersion: ruriko.dev/v1alpha1
kind: SecretBinding
metadata: {name: ${NAME}-model}
spec: {agent: ${NAME}, secret: openai-api-key}
`,
    });
    await h.offer(dir);
  });
  after(async () => {
    await h?.stop();
    await model?.close();
    pages?.close();
    proxy?.close();
    await synapse?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the schedule fires, the page is fetched under the policy, and the digest is posted to the target room", async () => {
    await waitFor(async () => {
      // The model-key grant waits for approval (no policy in force): the local operator approves it.
      for (const r of h.state.approvals.list({ status: "pending" })) h.state.approvals.vote(r.id, { approver: "cli:test", decision: "approve", source: "cli", override: true });
      h.controller.flushStateChanges();
      // A firing before the fetch server is up finds no tool; a later one has it.
      return (await timeline(synapse.baseUrl, alice, room)).some((c) => c.body.startsWith("Digest:") && c.body.includes("festival"));
    }, "a digest in the target room", 180_000);
    const digest = (await timeline(synapse.baseUrl, alice, room)).find((c) => c.body.startsWith("Digest:") && c.body.includes("festival"))!;
    assert.match(digest.body, /The river festival opens at noon/);
    assert.match(digest.body, /denied by policy \(rule deny-everything-else\); nothing was run/);
    assert.ok(served.includes("news.example.org/today"), `pages served: ${served.join(", ")}`);
    assert.ok(!tunnelled.some((t) => t.startsWith("intranet.")), "the call the policy denies never left the agent");

    const s = await status();
    const gateway = s.gateways?.find((g) => g.name === "daily");
    assert.equal(gateway?.state, "scheduled");
    assert.ok(gateway?.lastRunAt && gateway.nextRunAt, JSON.stringify(gateway));
    assert.ok((s.counters?.schedulesFired ?? 0) >= 1);
    const events = (await acp.events(await endpoint(), 0, 500, "test")).events;
    assert.ok(events.some((e) => e.kind === "schedule.fired" && e.gateway === "daily"));
    assert.ok(events.some((e) => e.kind === "tool.allowed" && e.rule === "read-public-pages"));
    assert.ok(events.some((e) => e.kind === "tool.denied" && e.rule === "deny-everything-else"));
  });
});
