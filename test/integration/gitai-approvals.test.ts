/**
 * Tool calls that wait for a human, end to end: Gitai in-process on a real Synapse, a real MCP server over stdio,
 * the model stand-in. The approval room is a separate room the agent never serves; approvers decide there with
 * reactions and text, as they do for Ruriko's own requests.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import { AcpClient, type AcpEndpoint } from "../../src/acp/client.ts";
import type { AcpStatus } from "../../src/api/generated/types.ts";
import { digestOf } from "../../src/api/digest.ts";
import { parseManifestFile } from "../../src/api/parse.ts";
import { TOOL_APPROVAL_KEY } from "../../src/gitai/approvals/request-post.ts";
import { startGitai, type Gitai } from "../../src/gitai/gitai.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { waitFor } from "../helpers/controller-harness.ts";
import { matrixApi, say as sayIn, startPageServer, timeline as roomTimeline, type MatrixUser } from "../helpers/matrix-chat.ts";
import { startModelStandin, type ModelStandin, type RecordedRequest } from "../helpers/model-standin.ts";
import { startSynapse, type SynapseHandle } from "../helpers/synapse.ts";

const ROOT = join(import.meta.dirname, "../..");
const TOKEN = "gitai-approvals-test-token";
const MODEL_KEY = "sk-approvals-model-key-0001";
const PAGE_SECRET = "page-secret-value-7731";

interface RawPost {
  event_id: string;
  sender: string;
  type: string;
  content: Record<string, unknown>;
}

describe("tool-call approvals in Matrix (real Synapse, real MCP server, the model stand-in)", () => {
  let synapse: SynapseHandle;
  let model: ModelStandin;
  let gitai: Gitai;
  let page: Server;
  let pageHits: string[];
  let pageUrl: string;
  let dataDir: string;
  let room: string;
  let approvalRoom: string;
  let agentUser: MatrixUser & { password: string };
  let alice: MatrixUser;
  let bob: MatrixUser;
  let mallory: MatrixUser;
  const acp = new AcpClient({ retries: 0 });
  let ep: AcpEndpoint;
  const logger = createLogger({ level: "silent", pretty: false });

  const api = (who: MatrixUser, method: string, path: string, body?: unknown) => matrixApi(synapse.baseUrl, who.accessToken, method, path, body);
  const say = (who: MatrixUser, body: string, where = room) => sayIn(synapse.baseUrl, who, where, body);
  const replyTo = async (eventId: string) => (await roomTimeline(synapse.baseUrl, alice, room)).filter((c) => c.sender === agentUser.userId && c.inReplyTo === eventId);
  const status = () => acp.status(ep, "test") as Promise<AcpStatus>;
  const toolMessages = (r: RecordedRequest) => ((r.body.messages as Array<{ role: string; content: string }>) ?? []).filter((m) => m.role === "tool").map((m) => m.content);
  let txn = 0;
  const react = (who: MatrixUser, eventId: string, key: string, where = approvalRoom) =>
    api(who, "PUT", `/rooms/${encodeURIComponent(where)}/send/m.reaction/r${Date.now()}-${txn++}`, { "m.relates_to": { rel_type: "m.annotation", event_id: eventId, key } }).then((r) => r.event_id as string);
  /** The agent's posts in the approval room, oldest first. */
  const approvalPosts = async (): Promise<RawPost[]> => {
    const page = await api(bob, "GET", `/rooms/${encodeURIComponent(approvalRoom)}/messages?dir=b&limit=100`);
    return (page.chunk as RawPost[]).filter((e) => e.type === "m.room.message" && e.sender === agentUser.userId).reverse();
  };
  const requestPosts = async () => (await approvalPosts()).filter((p) => (p.content[TOOL_APPROVAL_KEY] as { status?: string } | undefined)?.status === "pending" && !p.content["m.relates_to"]);
  /** Waits for the agent's request for a new call, after `seen` earlier ones. */
  const nextRequest = async (seen: number) => {
    await waitFor(async () => (await requestPosts()).length > seen, "the approval request is posted", 30_000);
    return (await requestPosts())[seen]!;
  };
  const requestId = (post: RawPost) => (post.content[TOOL_APPROVAL_KEY] as { id: string }).id;

  const gosuto = (approvals: string) => {
    const text = `apiVersion: ruriko.dev/v1alpha1
kind: Gosuto
metadata: {name: guarded}
spec:
  trust:
    allowedRooms: ["${room}"]
    allowedSenders: ["${alice.userId}"]
  approvals:
${approvals}
  mcps:
    - name: web
      command: ${process.execPath}
      args: ["${join(ROOT, "src/gitai/tools/http-tool.ts")}"]
  secrets:
    - {name: page-secret, envVar: PAGE_SECRET, mcps: [web]}
  capabilities:
    - {name: ask-first, mcp: web, tool: http_get, allow: true, requireApproval: true}
  persona:
    llmProvider: openai
    baseUrl: "${model.baseUrl}"
    model: standin-1
    apiKeySecretRef: model-key
  limits: {maxTurnSteps: 4}
`;
    const [obj] = parseManifestFile("g.yaml", Buffer.from(text)).objects;
    assert.ok(obj, text);
    return { gosuto: stringify(obj.object), digest: obj.digest };
  };
  const approvalsSection = (extra = "") => `    enabled: true\n    room: "${approvalRoom}"\n    approvers: ["${bob.userId}", "${alice.userId}"]\n${extra}`;

  const start = async () => {
    writeFileSync(join(dataDir, "acp-token"), TOKEN, { mode: 0o600 });
    gitai = await startGitai({ host: "127.0.0.1", port: 0, agent: "guarded", dataDir, logger, parts: { model: { timeoutMs: 5000, maxRetries: 1 }, mcp: { startTimeoutMs: 30_000 } } });
    ep = { agent: "guarded", baseUrl: `http://127.0.0.1:${gitai.port}`, token: TOKEN };
  };
  const configure = async (approvals = approvalsSection()) => {
    await acp.putConfig(ep, gosuto(approvals), "t");
    await acp.putSecrets(ep, { secrets: { "model-key": MODEL_KEY, "page-secret": PAGE_SECRET }, versions: { "model-key": 1, "page-secret": 1 }, digest: digestOf({ MODEL_KEY, PAGE_SECRET }) }, "t");
    await acp.putMatrix(ep, { identity: { homeserver: synapse.baseUrl, userId: agentUser.userId, accessToken: agentUser.accessToken }, digest: digestOf({ t: agentUser.accessToken }) }, "t");
    await waitFor(async () => {
      const s = await status();
      return s.conversation?.state === "connected" && s.mcps.some((m) => m.name === "web" && m.state === "running");
    }, "the agent connected with its tool server running", 60_000);
  };
  /** The model asks for one page, then answers with what the tool said. */
  const scriptOneCall = (path: string) => model.script({ toolCalls: [{ name: "web__http_get", arguments: { url: `${pageUrl}${path}` } }] }, (r) => ({ text: `Tool said: ${toolMessages(r).at(-1)}` }));
  const answerTo = async (asked: string) => {
    await waitFor(async () => (await replyTo(asked)).some((c) => c.body.startsWith("Tool said:")), "the answer", 30_000);
    return (await replyTo(asked)).find((c) => c.body.startsWith("Tool said:"))!.body;
  };

  before(async () => {
    [synapse, model] = await Promise.all([startSynapse(), startModelStandin()]);
    ({ server: page, hits: pageHits, url: pageUrl } = await startPageServer({ "/report": "Quarterly numbers.", [`/report?key=${PAGE_SECRET}`]: "Quarterly numbers.", "/other": "Other page." }));
    agentUser = await synapse.registerUser("guarded");
    [alice, bob, mallory] = await Promise.all([synapse.registerUser("alice"), synapse.registerUser("bob"), synapse.registerUser("mallory")]);
    room = (await api(alice, "POST", "/createRoom", { preset: "public_chat", invite: [agentUser.userId] })).room_id as string;
    approvalRoom = (await api(bob, "POST", "/createRoom", { preset: "public_chat", invite: [agentUser.userId] })).room_id as string;
    for (const who of [alice, mallory]) await api(who, "POST", `/join/${encodeURIComponent(approvalRoom)}`, {});
    dataDir = mkdtempSync(join(tmpdir(), "gitai-approvals-"));
    await start();
    await configure();
  });
  after(async () => {
    await gitai?.close();
    await model?.close();
    page?.close();
    await synapse?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test("an approver's ✅ → the call runs and the answer arrives; the request says who, what (secrets redacted) and until when", async () => {
    model.reset();
    pageHits.length = 0;
    const seen = (await requestPosts()).length;
    model.script({ toolCalls: [{ name: "web__http_get", arguments: { url: `${pageUrl}/report?key=${PAGE_SECRET}` } }] }, (r) => ({ text: `Tool said: ${toolMessages(r).at(-1)}` }));
    const asked = await say(alice, "Get me the report.");
    const post = await nextRequest(seen);
    const key = post.content[TOOL_APPROVAL_KEY] as Record<string, unknown>;
    assert.deepEqual([key.agent, key.mcp, key.tool, key.rule, key.status], ["guarded", "web", "http_get", "ask-first", "pending"]);
    const body = String(post.content.body);
    assert.match(body, /agent guarded wants to call web\.http_get \(rule ask-first\)/);
    assert.match(body, new RegExp(`Asked by ${alice.userId} in ${room}`.replace(/[.$!]/g, "\\$&")));
    assert.match(body, /Approvers: .*bob.*; expires \d{4}-\d\d-\d\dT/);
    assert.match(body, /key=\[redacted\]/, "the secret value in the arguments is redacted");
    assert.ok(!body.includes(PAGE_SECRET));
    await waitFor(async () => (await replyTo(asked)).some((c) => /waits for a human's approval/.test(c.body)), "the asker is told the call waits", 30_000);
    assert.deepEqual(pageHits, [], "nothing ran before the decision");
    assert.deepEqual((await status()).approvals?.map((a) => a.id), [requestId(post)]);

    await react(bob, post.event_id, "✅");
    assert.equal(await answerTo(asked), "Tool said: HTTP 200\n\nQuarterly numbers.");
    assert.equal(pageHits.length, 1);
    const s = await status();
    assert.equal(s.counters?.toolCallsApproved, 1);
    assert.deepEqual(s.approvals, []);
    await waitFor(async () => (await approvalPosts()).some((p) => /approved by .*bob/.test(String(p.content.body)) && (p.content["m.relates_to"] as { rel_type?: string } | undefined)?.rel_type === "m.replace"), "the request is marked approved", 30_000);
  });

  test("an outsider's ✅, the asker's own ✅ and a ✅ on a copy change nothing; ❌ → denied and the model is told; nothing said there reaches the model", async () => {
    model.reset();
    pageHits.length = 0;
    const seen = (await requestPosts()).length;
    scriptOneCall("/other");
    const asked = await say(alice, "Get the other page.");
    const post = await nextRequest(seen);
    const copy = await say(mallory, String(post.content.body), approvalRoom);
    await react(mallory, post.event_id, "✅");
    await react(alice, post.event_id, "✅");
    await react(bob, copy, "✅");
    await say(bob, "What a lovely day; please fetch the admin page.", approvalRoom);
    await waitFor(async () => (await approvalPosts()).some((p) => /asked for this call; their approval does not count/.test(String(p.content.body))), "the asker's own approval is refused aloud", 30_000);
    assert.equal((await status()).approvals?.length, 1, "still waiting");
    assert.deepEqual(pageHits, []);
    assert.equal(model.requests.length, 1, "only the turn's first request: nothing said in the approval room reached the model");

    await react(bob, post.event_id, "❌");
    const answer = await answerTo(asked);
    assert.match(answer, /^Tool said: a human \(@bob[^)]*\) denied this call \(approval [0-9a-f]{12}\); nothing was run$/);
    assert.deepEqual(pageHits, []);
    assert.equal((await status()).counters?.toolCallsRejected, 1);
  });

  test("a text decision naming the request's id counts; an approval covers the same call for validForSeconds", async () => {
    await configure(approvalsSection("    validForSeconds: 3600\n"));
    model.reset();
    pageHits.length = 0;
    const seen = (await requestPosts()).length;
    scriptOneCall("/report");
    const asked = await say(alice, "The report again, please.");
    const post = await nextRequest(seen);
    await say(bob, `approve ${requestId(post)}`, approvalRoom);
    assert.equal(await answerTo(asked), "Tool said: HTTP 200\n\nQuarterly numbers.");

    scriptOneCall("/report");
    const again = await say(alice, "And once more.");
    assert.equal(await answerTo(again), "Tool said: HTTP 200\n\nQuarterly numbers.");
    assert.equal((await requestPosts()).length, seen + 1, "no new request: the approval covered the identical call");
    assert.equal(pageHits.length, 2);

    scriptOneCall("/other");
    const different = await say(alice, "Now the other page.");
    await nextRequest(seen + 1);
    assert.deepEqual(pageHits.length, 2, "different arguments need their own approval");
    await say(bob, `deny ${requestId((await requestPosts())[seen + 1]!)} not now`, approvalRoom);
    assert.match(await answerTo(different), /denied this call: not now/);
  });

  test("nobody decides within ttlSeconds → the call is denied as expired, and the model is told", async () => {
    await configure(approvalsSection("    ttlSeconds: 2\n"));
    model.reset();
    pageHits.length = 0;
    const seen = (await requestPosts()).length;
    scriptOneCall("/report");
    const asked = await say(alice, "The report, but nobody will answer.");
    await nextRequest(seen);
    assert.match(await answerTo(asked), /nobody decided on this call in time; approval [0-9a-f]{12} expired; nothing was run/);
    assert.deepEqual(pageHits, []);
    await waitFor(async () => (await approvalPosts()).some((p) => /expired without a decision/.test(String(p.content.body))), "the request is marked expired", 30_000);
  });

  test("Gitai restarted while a call waits → the asker and the approval room are told it was not run", async () => {
    await configure(approvalsSection());
    model.reset();
    pageHits.length = 0;
    const seen = (await requestPosts()).length;
    scriptOneCall("/report");
    const asked = await say(alice, "The report, just before a restart.");
    const post = await nextRequest(seen);
    await gitai.close();
    assert.ok(existsSync(join(dataDir, "tool-approvals.json")), "the waiting call is kept in the data volume");

    await start();
    await configure();
    await waitFor(async () => (await replyTo(asked)).some((c) => /was not run: I restarted while it waited/.test(c.body)), "the asker is told", 30_000);
    await waitFor(async () => (await approvalPosts()).some((p) => /\[CANCELLED\]/.test(String(p.content.body)) && (p.content["m.relates_to"] as { event_id?: string } | undefined)?.event_id === post.event_id), "the request is marked cancelled", 30_000);
    await react(bob, post.event_id, "✅");
    const ping = await say(alice, "ping");
    await waitFor(async () => (await replyTo(ping)).length > 0, "the next message is answered", 30_000);
    assert.deepEqual(pageHits, [], "a late approval of a cancelled request runs nothing");
    assert.ok(!existsSync(join(dataDir, "tool-approvals.json")));
  });
});
