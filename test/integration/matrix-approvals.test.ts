/**
 * Approvals over Matrix on a real Synapse, with a real controller on real Docker: requests posted to the
 * policy room, decided by reaction and by reply, quorum of distinct listed approvers, outsiders and
 * look-alikes ignored, duplicates counted once, deny with a reason, supersession, reminder and expiry.
 */
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createClient, Direction, EventType, RelationType, type MatrixClient } from "matrix-js-sdk";
import { logger as sdkLogger } from "matrix-js-sdk/lib/logger.js";
import { startMatrixBot, type MatrixBot } from "../../src/matrix/matrix-bot.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { isAwaitingApproval, isReady, startTestController, TEST_AGENT_IMAGE, waitFor, type TestController } from "../helpers/controller-harness.ts";
import { writeTree } from "../helpers/manifest-tree.ts";
import { startSynapse, type SynapseHandle } from "../helpers/synapse.ts";

(sdkLogger as unknown as { setLevel(level: string): void }).setLevel("error");

const IMAGE_A = "ruriko/gitai:approval-a";
const IMAGE_B = "ruriko/gitai:approval-b";
const IMAGE_C = "ruriko/gitai:approval-c";
const IMAGE_D = "ruriko/gitai:approval-d";
const IMAGE_E = "ruriko/gitai:approval-e";

const agentDoc = (name: string, image: string) =>
  `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: {}\n---\napiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec: {image: "${image}", gosuto: ${name}}\n`;
const policies = (room: string, approvers: string[]) => `apiVersion: ruriko.dev/v1alpha1
kind: ApprovalPolicy
metadata: {name: a-fast}
spec:
  room: "${room}"
  approvers: ${JSON.stringify(approvers)}
  quorum: 1
  ttl: 4s
  remindBefore: 3s
  rules: [{match: {kind: Agent, operation: update, names: [beta]}, require: approval}]
---
apiVersion: ruriko.dev/v1alpha1
kind: ApprovalPolicy
metadata: {name: default}
spec:
  room: "${room}"
  approvers: ${JSON.stringify(approvers)}
  quorum: 2
  ttl: 1h
  rules: [{match: {kind: Agent, operation: update, fields: [image]}, require: approval}]
`;

