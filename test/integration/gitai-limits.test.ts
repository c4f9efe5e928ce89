/**
 * Every limit of a Gosuto, reached once, on a real Synapse with the model stand-in: the asker gets one clear
 * message saying which limit and when it resets, later refusals in the same fill are silent, /status shows it,
 * and the decision journal has one `limit.reached` for Ruriko to collect — which Ruriko's collector turns into one
 * status-room line (helpers/ruriko-journal.ts). Each test runs a fresh Gitai (its own data volume), so that one
 * limit's window does not spill into the next.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import { AcpClient, type AcpEndpoint } from "../../src/acp/client.ts";
import type { AcpStatus } from "../../src/api/generated/types.ts";
import { digestOf } from "../../src/api/digest.ts";
import { parseManifestFile } from "../../src/api/parse.ts";
import { startGitai, type Gitai } from "../../src/gitai/gitai.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { waitFor } from "../helpers/controller-harness.ts";
import { matrixApi, say as sayIn, timeline as roomTimeline, type MatrixUser } from "../helpers/matrix-chat.ts";
import { startModelStandin, type ModelStandin } from "../helpers/model-standin.ts";
import { rurikoJournal, type RurikoJournal } from "../helpers/ruriko-journal.ts";
import { startSynapse, type SynapseHandle } from "../helpers/synapse.ts";

const TOKEN = "gitai-limits-test-token";

describe("limits, each reached once (real Synapse, the model stand-in)", () => {
  let synapse: SynapseHandle;
  let model: ModelStandin;
  let agentUser: MatrixUser & { password: string };
  let alice: MatrixUser;
  let rooms: string[];
  const acp = new AcpClient({ retries: 0 });
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? "silent", pretty: false });
  const running: Array<{ gitai: Gitai; dataDir: string }> = [];
  let ruriko: RurikoJournal | undefined;

  const say = (body: string, room = rooms[0]!) => sayIn(synapse.baseUrl, alice, room, body);
  const repliesTo = async (eventId: string, room = rooms[0]!) => (await roomTimeline(synapse.baseUrl, alice, room)).filter((c) => c.sender === agentUser.userId && c.inReplyTo === eventId).map((c) => c.body);
  const firstReply = async (eventId: string, room = rooms[0]!) => {
    await waitFor(async () => (await repliesTo(eventId, room)).length > 0, "a reply", 30_000);
    return (await repliesTo(eventId, room))[0]!;
  };

  /** A fresh Gitai with `spec` (YAML lines under `spec:`), connected; `dataDir` reuses a data volume. */
  const agent = async (spec: string, { pricing, dataDir = mkdtempSync(join(tmpdir(), "gitai-limits-")) }: { pricing?: string; dataDir?: string } = {}) => {
    writeFileSync(join(dataDir, "acp-token"), TOKEN, { mode: 0o600 });
    const gitai = await startGitai({ host: "127.0.0.1", port: 0, agent: "limited", dataDir, logger, parts: { model: { timeoutMs: 10_000, maxRetries: 0 } } });
    running.push({ gitai, dataDir });
    const ep: AcpEndpoint = { agent: "limited", baseUrl: `http://127.0.0.1:${gitai.port}`, token: TOKEN };
    const text = `apiVersion: ruriko.dev/v1alpha1
kind: Gosuto
metadata: {name: limited}
spec:
  trust:
    allowedRooms: ${JSON.stringify(rooms)}
    allowedSenders: ["${alice.userId}"]
  persona: {llmProvider: openai, baseUrl: "${model.baseUrl}", model: standin-1, apiKeySecretRef: model-key${pricing ? `, pricing: ${pricing}` : ""}}
${spec}`;
    const [obj] = parseManifestFile("g.yaml", Buffer.from(text)).objects;
    assert.ok(obj, text);
    await acp.putConfig(ep, { gosuto: stringify(obj.object), digest: obj.digest }, "t");
    await acp.putSecrets(ep, { secrets: { "model-key": "sk-limits" }, versions: { "model-key": 1 }, digest: digestOf("sk-limits") }, "t");
    await acp.putMatrix(ep, { identity: { homeserver: synapse.baseUrl, userId: agentUser.userId, accessToken: agentUser.accessToken }, digest: digestOf(agentUser.accessToken) }, "t");
    const status = () => acp.status(ep, "t") as Promise<AcpStatus>;
    await waitFor(async () => (await status()).conversation?.state === "connected" && (await status()).conversation?.rooms?.length === rooms.length, "the agent connected", 60_000);
    model.reset();
    const limitEvents = async () => (await acp.events(ep, 0, 500, "t")).events.filter((e) => e.kind === "limit.reached");
    return { gitai, ep, status, limitEvents, dataDir };
  };
  const dataDirs: string[] = [];
  const stopAll = async () => {
    for (const r of running.splice(0)) {
      await r.gitai.close();
      dataDirs.push(r.dataDir);
    }
  };
  const ask = (body: string, room?: string) => say(body, room);
  const completions = () => model.requests.filter((r) => r.path.endsWith("/chat/completions"));

  before(async () => {
    [synapse, model] = await Promise.all([startSynapse(), startModelStandin()]);
    agentUser = await synapse.registerUser("limited");
    alice = await synapse.registerUser("alice");
    rooms = [];
    for (let i = 0; i < 2; i++) rooms.push((await matrixApi(synapse.baseUrl, alice.accessToken, "POST", "/createRoom", { preset: "public_chat", invite: [agentUser.userId] })).room_id as string);
  });
  after(async () => {
    await stopAll();
    ruriko?.close();
    await model?.close();
    await synapse?.stop();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  });

  test("maxRequestsPerMinute: the third question gets one message naming the limit and its reset; the fourth, silence", async () => {
    const a = await agent("  limits: {maxRequestsPerMinute: 2}\n");
    assert.equal(await firstReply(await ask("one")), "ok");
    assert.equal(await firstReply(await ask("two")), "ok");
    assert.match(await firstReply(await ask("three")), /^A rate limit was reached: at most 2 model requests a minute \(limits\.maxRequestsPerMinute\)\. It resets at \d\d:\d\d:\d\d UTC\.$/);
    const fourth = await ask("four");
    const fifth = await ask("five");
    await waitFor(async () => (await a.status()).counters?.limitsReached === 3, "both later refusals counted", 30_000);
    assert.deepEqual([await repliesTo(fourth), await repliesTo(fifth)], [[], []], "later refusals in the same fill are silent");
    assert.equal(completions().length, 2);
    const state = (await a.status()).limits?.find((l) => l.name === "maxRequestsPerMinute");
    assert.deepEqual([state?.limit, state?.used, typeof state?.resetsAt, typeof state?.reachedAt], [2, 2, "string", "string"]);
    const [reached] = await a.limitEvents();
    assert.deepEqual((await a.limitEvents()).map((e) => e.limit), ["maxRequestsPerMinute"], "one limit.reached for the fill");

    // Ruriko collects the journal: one audit entry, and the status room hears the fill exactly once, under the turn's trace.
    ruriko = rurikoJournal(acp);
    await ruriko.collect(a.ep);
    assert.equal((await ruriko.collect(a.ep)).requests, 0, "nothing new: no second read");
    assert.deepEqual(ruriko.state.audit.byActor("agent:limited", 100).filter((e) => e.action === "agent.limit.reached").map((e) => [e.traceId, e.payload.limit]), [[reached!.traceId, "maxRequestsPerMinute"]]);
    assert.deepEqual(ruriko.statusLines(), [{ text: "limited: limit maxRequestsPerMinute reached", traceId: reached!.traceId }]);
    assert.ok((await acp.events(a.ep, 0, 500, "t")).events.some((e) => e.kind === "message.accepted" && e.traceId === reached!.traceId), "the trace is the refused turn's");
    await stopAll();
  });

  test("maxEventsPerMinute and maxConcurrentRequests: refused before the model hears anything", async () => {
    const a = await agent("  limits: {maxEventsPerMinute: 1}\n");
    assert.equal(await firstReply(await ask("first")), "ok");
    assert.match(await firstReply(await ask("second")), /^A rate limit was reached: .*\(limits\.maxEventsPerMinute\)\. It resets at \d\d:\d\d:\d\d UTC\.$/);
    assert.equal(completions().length, 1);
    assert.deepEqual((await a.limitEvents()).map((e) => e.limit), ["maxEventsPerMinute"]);
    await stopAll();

    const b = await agent("  limits: {maxConcurrentRequests: 1}\n");
    model.script({ delayMs: 3000, then: { text: "slow answer" } });
    const slow = await ask("a slow one", rooms[0]);
    await waitFor(async () => completions().length === 1, "the slow turn is with the model", 30_000);
    assert.match(await firstReply(await ask("meanwhile", rooms[1]), rooms[1]), /^Too many requests at once: at most 1 \(limits\.maxConcurrentRequests\)\./);
    assert.equal(await firstReply(slow), "slow answer");
    assert.equal(await firstReply(await ask("now free", rooms[1]), rooms[1]), "ok", "a slot freed: the next question is answered");
    assert.deepEqual((await b.limitEvents()).map((e) => e.limit), ["maxConcurrentRequests"]);
    await stopAll();
  });

  test("maxMonthlyCostUSD: the spend is priced, persisted in the data volume, and a restart does not reset it", async () => {
    // A dollar per prompt token: the first request alone crosses a one-cent budget (one request may overshoot).
    const spec = "  limits: {maxMonthlyCostUSD: 0.01}\n";
    const pricing = "{inputPerMTok: 1000000, outputPerMTok: 0}";
    const a = await agent(spec, { pricing });
    assert.equal(await firstReply(await ask("the first costs")), "ok");
    const budget = /^The monthly budget was reached: US\$\d+\.\d\d of US\$0\.01 spent \(limits\.maxMonthlyCostUSD\)\. It resets on \d{4}-\d\d-01 at 00:00 UTC\.$/;
    assert.match(await firstReply(await ask("the second is refused")), budget);
    const spent = (await a.status()).limits?.find((l) => l.name === "maxMonthlyCostUSD")?.used ?? 0;
    assert.ok(spent > 0.01, `spent ${spent}`);
    await stopAll();

    const b = await agent(spec, { pricing, dataDir: a.dataDir });
    assert.match(await firstReply(await ask("after a restart")), budget);
    assert.equal(completions().length, 0, "the restarted agent asked the model nothing");
    assert.equal((await b.status()).limits?.find((l) => l.name === "maxMonthlyCostUSD")?.used, spent);
    await stopAll();
  });

  test("maxMonthlyCostUSD: a reply without usage is priced at an upper bound, never free, and /status says so", async () => {
    // A dollar per prompt token: the estimate of the first request alone (a token per byte sent) crosses the budget.
    const a = await agent("  limits: {maxMonthlyCostUSD: 0.01}\n", { pricing: "{inputPerMTok: 1000000, outputPerMTok: 0}" });
    model.script({ text: "no usage here", withoutUsage: true });
    assert.equal(await firstReply(await ask("what does this cost?")), "no usage here");
    await waitFor(async () => ((await a.status()).limits?.find((l) => l.name === "maxMonthlyCostUSD")?.estimated ?? 0) === 1, "the estimate in /status", 10_000);
    const budget = (await a.status()).limits?.find((l) => l.name === "maxMonthlyCostUSD");
    assert.ok((budget?.used ?? 0) > 0.01, `an estimated request is charged (used ${budget?.used})`);
    assert.match(await firstReply(await ask("and now?")), /^The monthly budget was reached/);
    await stopAll();
  });

  test("maxTokensPerRequest: a cut answer says so; messaging.maxMessagesPerMinute: the next answer waits, and the asker is told when", async () => {
    const a = await agent("  limits: {maxTokensPerRequest: 5}\n  messaging: {maxMessagesPerMinute: 1}\n");
    model.script({ text: "This answer is much longer than five tokens allow." });
    const long = await firstReply(await ask("tell me a lot"));
    assert.equal(long, "This answer is much\n\n(My answer was cut at the token limit of 5 tokens per request: limits.maxTokensPerRequest.)");
    const second = await ask("and another");
    assert.match(await firstReply(second), /^My message limit was reached: at most 1 message a minute \(messaging\.maxMessagesPerMinute\)\. My answer follows at \d\d:\d\d:\d\d UTC\.$/);
    assert.equal((await repliesTo(second)).length, 1, "the answer itself waits for the window");
    assert.deepEqual((await a.limitEvents()).map((e) => e.limit).sort(), ["maxMessagesPerMinute", "maxTokensPerRequest"]);
    await stopAll();
  });
});
