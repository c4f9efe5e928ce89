/**
 * The status room on a real Synapse: what Ruriko says when revisions and agents change, and that nothing is
 * lost, reordered or repeated while the homeserver is away.
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
    statusRoom = startMatrixBot({ homeserverUrl: synapse.baseUrl, userId: bot.userId, accessToken: bot.accessToken, room, outbox: h.state.outbox, seen: h.state.seenEvents, instance: h.instance, logger: (await import("../../src/observability/logger.ts")).createLogger({ level: "error", pretty: false }), coalesceMs: 300 });
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
    let said: Notice[] = [];
    await waitFor(async () => {
      said = await notices();
      return /alpha is Ready/.test(said.map((n) => n.body).join("\n")) && /beta is Ready/.test(said.map((n) => n.body).join("\n"));
    }, "both agents told Ready", 30_000);
    const text = said.map((n) => n.body).join("\n");
    assert.match(text, /revision [0-9a-f]{12} applied \(4 objects\)/);
    assert.match(text, /created alpha \(new agent\)/, "the revision's actions are summarised");
    assert.match(text, /created beta \(new agent\)/);
    assert.match(text, /alpha is Ready/);
    assert.match(text, /beta is Ready/);
    assert.ok(said.length < 4, `a burst is coalesced (${said.length} messages)`);
    for (const n of said) {
      assert.match(n.traceId, /^[0-9a-f]{16}$/);
      assert.ok(n.body.includes(`[trace ${n.traceId}]`));
      assert.match(n.html, /<sub>trace /);
    }
  });

  test("a container killed behind Ruriko's back is told healed; a Gosuto edit is told applied", async () => {
    const before = (await notices()).length;
    const [alpha] = await h.containersOf("alpha");
    await h.docker.getContainer(alpha!.Id).kill();
    await waitFor(async () => (await notices()).slice(before).some((n) => /alpha healed after drift: started \(container exited with code 137\)/.test(n.body)), "the heal told", 30_000);
    writeFileSync(join(dir, "beta.yaml"), agentDoc("beta").replace("spec: {}", "spec: {persona: {systemPrompt: terse}}"));
    await h.offer(dir);
    await waitFor(async () => (await notices()).slice(before).some((n) => /beta: Gosuto beta applied \([0-9a-f]{12}\)/.test(n.body)), "the Gosuto edit told", 30_000);
    const said = (await notices()).slice(before).map((n) => n.body).join("\n");
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
    await synapse.pause();
    writeFileSync(join(dir, "alpha.yaml"), "apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: alpha}\nspec: {image: 5}\n");
    await h.offer(dir); // refused: said, nothing changed
    await new Promise((r) => setTimeout(r, 500));
    writeFileSync(join(dir, "alpha.yaml"), agentDoc("alpha", "Europe/Paris"));
    writeFileSync(join(dir, "beta.yaml"), agentDoc("beta", "Asia/Tokyo"));
    await h.offer(dir);
    await h.waitForStatus("alpha", (s) => isReady(s) && s?.observedRevision === h.controller.snapshot?.revision, "alpha recreated and Ready");
    await h.waitForStatus("beta", (s) => isReady(s) && s?.observedRevision === h.controller.snapshot?.revision, "beta recreated and Ready");
    await waitFor(() => h.state.outbox.unsentCount() >= 2, "messages waiting in the outbox", 20_000);
    const failedAttempts = h.state.outbox.list().filter((m) => m.attempts > 0 && !m.sentAt).length;
    assert.ok(failedAttempts >= 1, "delivery was tried and kept for later");

    await synapse.resume();
    // Both Ready lines may still sit in the reporter's coalescing window: wait for them, then for delivery.
    await waitFor(() => /beta is Ready/.test(h.state.outbox.list().slice(-3).map((m) => m.body).join("\n")) && /alpha is Ready/.test(h.state.outbox.list().slice(-3).map((m) => m.body).join("\n")), "Ready lines in the outbox", 20_000);
    await waitFor(() => h.state.outbox.unsentCount() === 0, "the outbox drained", 90_000);
    const said = await notices();
    const outbox = h.state.outbox.list();
    assert.deepEqual(said.map((n) => n.outboxId), outbox.map((m) => m.id), "every outbox message exactly once, in order");
    assert.ok(said.length > before);
    const later = said.slice(before).map((n) => n.body).join("\n");
    assert.match(later, /refused, nothing changed: .*alpha\.yaml:4:\d+: Agent\/alpha: spec/);
    assert.match(later, /recreated alpha \(env changed: TZ\)/);
    assert.match(later, /alpha is Ready/);
    assert.match(later, /beta is Ready/);
  });
});