describe("approvals over Matrix (real Synapse, real Docker)", () => {
  let synapse: SynapseHandle;
  let h: TestController;
  let bot: MatrixBot;
  let startBot: () => MatrixBot;
  let botUserId: string;
  let room: string;
  let alice: MatrixClient;
  let bob: MatrixClient;
  let mallory: MatrixClient;
  let dir: string;

  const timeline = async () => {
    const page = await alice.createMessagesRequest(room, null, 500, Direction.Backward);
    return [...page.chunk].reverse();
  };
  const botSaid = async (pattern: RegExp) => (await timeline()).some((e) => e.sender === botUserId && pattern.test(String((e.content as { body?: string }).body)));
  /** The request post for a request id: Ruriko's own event carrying the namespaced key. */
  const postOf = async (requestId: string) =>
    (await timeline()).find((e) => e.sender === botUserId && (e.content as Record<string, { id?: string } | undefined>)["dev.ruriko.approval"]?.id === requestId);
  const react = (client: MatrixClient, eventId: string, key: string) =>
    client.sendEvent(room, EventType.Reaction, { "m.relates_to": { rel_type: RelationType.Annotation, event_id: eventId, key } });
  /** Ruriko's edits of a post (m.replace), oldest first: how the request itself now reads. */
  const editsOf = async (eventId: string) =>
    (await timeline())
      .filter((e) => e.sender === botUserId && (e.content as { "m.relates_to"?: { rel_type?: string; event_id?: string } })["m.relates_to"]?.rel_type === "m.replace" && (e.content as { "m.relates_to": { event_id: string } })["m.relates_to"].event_id === eventId)
      .map((e) => String((e.content as { "m.new_content": { body: string } })["m.new_content"].body));
  const repliesTo = async (eventId: string) =>
    (await timeline()).filter((e) => e.sender === botUserId && (e.content as { "m.relates_to"?: { "m.in_reply_to"?: { event_id?: string } } })["m.relates_to"]?.["m.in_reply_to"]?.event_id === eventId).map((e) => String((e.content as { body: string }).body));
  const pendingFor = (agent: string) => h.state.approvals.list({ status: "pending" }).find((r) => r.agent === agent);
  const containerImage = async (agent: string) => (await h.containersOf(agent))[0]?.Image;

  before(async () => {
    synapse = await startSynapse();
    const r = await synapse.registerUser("ruriko");
    const [a, b, m] = await Promise.all([synapse.registerUser("alice"), synapse.registerUser("bob"), synapse.registerUser("mallory")]);
    botUserId = r.userId;
    const botClient = createClient({ baseUrl: synapse.baseUrl, accessToken: r.accessToken, userId: r.userId });
    // The policies name the room by its alias: requests go to (and reactions are matched in) the room it stands for.
    room = (await botClient.createRoom({ name: "approvals", room_alias_name: "approvals", invite: [a.userId, b.userId, m.userId] })).room_id;
    alice = createClient({ baseUrl: synapse.baseUrl, accessToken: a.accessToken, userId: a.userId });
    bob = createClient({ baseUrl: synapse.baseUrl, accessToken: b.accessToken, userId: b.userId });
    mallory = createClient({ baseUrl: synapse.baseUrl, accessToken: m.accessToken, userId: m.userId });
    for (const c of [alice, bob, mallory]) await c.joinRoom(room);

    h = await startTestController();
    for (const tag of [IMAGE_A, IMAGE_B, IMAGE_C, IMAGE_D, IMAGE_E]) {
      const [repo, version] = tag.split(":") as [string, string];
      await h.docker.getImage(TEST_AGENT_IMAGE).tag({ repo, tag: version });
    }
    startBot = () =>
      startMatrixBot({
        homeserverUrl: synapse.baseUrl,
        userId: r.userId,
        accessToken: r.accessToken,
        room,
        outbox: h.state.outbox,
        instance: h.instance,
        logger: createLogger({ level: "error", pretty: false }),
        coalesceMs: 200,
        seen: h.state.seenEvents,
        approvals: { approvals: h.state.approvals, posts: h.state.approvalPosts, audit: h.state.audit, transaction: h.state.transaction, pollMs: 200 },
      });
    bot = startBot();
    dir = writeTree({ "p.yaml": policies("#approvals:localhost", [a.userId, b.userId]), "alpha.yaml": agentDoc("alpha", TEST_AGENT_IMAGE), "beta.yaml": agentDoc("beta", TEST_AGENT_IMAGE) });
    await h.offer(dir);
    await h.waitForStatus("alpha", isReady, "alpha Ready");
    await h.waitForStatus("beta", isReady, "beta Ready");
  });
  after(async () => {
    await bot?.stop();
    await h?.stop();
    await synapse?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    for (const tag of [IMAGE_A, IMAGE_B, IMAGE_C, IMAGE_D, IMAGE_E]) await h?.docker.getImage(tag).remove().catch(() => {});
  });

  test("quorum of two by reaction and reply; an outsider, a look-alike and a duplicate change nothing", async () => {
    writeFileSync(join(dir, "alpha.yaml"), agentDoc("alpha", IMAGE_A));
    await h.offer(dir);
    await h.waitForStatus("alpha", isAwaitingApproval, "alpha parked");
    const request = pendingFor("alpha")!;
    let post: Awaited<ReturnType<typeof postOf>>;
    await waitFor(async () => !!(post = await postOf(request.id)), "the request posted to the policy room", 30_000);
    const body = String((post!.content as { body: string }).body);
    assert.match(body, new RegExp(`Approval needed ${request.id}: Agent/alpha: image changed ${TEST_AGENT_IMAGE} → ${IMAGE_A}`));
    assert.match(body, /2 needed/);

    await react(mallory, post!.event_id!, "✅");
    const lookAlike = await mallory.sendEvent(room, EventType.RoomMessage, { msgtype: "m.notice", body, "dev.ruriko.approval": { id: request.id } } as never);
    await react(alice, lookAlike.event_id, "✅");
    await waitFor(() => h.state.audit.forTarget(`approval/${request.id}`, 50).some((e) => e.actor.startsWith("@mallory") && (e.payload as { ignored?: string }).ignored === "not-an-approver"), "the outsider's vote refused and audited", 20_000);

    const aliceVote = await react(alice, post!.event_id!, "✅");
    // Events are read in order: once this vote has counted, the outsider's and the look-alike's were read too.
    await waitFor(() => h.state.approvals.votes(request.id).length > 0, "alice's vote counted", 20_000);
    assert.deepEqual(h.state.approvals.votes(request.id).map((v) => [v.approver, v.source]), [["@alice:localhost", `matrix:${aliceVote.event_id}`]], "neither the outsider nor the look-alike counted");
    await waitFor(() => botSaid(new RegExp(`Approval ${request.id}: @alice:localhost approves \\(1 of 2\\)`)), "alice counted", 20_000);
    await react(alice, post!.event_id!, "👍️");
    await waitFor(() => h.state.audit.forTarget(`approval/${request.id}`, 50).some((e) => (e.payload as { ignored?: string }).ignored === "duplicate"), "the duplicate seen", 20_000);
    assert.equal(h.state.approvals.get(request.id)!.status, "pending", "one approver twice is still one");

    await bob.sendTextMessage(room, `approve ${request.id}`);
    await h.waitForStatus("alpha", (s) => isReady(s), "alpha Ready after approval");
    assert.equal(await containerImage("alpha"), IMAGE_A);
    await waitFor(() => botSaid(new RegExp(`Approval ${request.id} approved by @alice:localhost,@bob:localhost; the change is carried out`)), "the application posted", 20_000);
    await waitFor(async () => (await editsOf(post!.event_id!)).some((b) => b.startsWith(`[APPLIED] Approval ${request.id}`)), "the request post edited to show the outcome", 20_000);
    assert.ok((await repliesTo(post!.event_id!)).some((b) => b.startsWith(`Approval ${request.id} approved by`)), "the outcome is a reply to the request");
    const votes = h.state.audit.forTarget(`approval/${request.id}`, 50).filter((e) => e.action === "approval.approve" && e.result === "ok");
    assert.deepEqual(votes.map((e) => e.actor).sort(), ["@alice:localhost", "@bob:localhost"], "one counted vote each");
    assert.ok(votes.every((e) => typeof (e.payload as { eventId?: string }).eventId === "string" && (e.payload as { eventId: string }).eventId.startsWith("$")), "each vote audited with its event id");
  });

  test("a deny by reply with a reason; a later change supersedes the next request", async () => {
    writeFileSync(join(dir, "alpha.yaml"), agentDoc("alpha", IMAGE_B));
    await h.offer(dir);
    await waitFor(() => !!pendingFor("alpha") && pendingFor("alpha")!.toDigest !== h.state.approvals.list({ status: "applied" })[0]?.toDigest, "a new request", 20_000);
    const request = pendingFor("alpha")!;
    let post: Awaited<ReturnType<typeof postOf>>;
    await waitFor(async () => !!(post = await postOf(request.id)), "posted", 30_000);
    // A reply to the request post needs no id.
    await alice.sendEvent(room, EventType.RoomMessage, { msgtype: "m.text", body: "deny not on a Friday", "m.relates_to": { "m.in_reply_to": { event_id: post!.event_id! } } } as never);
    await h.waitForStatus("alpha", (s) => !!s?.conditions.some((c) => c.type === "Ready" && c.reason === "ApprovalDenied"), "alpha blocked by the denial");
    assert.equal(h.state.approvals.get(request.id)!.reason, "not on a Friday");
    await waitFor(() => botSaid(new RegExp(`Approval ${request.id} denied by @alice:localhost \\(not on a Friday\\)`)), "the denial posted", 20_000);
    assert.equal(await containerImage("alpha"), IMAGE_A, "nothing applied");

    // Propose going back: a new request; then the manifest moves on before anyone decides.
    writeFileSync(join(dir, "alpha.yaml"), agentDoc("alpha", TEST_AGENT_IMAGE));
    await h.offer(dir);
    await waitFor(() => !!pendingFor("alpha"), "the request to go back", 20_000);
    const back = pendingFor("alpha")!;
    await waitFor(async () => !!(await postOf(back.id)), "posted", 30_000);
    writeFileSync(join(dir, "alpha.yaml"), agentDoc("alpha", IMAGE_A));
    await h.offer(dir);
    await waitFor(() => h.state.approvals.get(back.id)!.status === "superseded", "superseded", 20_000);
    await waitFor(() => botSaid(new RegExp(`Approval ${back.id} superseded`)), "the supersession posted", 20_000);
  });

  test("a reminder before expiry, then the expiry, posted; nothing applied", async () => {
    writeFileSync(join(dir, "beta.yaml"), agentDoc("beta", IMAGE_A));
    await h.offer(dir);
    await waitFor(() => !!pendingFor("beta"), "beta parked", 20_000);
    const request = pendingFor("beta")!;
    assert.equal(request.policy, "a-fast");
    await waitFor(() => botSaid(new RegExp(`Reminder: approval ${request.id} expires`)), "the reminder", 20_000);
    await waitFor(() => botSaid(new RegExp(`Approval ${request.id} expired without a decision`)), "the expiry", 20_000);
    assert.equal(await containerImage("beta"), TEST_AGENT_IMAGE);
    const late = await postOf(request.id);
    const lateVote = await react(alice, late!.event_id!, "✅");
    // The late reaction is read, refused and audited: wait for that, not for time to pass.
    const lateRead = () => h.state.audit.forTarget(`approval/${request.id}`, 50).find((e) => (e.payload as { eventId?: string }).eventId === lateVote.event_id);
    await waitFor(() => !!lateRead(), "the late reaction read", 20_000);
    assert.equal((lateRead()!.payload as { ignored?: string }).ignored, "not-pending", "refused: the request is closed");
    assert.equal(h.state.approvals.get(request.id)!.status, "expired", "a late reaction changes nothing");
  });

  test("reactions made while Ruriko was stopped count after it starts; those it already counted count once", async () => {
    writeFileSync(join(dir, "alpha.yaml"), agentDoc("alpha", IMAGE_C));
    await h.offer(dir);
    await waitFor(() => !!pendingFor("alpha"), "a new request", 20_000);
    const request = pendingFor("alpha")!;
    let post: Awaited<ReturnType<typeof postOf>>;
    await waitFor(async () => !!(post = await postOf(request.id)), "posted", 30_000);
    await react(alice, post!.event_id!, "✅");
    await waitFor(() => h.state.approvals.votes(request.id).length === 1, "alice counted", 20_000);

    await bot.stop();
    // Nothing reads the room while the bot is stopped (stop() resolved): no wait can make this fail.
    await react(bob, post!.event_id!, "✅");
    assert.equal(h.state.approvals.get(request.id)!.status, "pending", "nobody listening yet");
    bot = startBot();
    await waitFor(() => h.state.approvals.get(request.id)!.status === "applied", "applied after the missed reaction was read", 30_000);
    await h.waitForStatus("alpha", isReady, "alpha Ready");
    assert.equal(await containerImage("alpha"), IMAGE_C);
    const votes = h.state.audit.forTarget(`approval/${request.id}`, 50).filter((e) => e.action === "approval.approve" && e.result === "ok");
    assert.deepEqual(votes.map((e) => e.actor).sort(), ["@alice:localhost", "@bob:localhost"], "alice's reaction, read again on start, is not counted twice");
  });

  test("a redacted ✅ withdraws that vote while the request is pending", async () => {
    writeFileSync(join(dir, "alpha.yaml"), agentDoc("alpha", IMAGE_D));
    await h.offer(dir);
    await waitFor(() => !!pendingFor("alpha") && pendingFor("alpha")!.summary.includes(IMAGE_D), "a new request", 20_000);
    const request = pendingFor("alpha")!;
    let post: Awaited<ReturnType<typeof postOf>>;
    await waitFor(async () => !!(post = await postOf(request.id)), "posted", 30_000);
    const vote = await react(alice, post!.event_id!, "✅");
    await waitFor(() => h.state.approvals.votes(request.id).length === 1, "alice counted", 20_000);
    await alice.redactEvent(room, vote.event_id);
    await waitFor(() => h.state.approvals.votes(request.id).length === 0, "alice's vote withdrawn", 20_000);
    await waitFor(() => botSaid(new RegExp(`Approval ${request.id}: @alice:localhost's vote was withdrawn \\(0 of 2\\)`)), "the withdrawal told", 20_000);
    await react(bob, post!.event_id!, "✅");
    await waitFor(() => h.state.approvals.votes(request.id).length === 1, "bob counted", 20_000);
    assert.equal(h.state.approvals.get(request.id)!.status, "pending", "one vote of two: the withdrawn one does not count");
    await react(alice, post!.event_id!, "✅");
    await waitFor(() => h.state.approvals.get(request.id)!.status === "applied", "applied once alice votes again", 30_000);
    assert.ok(h.state.audit.forTarget(`approval/${request.id}`, 50).some((e) => e.action === "approval.withdrawn" && e.actor === "@alice:localhost"));
  });

  test("a reply to someone else's copy of a request never decides the real one", async () => {
    writeFileSync(join(dir, "alpha.yaml"), agentDoc("alpha", IMAGE_E));
    await h.offer(dir);
    await waitFor(() => !!pendingFor("alpha") && pendingFor("alpha")!.summary.includes(IMAGE_E), "a new request", 20_000);
    const request = pendingFor("alpha")!;
    let post: Awaited<ReturnType<typeof postOf>>;
    await waitFor(async () => !!(post = await postOf(request.id)), "posted", 30_000);
    // An outsider posts a harmless-looking copy; both approvers reply to the copy, naming the real id.
    const copy = await mallory.sendEvent(room, EventType.RoomMessage, { msgtype: "m.notice", body: `Approval needed ${request.id}: Agent/alpha: fix a typo in the README`, "dev.ruriko.approval": { id: request.id } } as never);
    const replyTo = (eventId: string, body: string) => ({ msgtype: "m.text", body, "m.relates_to": { "m.in_reply_to": { event_id: eventId } } }) as never;
    await alice.sendEvent(room, EventType.RoomMessage, replyTo(copy.event_id, `approve ${request.id}`));
    await bob.sendEvent(room, EventType.RoomMessage, replyTo(copy.event_id, `approve ${request.id}`));
    // A reply to Ruriko's own post that names another request's id is a contradiction: it counts for nothing either.
    await alice.sendEvent(room, EventType.RoomMessage, replyTo(post!.event_id!, "approve 0123456789ab"));
    // The same words as a reply to Ruriko's own post do count. Events are read in order: once this one has
    // counted, the ones before it were read too.
    const real = await alice.sendEvent(room, EventType.RoomMessage, replyTo(post!.event_id!, "approve"));
    await waitFor(() => h.state.approvals.votes(request.id).length > 0, "the reply to the real post counted", 20_000);
    assert.deepEqual(h.state.approvals.votes(request.id).map((v) => [v.approver, v.source]), [["@alice:localhost", `matrix:${real.event_id}`]], "only the reply to the real post counted");
    assert.equal(h.state.approvals.get(request.id)!.status, "pending", "bob's reply to the copy did not count");
    await bob.sendEvent(room, EventType.RoomMessage, replyTo(post!.event_id!, `approve ${request.id}`));
    await waitFor(async () => h.state.approvals.get(request.id)!.status === "applied" && (await containerImage("alpha")) === IMAGE_E, "applied", 30_000);
  });
});
