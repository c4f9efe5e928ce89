/**
 * The status room on a real Synapse: what Ruriko says when revisions and agents change, and that nothing is
 * lost, reordered or repeated while the homeserver is away.
 *
 * The bot here coalesces for an hour: nothing it says goes before the test flushes it. Each test waits for the
 * state it expects (a line is in the outbox in the same transaction as the change it reports), then flushes
 * and reads the room, so what arrives, and how it is grouped, never depends on the machine's speed.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createClient, Direction, type MatrixClient } from "matrix-js-sdk";
import { logger as sdkLogger } from "matrix-js-sdk/lib/logger.js";
import { startMatrixBot, type MatrixBot } from "../../src/matrix/matrix-bot.ts";
import { generateMasterKeyText } from "../../src/secrets/crypto.ts";
import { isReady, newStateDir, removeInstanceResources, startTestController, TEST_AGENT_IMAGE, waitFor, type TestController } from "../helpers/controller-harness.ts";
import { startServe } from "../helpers/serve-process.ts";
import { writeTree } from "../helpers/manifest-tree.ts";
import { startSynapse, type SynapseHandle } from "../helpers/synapse.ts";

(sdkLogger as unknown as { setLevel(level: string): void }).setLevel("warn");

const agentDoc = (name: string, tz = "UTC") =>
  `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: {}\n---\napiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec: {image: "${TEST_AGENT_IMAGE}", gosuto: ${name}, env: {TZ: ${tz}}}\n`;

interface Notice {
  eventId: string;
  body: string;
  html: string;
  traceId: string;
  outboxId: number;
}

describe("status room (real Synapse)", () => {
  let synapse: SynapseHandle;
  let h: TestController;
  let room: string;
  let statusRoom: MatrixBot;
  let alice: MatrixClient;
  let botUserId: string;
  let dir: string;

  /** A status line with this text waits in (or went from) the outbox, written after row `since`. */
  const queued = (text: RegExp, since = 0) => h.state.outbox.list(1000).some((m) => m.id > since && m.line && text.test(m.line.text));
  const lastOutboxId = () => h.state.outbox.list(1).at(-1)?.id ?? 0;

  const notices = async (): Promise<Notice[]> => {
    const page = await alice.createMessagesRequest(room, null, 200, Direction.Backward);
    return page.chunk
      .filter((e) => e.sender === botUserId && e.type === "m.room.message")
      .reverse()
      .map((e) => {
        const c = e.content as Record<string, unknown>;
        return { eventId: e.event_id!, body: String(c.body), html: String(c.formatted_body), traceId: String(c["dev.ruriko.trace_id"]), outboxId: Number(c["dev.ruriko.outbox_id"]) };
      });
  };

  before(async () => {
    synapse = await startSynapse();
    const bot = await synapse.registerUser("ruriko");
    const a = await synapse.registerUser("alice");
    botUserId = bot.userId;
    const botClient = createClient({ baseUrl: synapse.baseUrl, accessToken: bot.accessToken, userId: bot.userId });
    room = (await botClient.createRoom({ name: "ruriko status", invite: [a.userId] })).room_id;
    alice = createClient({ baseUrl: synapse.baseUrl, accessToken: a.accessToken, userId: a.userId });
    await alice.joinRoom(room);
    h = await startTestController({
      onSnapshot: (e) => statusRoom.onSnapshot(e),
      onTransition: (t) => statusRoom.onTransition(t),
      onChange: (c) => statusRoom.onChange(c),
    });
    statusRoom = startMatrixBot({ homeserverUrl: synapse.baseUrl, userId: bot.userId, accessToken: bot.accessToken, room, outbox: h.state.outbox, seen: h.state.seenEvents, instance: h.instance, logger: (await import("../../src/observability/logger.ts")).createLogger({ level: "error", pretty: false }), coalesceMs: 3600_000 });
    dir = writeTree({ "alpha.yaml": agentDoc("alpha"), "beta.yaml": agentDoc("beta") });
  });
  after(async () => {
    await statusRoom?.stop();
    await h?.stop();
    await synapse?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("a revision and the agents becoming Ready are told, coalesced, with HTML and the trace id", async () => {
    await h.offer(dir);
    await h.waitForStatus("alpha", isReady, "alpha Ready");
    await h.waitForStatus("beta", isReady, "beta Ready");
    assert.deepEqual(await notices(), [], "nothing goes before its window closes");
    // Every line of the burst is in the outbox already: written with the status that made both agents Ready.
    await statusRoom.flush();
    const said = await notices();
    assert.equal(said.length, 1, `a burst is one message (${said.length} messages)`);
    const text = said[0]!.body;
    assert.match(text, /^5 changes:\n/);
    assert.match(text, /- revision [0-9a-f]{12} applied \(4 objects\)\n/);
    assert.match(text, /- created alpha \(new agent\)\n/, "the revision's actions are summarised");
    assert.match(text, /- created beta \(new agent\)\n/);
    assert.match(text, /- alpha is Ready\n/);
    assert.match(text, /- beta is Ready\n/);
    assert.match(said[0]!.html, /^5 changes:<ul><li>revision /);
    for (const n of said) {
      assert.match(n.traceId, /^[0-9a-f]{16}$/);
      assert.ok(n.body.includes(`[trace ${n.traceId}]`));
      assert.match(n.html, /<sub>trace /);
    }
  });

  test("a container killed behind Ruriko's back is told healed; a Gosuto edit is told applied", async () => {
    const before = (await notices()).length;
    const since = lastOutboxId();
    const [alpha] = await h.containersOf("alpha");
    await h.docker.getContainer(alpha!.Id).kill();
    await waitFor(() => queued(/alpha healed after drift: started \(container exited with code 137\)/, since), "the heal in the outbox", 30_000);
    writeFileSync(join(dir, "beta.yaml"), agentDoc("beta").replace("spec: {}", "spec: {persona: {systemPrompt: terse}}"));
    await h.offer(dir);
    await waitFor(() => queued(/beta: Gosuto beta applied \([0-9a-f]{12}\)/, since), "the Gosuto edit in the outbox", 30_000);
    await statusRoom.flush();
    const said = (await notices()).slice(before).map((n) => n.body).join("\n");
    assert.match(said, /alpha healed after drift: started \(container exited with code 137\)/, "the heal told");
    assert.match(said, /beta: Gosuto beta applied \([0-9a-f]{12}\)/, "the Gosuto edit told");
    assert.doesNotMatch(said, /recreated beta/, "a Gosuto edit reaches the running agent without recreating it");
  });

  test("ruriko serve reports to the status room, with its token from the secret store", async () => {
    const { stateDir, instance } = newStateDir();
    const key = generateMasterKeyText();
    const bot2 = await synapse.registerUser("ruriko2");
    const botClient = createClient({ baseUrl: synapse.baseUrl, accessToken: bot2.accessToken, userId: bot2.userId });
    const room2 = (await botClient.createRoom({ name: "serve status" })).room_id;
    const stored = spawnSync(process.execPath, [join(import.meta.dirname, "../../src/cli/ruriko.ts"), "secret", "set", "matrix-access-token", "--state-dir", stateDir], {
      input: bot2.accessToken,
      encoding: "utf8",
      env: { ...process.env, RURIKO_MASTER_KEY: key },
    });
    assert.equal(stored.status, 0, stored.stderr);
    // delta asks for its own Matrix account: serve provisions it with the shared secret from its environment.
    const manifests = writeTree({ "gamma.yaml": agentDoc("gamma"), "delta.yaml": agentDoc("delta").replace("env: {TZ: UTC}}", "env: {TZ: UTC}, matrix: {provision: true}}") });
    // Host networking: delta really signs in to the homeserver on this host's loopback.
    const serve = await startServe(["--manifests", manifests, "--matrix-homeserver", synapse.baseUrl, "--matrix-user", bot2.userId, "--status-room", room2, "--agent-network", "host"], {
      stateDir,
      env: { RURIKO_MASTER_KEY: key, RURIKO_MATRIX_ACCESS_TOKEN: "", RURIKO_MATRIX_REGISTRATION_SECRET: synapse.registrationSharedSecret },
    });
    try {
      const said = async () => (await botClient.createMessagesRequest(room2, null, 50, Direction.Backward)).chunk.filter((e) => e.sender === bot2.userId).map((e) => String((e.content as { body?: string }).body)).join("\n");
      await waitFor(async () => /gamma is Ready/.test(await said()), "serve told the room gamma is Ready", 60_000);
      await waitFor(async () => /Matrix account @delta:localhost created for delta/.test(await said()) && /delta is Ready/.test(await said()), "delta provisioned and Ready", 60_000);
      const log = readFileSync(serve.logFile, "utf8");
      assert.ok(!log.includes(bot2.accessToken), "the access token is not logged");
      assert.ok(!log.includes(synapse.registrationSharedSecret), "nor the registration secret");
    } finally {
      await serve.stop();
      await removeInstanceResources(h.docker, instance);
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(manifests, { recursive: true, force: true });
    }
  });

  test("homeserver away while things change: every message arrives once, in order, after it is back", async () => {
    const before = (await notices()).length;
    const since = lastOutboxId();
    await synapse.pause();
    writeFileSync(join(dir, "alpha.yaml"), "apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: alpha}\nspec: {image: 5}\n");
    await h.offer(dir); // refused: said, nothing changed
    writeFileSync(join(dir, "alpha.yaml"), agentDoc("alpha", "Europe/Paris"));
    writeFileSync(join(dir, "beta.yaml"), agentDoc("beta", "Asia/Tokyo"));
    await h.offer(dir);
    await h.waitForStatus("alpha", (s) => isReady(s) && s?.observedRevision === h.controller.snapshot?.revision, "alpha recreated and Ready");
    await h.waitForStatus("beta", (s) => isReady(s) && s?.observedRevision === h.controller.snapshot?.revision, "beta recreated and Ready");
    // Written with the statuses just waited for: nothing to wait for here.
    assert.ok(queued(/alpha is Ready/, since) && queued(/beta is Ready/, since), "Ready lines in the outbox");
    await statusRoom.flush();
    const failedAttempts = h.state.outbox.list().filter((m) => m.attempts > 0 && !m.sentAt).length;
    assert.ok(failedAttempts >= 1, "delivery was tried and kept for later");
    assert.ok(h.state.outbox.unsentCount() >= 2, "messages waiting in the outbox");

    await synapse.resume();
    await statusRoom.flush();
    assert.equal(h.state.outbox.unsentCount(), 0, "the outbox drained");
    const said = await notices();
    const outbox = h.state.outbox.list(1000);
    assert.deepEqual(said.map((n) => n.outboxId), outbox.filter((m) => m.mergedInto === null).map((m) => m.id), "every outbox message exactly once, in order");
    for (const line of outbox.filter((m) => m.line)) {
      const carrier = said.filter((n) => n.outboxId === (line.mergedInto ?? line.id));
      assert.equal(carrier.length, 1);
      assert.ok(carrier[0]!.body.includes(line.line!.text), `"${line.line!.text}" said in the message of its batch`);
    }
    assert.ok(said.length > before);
    const later = said.slice(before).map((n) => n.body).join("\n");
    assert.match(later, /refused, nothing changed: .*alpha\.yaml:4:\d+: Agent\/alpha: spec/);
    assert.match(later, /recreated alpha \(env changed: TZ\)/);
    assert.match(later, /alpha is Ready/);
    assert.match(later, /beta is Ready/);
  });
});
