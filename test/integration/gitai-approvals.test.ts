/**
 * Tool calls that wait for a human, end to end: Gitai in-process on a real Synapse, a real MCP server over stdio,
 * the model stand-in. The approval room is a separate room the agent never serves; approvers decide there with
 * reactions and text, as they do for Ruriko's own requests. Each scenario also reads the agent's journal
 * (GET /events) and has Ruriko collect it — the collector as agent-sync calls it, into a real state database (see
 * helpers/ruriko-journal.ts) — to check the audit log, the status room's lines and the queries that show them.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import { AcpClient, type AcpEndpoint } from "../../src/acp/client.ts";
import type { AcpEvent, AcpStatus } from "../../src/api/generated/types.ts";
import { digestOf } from "../../src/api/digest.ts";
import { parseManifestFile } from "../../src/api/parse.ts";
import { TOOL_APPROVAL_KEY } from "../../src/gitai/approvals/request-post.ts";
import { startGitai, type Gitai } from "../../src/gitai/gitai.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { waitFor } from "../helpers/controller-harness.ts";
import { matrixApi, say as sayIn, startPageServer, timeline as roomTimeline, type MatrixUser } from "../helpers/matrix-chat.ts";
import { startModelStandin, type ModelStandin, type RecordedRequest } from "../helpers/model-standin.ts";
import { rurikoJournal, STATUS_ROOM, type RurikoJournal } from "../helpers/ruriko-journal.ts";
import { startSynapse, type SynapseHandle } from "../helpers/synapse.ts";

const ROOT = join(import.meta.dirname, "../..");
const TOKEN = "gitai-approvals-test-token";
const MODEL_KEY = "sk-approvals-model-key-0001";
const PAGE_SECRET = "page-secret-value-7731";
/** An approver's free-text deny reason: shown in the approval room's outcome post, and nowhere else. */
const DENY_WORDS = "not now, the wiki is frozen";

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
  let ruriko: RurikoJournal;
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
  /** A text message in the approval room replying to `eventId`, with the quoted fallback clients put in a reply. */
  const replyIn = (who: MatrixUser, eventId: string, quoted: string, body: string) =>
    api(who, "PUT", `/rooms/${encodeURIComponent(approvalRoom)}/send/m.room.message/r${Date.now()}-${txn++}`, {
      msgtype: "m.text",
      body: `> <${agentUser.userId}> ${quoted.split("\n")[0]}\n\n${body}`,
      "m.relates_to": { "m.in_reply_to": { event_id: eventId } },
    }).then((r) => r.event_id as string);
  const redact = (who: MatrixUser, eventId: string) => api(who, "PUT", `/rooms/${encodeURIComponent(approvalRoom)}/redact/${encodeURIComponent(eventId)}/x${Date.now()}-${txn++}`, {});
  /** The request's last edit by the agent: how it says the request ended. */
  const edits = async (post: RawPost) => (await approvalPosts()).filter((p) => (p.content["m.relates_to"] as { rel_type?: string; event_id?: string } | undefined)?.event_id === post.event_id && (p.content["m.relates_to"] as { rel_type?: string }).rel_type === "m.replace").map((p) => String(p.content.body));
  /** The agent's outcome posts (replies under a request), as approvers read them. */
  const outcomeNotices = async () => (await approvalPosts()).filter((p) => /^Tool approval [0-9a-f]{12} (approved|denied|expired)/.test(String(p.content.body)));

  /** Where the agent's journal stands now; what a scenario journals comes after it. */
  const journalMark = async () => (await status()).events?.last ?? 0;
  /** The journal after `after`, as Ruriko reads it (GET /events). */
  const journal = async (after: number): Promise<AcpEvent[]> => (await acp.events(ep, after, 500, "test")).events;
  /** One turn's events after `after`: the turn's trace is its accepted message's, and every event listed carries it. */
  const turnEvents = async (after: number) => {
    const events = await journal(after);
    const trace = events.find((e) => e.kind === "message.accepted")?.traceId;
    assert.ok(trace, `a message accepted after ${after}: ${JSON.stringify(events)}`);
    return { trace, events, kinds: events.map((e) => [e.kind, e.traceId === trace ? "turn" : e.traceId]) };
  };
  const fields = (e: AcpEvent | undefined, ...keys: Array<keyof AcpEvent>) => Object.fromEntries(keys.map((k) => [k, e?.[k]]));
  /** Nothing the agent holds as a secret, and no approver's words, in what it journalled or Ruriko copied. */
  const assertNothingSecret = (what: string, text: string) => {
    for (const secret of [PAGE_SECRET, MODEL_KEY, DENY_WORDS]) assert.ok(!text.includes(secret), `${what} holds ${secret}`);
  };
  /** Ruriko collects the journal; the status room's lines of one trace. */
  const collected = async (trace: string) => {
    await ruriko.collect(ep);
    return ruriko.statusLines().filter((l) => l.traceId === trace).map((l) => l.text);
  };

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
    ruriko = rurikoJournal(acp);
    await start();
    await configure();
  });
  after(async () => {
    await gitai?.close();
    ruriko?.close();
    await model?.close();
    page?.close();
    await synapse?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test("an approver's ✅ → the call runs and the answer arrives; the request says who, what (secrets redacted) and until when", async () => {
    model.reset();
    pageHits.length = 0;
    const seen = (await requestPosts()).length;
    const since = await journalMark();
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

    // The journal: waiting, then approved by bob, all under the turn's trace; the secret in the URL nowhere.
    const id = requestId(post);
    const { trace, events, kinds } = await turnEvents(since);
    assert.deepEqual(kinds, [["message.accepted", "turn"], ["tool.waiting", "turn"], ["tool.approved", "turn"]]);
    const [, waiting, approved] = events;
    assert.deepEqual(fields(waiting, "mcp", "tool", "rule", "approval", "sender", "room"), { mcp: "web", tool: "http_get", rule: "ask-first", approval: id, sender: alice.userId, room });
    assert.deepEqual(fields(approved, "approval", "sender", "argsDigest"), { approval: id, sender: bob.userId, argsDigest: waiting!.argsDigest });
    assert.match(waiting!.argsDigest ?? "", /^sha256:[0-9a-f]{64}$/);
    assertNothingSecret("the journal", JSON.stringify(events));

    // Ruriko collects it: the audit log under the same trace, and the status room hears the wait and the approval.
    assert.deepEqual(await collected(trace), [`guarded: tool web.http_get waits for approval (approval ${id})`, `guarded: tool web.http_get approved by ${bob.userId} (approval ${id})`]);
    const audited = ruriko.state.audit.byTrace(trace);
    assert.deepEqual(audited.map((e) => [e.actor, e.action, e.result]), [
      ["agent:guarded", "agent.message.accepted", "info"],
      ["agent:guarded", "agent.tool.waiting", "info"],
      ["agent:guarded", "agent.tool.approved", "info"],
    ]);
    assertNothingSecret("the audit log", JSON.stringify(audited));
  });

  test("Ruriko shows the agent's decisions: /ruriko trace, /ruriko audit, /ruriko agent and `ruriko status`", async () => {
    await ruriko.collect(ep);
    const approved = ruriko.state.audit.byActor("agent:guarded", 100).find((e) => e.action === "agent.tool.approved");
    assert.ok(approved, "an approval collected by the test before");
    const id = String(approved.payload.approval);
    const line = new RegExp(`agent:guarded {2}agent\\.tool\\.approved {2}Agent/guarded {2}info {2}web\\.http_get rule=ask-first approval=${id} sender=${bob.userId.replace(/[.$]/g, "\\$&")} room=`);
    assert.match(await ruriko.ask(`/ruriko trace ${approved.traceId}`), line);
    assert.match(await ruriko.ask("/ruriko audit 50"), line);

    // The agent as the controller records it, so that it is listed: its latest decisions follow.
    ruriko.state.status.put({ agent: "guarded", conditions: [], observedRevision: null, appliedRevision: null, appliedSpecDigest: null, lastError: null, failures: 0, containerId: null, containerState: null, gosutoDigest: null, secretsDigest: null, runtime: null, updatedAt: new Date().toISOString() });
    const decision = new RegExp(`tool\\.approved +web\\.http_get rule=ask-first approval=${id} sender=\\S+ room=\\S+ argsDigest=[0-9a-f]{12} {2}trace ${approved.traceId}`);
    assert.match(await ruriko.ask("/ruriko agent guarded"), new RegExp(`latest decisions \\(newest first\\):\\n(  .*\\n)*  \\S+  ${decision.source}`));
    const cli = spawnSync(process.execPath, [join(ROOT, "src/cli/ruriko.ts"), "status", "--state-dir", ruriko.stateDir], { encoding: "utf8", timeout: 60_000 });
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /latest decisions \(newest first; \/ruriko audit and \/ruriko trace ID in chat tell more\):\n {2}guarded\n/);
    assert.match(cli.stdout, decision);
    assertNothingSecret("ruriko status", cli.stdout);
  });

  test("an outsider's ✅, the asker's own ✅ and a ✅ on a copy change nothing; ❌ → denied and the model is told; nothing said there reaches the model", async () => {
    model.reset();
    pageHits.length = 0;
    const seen = (await requestPosts()).length;
    const since = await journalMark();
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

    const id = requestId(post);
    const { trace, events, kinds } = await turnEvents(since);
    assert.deepEqual(kinds, [["message.accepted", "turn"], ["tool.waiting", "turn"], ["tool.rejected", "turn"]], "the votes that did not count left no trace in the journal");
    assert.deepEqual(fields(events[2], "approval", "sender", "reason", "size"), { approval: id, sender: bob.userId, reason: "denied", size: undefined });
    assert.deepEqual(await collected(trace), [`guarded: tool web.http_get waits for approval (approval ${id})`, `guarded: tool web.http_get rejected by ${bob.userId} (denied) (approval ${id})`]);
  });

  test("a text decision naming the request's id counts; an approval covers the same call for validForSeconds", async () => {
    await configure(approvalsSection("    validForSeconds: 3600\n"));
    model.reset();
    pageHits.length = 0;
    const seen = (await requestPosts()).length;
    let since = await journalMark();
    scriptOneCall("/report");
    const asked = await say(alice, "The report again, please.");
    const post = await nextRequest(seen);
    await say(bob, `approve ${requestId(post)}`, approvalRoom);
    assert.equal(await answerTo(asked), "Tool said: HTTP 200\n\nQuarterly numbers.");
    const first = await turnEvents(since);
    assert.deepEqual(first.kinds, [["message.accepted", "turn"], ["tool.waiting", "turn"], ["tool.approved", "turn"]]);
    assert.equal(first.events[2]!.sender, bob.userId);

    since = await journalMark();
    scriptOneCall("/report");
    const again = await say(alice, "And once more.");
    assert.equal(await answerTo(again), "Tool said: HTTP 200\n\nQuarterly numbers.");
    assert.equal((await requestPosts()).length, seen + 1, "no new request: the approval covered the identical call");
    assert.equal(pageHits.length, 2);
    const covered = await turnEvents(since);
    assert.deepEqual(covered.kinds, [["message.accepted", "turn"], ["tool.approved", "turn"]]);
    assert.deepEqual(fields(covered.events[1], "approval", "sender"), { approval: requestId(post), sender: bob.userId }, "approved by whoever approved the covering request");
    assert.match(covered.events[1]!.reason ?? "", new RegExp(`^covered by approval ${requestId(post)} until \\d{4}-`));

    since = await journalMark();
    scriptOneCall("/other");
    const different = await say(alice, "Now the other page.");
    const denied = await nextRequest(seen + 1);
    assert.deepEqual(pageHits.length, 2, "different arguments need their own approval");
    await say(bob, `deny ${requestId(denied)} ${DENY_WORDS}`, approvalRoom);
    // The approver's words are said in the approval room, under the request; the model is told only who denied.
    assert.match(await answerTo(different), new RegExp(`^Tool said: a human \\(${bob.userId.replace(/[.$]/g, "\\$&")}\\) denied this call \\(approval ${requestId(denied)}\\); nothing was run$`));
    assert.ok(model.requests.every((r) => !JSON.stringify(r.body).includes(DENY_WORDS)), "the deny reason never reached the model");
    await waitFor(async () => (await outcomeNotices()).some((p) => String(p.content.body) === `Tool approval ${requestId(denied)} denied by ${bob.userId} (${DENY_WORDS}): web.http_get was not run.`), "the outcome post carries the reason", 30_000);
    const third = await turnEvents(since);
    assert.deepEqual(third.kinds, [["message.accepted", "turn"], ["tool.waiting", "turn"], ["tool.rejected", "turn"]]);
    assert.deepEqual(fields(third.events[2], "sender", "reason", "size"), { sender: bob.userId, reason: "denied", size: DENY_WORDS.length });
    assertNothingSecret("the journal", JSON.stringify(third.events));
    const lines = await collected(third.trace);
    assert.equal(lines.at(-1), `guarded: tool web.http_get rejected by ${bob.userId} (denied) (approval ${requestId(denied)})`);
    assertNothingSecret("the audit log", JSON.stringify(ruriko.state.audit.byTrace(third.trace)));
  });

  test("nobody decides within ttlSeconds → the call is denied as expired, and the model is told", async () => {
    await configure(approvalsSection("    ttlSeconds: 2\n"));
    model.reset();
    pageHits.length = 0;
    const seen = (await requestPosts()).length;
    const since = await journalMark();
    scriptOneCall("/report");
    const asked = await say(alice, "The report, but nobody will answer.");
    const id = requestId(await nextRequest(seen));
    assert.match(await answerTo(asked), /nobody decided on this call in time; approval [0-9a-f]{12} expired; nothing was run/);
    assert.deepEqual(pageHits, []);
    await waitFor(async () => (await approvalPosts()).some((p) => /expired without a decision/.test(String(p.content.body))), "the request is marked expired", 30_000);
    const { trace, events, kinds } = await turnEvents(since);
    assert.deepEqual(kinds, [["message.accepted", "turn"], ["tool.waiting", "turn"], ["tool.expired", "turn"]]);
    assert.deepEqual(fields(events[2], "approval", "sender"), { approval: id, sender: undefined }, "nobody decided");
    assert.deepEqual(await collected(trace), [`guarded: tool web.http_get waits for approval (approval ${id})`, `guarded: tool web.http_get not run: its approval expired (approval ${id})`]);
    assert.equal(ruriko.state.audit.byTrace(trace).at(-1)?.result, "refused");
  });

  test("Gitai restarted while a call waits → the asker and the approval room are told it was not run", async () => {
    await configure(approvalsSection());
    model.reset();
    pageHits.length = 0;
    const seen = (await requestPosts()).length;
    const since = await journalMark();
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

    // The new process journals the loss under the old turn's trace (the journal is on the data volume).
    const { trace, events } = await turnEvents(since);
    const lost = events.filter((e) => e.traceId === trace).map((e) => [e.kind, e.reason, e.approval]);
    assert.deepEqual(lost, [["message.accepted", undefined, undefined], ["tool.waiting", undefined, requestId(post)], ["tool.rejected", "lost", requestId(post)]]);
    assert.equal(events.filter((e) => e.approval === requestId(post)).length, 2, "the late ✅ on the cancelled request journalled nothing");
    assert.equal((await collected(trace)).at(-1), `guarded: tool web.http_get rejected (lost) (approval ${requestId(post)})`);
  });

  test("text decisions count only on the request post; the first decision wins, and a redaction after it changes nothing", async () => {
    await configure(approvalsSection());
    model.reset();
    pageHits.length = 0;

    // ✅ decides at once; bob's ✅ redacted and alice's ❌ after it change nothing.
    let seen = (await requestPosts()).length;
    let since = await journalMark();
    scriptOneCall("/report");
    const first = await say(alice, "The report, approved once and for all.");
    const approved = await nextRequest(seen);
    const vote = await react(bob, approved.event_id, "✅");
    assert.equal(await answerTo(first), "Tool said: HTTP 200\n\nQuarterly numbers.");
    await redact(bob, vote);
    await react(alice, approved.event_id, "❌");
    // The agent reads the rooms' events in order: once a later message is answered, the two above were read.
    const ping = await say(alice, "ping");
    await waitFor(async () => (await replyTo(ping)).length > 0, "a later message is answered", 30_000);
    const decided = await turnEvents(since);
    assert.deepEqual(decided.events.filter((e) => e.approval === requestId(approved)).map((e) => [e.kind, e.sender]), [["tool.waiting", alice.userId], ["tool.approved", bob.userId]]);
    assert.ok((await edits(approved)).every((b) => b.startsWith("* [APPROVED]")), "the request still reads approved");
    assert.equal(pageHits.length, 1);

    // Text: `approve ID` replying to a copy of the request, or to an outcome post, does not count; `approve` replying to the request does.
    const [outcome] = (await outcomeNotices()).filter((p) => String(p.content.body).startsWith(`Tool approval ${requestId(approved)} approved`));
    assert.ok(outcome, "the outcome of the request above");
    seen = (await requestPosts()).length;
    since = await journalMark();
    scriptOneCall("/other");
    const second = await say(alice, "Now the other page, by text.");
    const post = await nextRequest(seen);
    const id = requestId(post);
    const copy = await say(mallory, String(post.content.body), approvalRoom);
    await replyIn(bob, copy, String(post.content.body), `approve ${id}`);
    await replyIn(bob, outcome.event_id, String(outcome.content.body), `approve ${id}`);
    await react(alice, post.event_id, "✅");
    await waitFor(async () => (await approvalPosts()).some((p) => String(p.content.body).startsWith(`Tool approval ${id}: ${alice.userId} asked for this call`)), "the agent read past the replies (the asker's ✅ refused aloud)", 30_000);
    assert.deepEqual((await status()).approvals?.map((a) => a.id), [id], "still waiting");
    assert.equal(pageHits.length, 1);
    await replyIn(bob, post.event_id, String(post.content.body), "approve");
    assert.equal(await answerTo(second), "Tool said: HTTP 200\n\nOther page.");
    const byText = await turnEvents(since);
    assert.deepEqual(byText.kinds, [["message.accepted", "turn"], ["tool.waiting", "turn"], ["tool.approved", "turn"]]);
    assert.equal(byText.events[2]!.sender, bob.userId);
  });

  test("nothing the agent journalled, nor anything Ruriko copied from it, holds a secret value or an approver's words", async () => {
    await ruriko.collect(ep);
    const all = await journal(0);
    assert.ok(all.some((e) => e.kind === "tool.rejected" && e.size === DENY_WORDS.length), "the journal holds the scenarios above");
    assertNothingSecret("the journal", JSON.stringify(all));
    assertNothingSecret("the audit log", JSON.stringify(ruriko.state.audit.byActor("agent:guarded", 1000)));
    assertNothingSecret("the status room", JSON.stringify(ruriko.state.outbox.pending(STATUS_ROOM, 0, 10_000)));
  });
});
