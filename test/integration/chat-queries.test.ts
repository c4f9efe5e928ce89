/**
 * Read-only `/ruriko` queries on a real Synapse: each query answered from real state (a real git
 * repository for `history`), only for allowed senders, each message once, and nothing changed by asking.
 */
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createClient, Direction, type MatrixClient } from "matrix-js-sdk";
import { logger as sdkLogger } from "matrix-js-sdk/lib/logger.js";
import { simpleGit } from "simple-git";
import { startMatrixBot, type MatrixBot } from "../../src/matrix/matrix-bot.ts";
import { querySourcesFor } from "../../src/matrix/query-sources.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { isReady, startTestController, TEST_AGENT_IMAGE, waitFor, type TestController } from "../helpers/controller-harness.ts";
import { startSynapse, type SynapseHandle } from "../helpers/synapse.ts";

(sdkLogger as unknown as { setLevel(level: string): void }).setLevel("warn");

const gosuto = (name: string, prompt: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec:\n  persona: {systemPrompt: "${prompt}"}\n`;
const agent = (name: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec: {image: "${TEST_AGENT_IMAGE}", gosuto: ${name}}\n`;

describe("/ruriko queries (real Synapse, real git)", () => {
  let synapse: SynapseHandle;
  let h: TestController;
  let bot: MatrixBot;
  let botUserId: string;
  let room: string;
  let alice: MatrixClient;
  let mallory: MatrixClient;
  let repo: string;
  let head: string;
  let botToken: string;

  const startBot = (accessToken: string) =>
    startMatrixBot({
      homeserverUrl: synapse.baseUrl,
      userId: botUserId,
      accessToken,
      room,
      outbox: h.state.outbox,
      instance: h.instance,
      logger: createLogger({ level: "error", pretty: false }),
      coalesceMs: 200,
      seen: h.state.seenEvents,
      queries: {
        sources: querySourcesFor({ state: h.state, snapshot: () => h.controller.snapshot, runtime: h.runtime, git: { workDir: repo, path: "fleet" } }),
        rooms: () => new Set<string>(),
        senders: () => new Set([alice.getUserId()!]),
      },
    });

  /** Bot messages after `sinceEventId`, oldest first. */
  const botMessagesAfter = async (sinceEventId: string): Promise<string[]> => {
    const page = await alice.createMessagesRequest(room, null, 300, Direction.Backward);
    const events = [...page.chunk].reverse();
    const at = events.findIndex((e) => e.event_id === sinceEventId);
    return events.slice(at + 1).filter((e) => e.sender === botUserId).map((e) => String((e.content as { body?: string }).body));
  };
  const ask = async (client: MatrixClient, text: string): Promise<string> => {
    const { event_id } = await client.sendTextMessage(room, text);
    let answers: string[] = [];
    await waitFor(async () => (answers = (await botMessagesAfter(event_id)).filter((b) => !/\[trace [0-9a-f]+\]$/.test(b))).length > 0, `an answer to "${text}"`, 30_000);
    return answers[0]!;
  };

  before(async () => {
    synapse = await startSynapse();
    const r = await synapse.registerUser("ruriko");
    const a = await synapse.registerUser("alice");
    const m = await synapse.registerUser("mallory");
    botUserId = r.userId;
    botToken = r.accessToken;
    const botClient = createClient({ baseUrl: synapse.baseUrl, accessToken: r.accessToken, userId: r.userId });
    room = (await botClient.createRoom({ name: "ops", invite: [a.userId, m.userId] })).room_id;
    alice = createClient({ baseUrl: synapse.baseUrl, accessToken: a.accessToken, userId: a.userId });
    mallory = createClient({ baseUrl: synapse.baseUrl, accessToken: m.accessToken, userId: m.userId });
    await alice.joinRoom(room);
    await mallory.joinRoom(room);

    repo = mkdtempSync(join(tmpdir(), "ruriko-history-"));
    const git = simpleGit(repo);
    await git.init(["--initial-branch=main"]);
    await git.addConfig("user.name", "Alice Ops");
    await git.addConfig("user.email", "alice@example.org");
    mkdirSync(join(repo, "fleet"));
    writeFileSync(join(repo, "fleet/alpha.yaml"), `${gosuto("alpha", "one")}---\n${agent("alpha")}`);
    writeFileSync(join(repo, "fleet/beta.yaml"), `${gosuto("beta", "one")}---\n${agent("beta")}`);
    await git.add(".").then(() => git.commit("add alpha and beta"));
    writeFileSync(join(repo, "fleet/alpha.yaml"), `${gosuto("alpha", "two")}---\n${agent("alpha")}`);
    await git.add(".").then(() => git.commit("alpha: a sharper prompt"));
    head = (await git.revparse(["HEAD"])).trim();

    h = await startTestController();
    bot = startBot(r.accessToken);
    await h.offer(join(repo, "fleet"), head);
    await h.waitForStatus("alpha", isReady, "alpha Ready");
    await h.waitForStatus("beta", isReady, "beta Ready");
  });
  after(async () => {
    await bot?.stop();
    await h?.stop();
    await synapse?.stop();
    if (repo) rmSync(repo, { recursive: true, force: true });
  });

  test("every query is answered from the real state, and asking changes nothing", async () => {
    const auditBefore = h.state.audit.tail(10_000).length;
    const help = await ask(alice, "/ruriko help");
    for (const name of ["help", "status", "agents", "agent NAME", "plan", "approvals", "history NAME", "audit [N]", "trace ID", "version"]) assert.ok(help.includes(`/ruriko ${name}`), `help lists ${name}`);

    assert.match(await ask(alice, "/ruriko status"), new RegExp(`applied revision ${head}[\\s\\S]*alpha\\s+Ready[\\s\\S]*beta\\s+Ready`));
    assert.match(await ask(alice, "/ruriko agents"), /alpha\s+Ready\s+running\nbeta\s+Ready\s+running/);
    const alpha = await ask(alice, "/ruriko agent alpha");
    assert.match(alpha, /agent {6}alpha \(Ready\)/);
    assert.match(alpha, /\naccount {4}-\n/, "no Matrix account");
    // What the agent itself said over ACP: no identity, no model, no tool servers — not configured, not broken.
    assert.match(alpha, /\nmatrix {5}not configured\nmodel {6}not configured\nmcp {8}none\ncounters {3}0 answered/);
    assert.match(alpha, new RegExp(`gosuto {5}${h.state.status.get("alpha")!.gosutoDigest}`));
    assert.match(await ask(alice, "/ruriko agent nobody"), /no agent nobody/);
    assert.match(await ask(alice, "/ruriko plan"), /nothing to do: everything is converged/);
    assert.equal(await ask(alice, "/ruriko approvals"), "no pending approval requests");

    const history = (await ask(alice, "/ruriko history alpha")).split("\n");
    assert.equal(history.length, 2);
    assert.match(history[0]!, new RegExp(`^→ ${head.slice(0, 12)} .* Alice Ops  alpha: a sharper prompt$`));
    assert.match(history[1]!, /^ {2}[0-9a-f]{12} .* Alice Ops {2}add alpha and beta$/);
    assert.equal((await ask(alice, "/ruriko history beta")).split("\n").length, 1);

    assert.equal((await ask(alice, "/ruriko audit 3")).split("\n").length, 3);
    const last = h.state.audit.tail(1)[0]!;
    assert.ok((await ask(alice, `/ruriko trace ${last.traceId}`)).includes(last.action));
    assert.match(await ask(alice, "/ruriko version"), /^Ruriko \d+\.\d+\.\d+/);
    assert.match(await ask(alice, "/ruriko frobnicate"), /unknown query "frobnicate"/);

    assert.equal(h.state.audit.tail(10_000).length, auditBefore, "no query wrote anything to the audit log");
  });

  test("a sender who is not allowed gets one short refusal, and no answer", async () => {
    const refusal = await ask(mallory, "/ruriko status");
    assert.match(refusal, /not allowed to query Ruriko/);
    assert.doesNotMatch(refusal, /alpha/);
  });

  test("after a restart, no message is answered twice", async () => {
    /** Answers in the outbox: status lines have rows of their own (with a `line`), and are not counted. */
    const countAnswers = () => h.state.outbox.list(1000).filter((m) => m.line === null).length;
    const [lastBefore] = (await alice.createMessagesRequest(room, null, 1, Direction.Backward)).chunk;
    await bot.stop();
    bot = startBot(botToken);
    const before = countAnswers();
    assert.match(await ask(alice, "/ruriko version"), /^Ruriko/);
    // The messages from before the restart reach the new bot (its first sync) ahead of this query, and the bot
    // decides on each (seen already, or not) before it gets to this one: no wait needed. flush() sends what the
    // outbox holds, so the room shows everything answered since the restart.
    await bot.flush();
    assert.equal(countAnswers(), before + 1, "only the new query was answered");
    const since = (await botMessagesAfter(lastBefore!.event_id!)).filter((b) => !/\[trace [0-9a-f]+\]$/.test(b));
    assert.equal(since.length, 1, `one answer since the restart: ${JSON.stringify(since)}`);
    assert.match(since[0]!, /^Ruriko/);
  });
});
