/**
 * Agents' own Matrix accounts on a real Synapse, with a real controller on real Docker and real Gitai
 * agents: an account is created and its token delivered over ACP (and it works), the agent is joined to the
 * rooms its Gosuto trusts and leaves those it no longer trusts, a revoked token is replaced, a homeserver
 * that is away holds up nothing, an existing account is used as given, a taken user id and Ruriko's own
 * rooms are refused with a reason, a creation parked for approval gets no account until approved, and
 * removing the agent (after approval) deactivates its account.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createClient, Direction, Preset, Visibility, type MatrixClient } from "matrix-js-sdk";
import { AcpClient } from "../../src/acp/client.ts";
import { agentMatrixTokenSecret, matrixIdentityDigestOf, provisionedPasswordSecret, provisionedTokenSecret } from "../../src/controller/agent-config.ts";
import { startMatrixBot, type MatrixBot } from "../../src/matrix/matrix-bot.ts";
import { querySourcesFor } from "../../src/matrix/query-sources.ts";
import { createLogger } from "../../src/observability/logger.ts";
import type { AgentStatus } from "../../src/store/agent-status-store.ts";
import { isReady, startTestController, TEST_AGENT_IMAGE, waitFor, type TestController } from "../helpers/controller-harness.ts";
import { writeTree } from "../helpers/manifest-tree.ts";
import { startSynapse, type SynapseHandle } from "../helpers/synapse.ts";

const gosuto = (name: string, trust: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec:\n  trust: ${trust}\n`;
const agent = (name: string, matrix: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec: {image: "${TEST_AGENT_IMAGE}", gosuto: ${name}, matrix: ${matrix}}\n`;
const readyReason = (s: AgentStatus | undefined) => s?.conditions.find((c) => c.type === "Ready");

describe("agents' Matrix accounts (real Synapse, real Docker)", () => {
  let synapse: SynapseHandle;
  let h: TestController;
  let bot: MatrixBot;
  let botUserId: string;
  let statusRoom: string;
  let agentsRoom: string;
  let lobbyRoom: string;
  let alice: MatrixClient;
  let dir: string;
  const acp = new AcpClient();

  const clientFor = (accessToken: string, userId?: string) => createClient({ baseUrl: synapse.baseUrl, accessToken, ...(userId ? { userId } : {}) });
  /** A provisioned agent's token, from the secret store (its first account's localpart is its name). */
  const tokenOf = (agentName: string) => h.vault.secrets.reveal(provisionedTokenSecret(agentName));
  /** What the running agent itself says it holds, over ACP. */
  const agentReport = async (agentName: string) => {
    const [container] = await h.runtime.list(agentName);
    return acp.status({ agent: agentName, baseUrl: `http://127.0.0.1:${container!.controlHostPort}`, token: h.vault.tokens.get(agentName)! }, "test");
  };
  const joinedRooms = async (accessToken: string) => (await clientFor(accessToken).getJoinedRooms()).joined_rooms.sort();
  /**
   * The rooms Ruriko has recorded an agent's account in, by id. A room is recorded once the homeserver has
   * answered the join (or the leave): wait for the record, then ask the homeserver — never the other way round.
   */
  const recordedRooms = (agentName: string) => Object.values(h.state.matrixAccounts.current(agentName)?.rooms ?? {}).sort().join();
  /**
   * Returns once the accounts reconciler has run a whole pass that began after this call, with the manifests
   * then in the directory in force: `late` is made to trust the lobby, then nothing, and each time the test waits
   * for Ruriko's record of the join (then the leave). The pass that records the leave began after the join was
   * recorded, so the pass that recorded the join is over. A check that something did not happen, without a sleep.
   */
  const accountsPassOver = async () => {
    writeFileSync(join(dir, "late.yaml"), `${gosuto("late", `{allowedRooms: ["${lobbyRoom}"]}`)}---\n${agent("late", "{provision: true}")}`);
    await h.offer(dir);
    await waitFor(() => recordedRooms("late") === lobbyRoom, "a pass of the accounts reconciler (late joined the lobby)", 30_000);
    writeFileSync(join(dir, "late.yaml"), `${gosuto("late", "{}")}---\n${agent("late", "{provision: true}")}`);
    await h.offer(dir);
    await waitFor(() => recordedRooms("late") === "", "the next pass of the accounts reconciler (late left the lobby)", 30_000);
  };
  const statusSaid = async (pattern: RegExp) => {
    const page = await alice.createMessagesRequest(statusRoom, null, 200, Direction.Backward);
    return page.chunk.some((e) => e.sender === botUserId && pattern.test(String((e.content as { body?: string }).body)));
  };

  before(async () => {
    synapse = await startSynapse();
    const r = await synapse.registerUser("ruriko");
    const a = await synapse.registerUser("alice");
    botUserId = r.userId;
    const ruriko = clientFor(r.accessToken, r.userId);
    alice = clientFor(a.accessToken, a.userId);
    statusRoom = (await ruriko.createRoom({ name: "status", invite: [a.userId] })).room_id;
    await alice.joinRoom(statusRoom);
    // Invite-only, Ruriko in it: the agent gets in by Ruriko's invitation. Public, with an alias: it joins by itself.
    agentsRoom = (await ruriko.createRoom({ name: "agents", preset: Preset.PrivateChat })).room_id;
    lobbyRoom = (await alice.createRoom({ name: "lobby", preset: Preset.PublicChat, visibility: Visibility.Public, room_alias_name: "lobby" })).room_id;

    h = await startTestController({
      // Host networking: the agents really sign in to the homeserver on this host's loopback.
      agentNetwork: "host",
      agentMatrixHomeserver: synapse.baseUrl,
      onSnapshot: (e) => bot.onSnapshot(e),
      onTransition: (t) => bot.onTransition(t),
      onChange: (c) => bot.onChange(c),
    });
    bot = startMatrixBot({
      homeserverUrl: synapse.baseUrl,
      userId: r.userId,
      accessToken: r.accessToken,
      room: statusRoom,
      outbox: h.state.outbox,
      instance: h.instance,
      logger: createLogger({ level: "error", pretty: false }),
      coalesceMs: 200,
      seen: h.state.seenEvents,
      accounts: {
        registrationSecret: () => synapse.registrationSharedSecret,
        accounts: h.state.matrixAccounts,
        secrets: h.vault.secrets,
        audit: h.state.audit,
        desired: () => h.controller.snapshot,
        appliedGosuto: (name) => h.state.appliedConfig.get(name).gosuto,
        runs: (name) => h.state.inventory.get(name) !== undefined,
        transaction: h.state.transaction,
        onAccountChanged: (name, traceId) => h.controller.queue.add(name, traceId, { urgent: true }),
        intervalMs: 300,
        verifyEveryMs: 500,
      },
    });
    dir = writeTree({ "prov.yaml": `${gosuto("prov", `{allowedRooms: ["${agentsRoom}", "*"], adminRoom: "#lobby:localhost"}`)}---\n${agent("prov", `{provision: true, displayName: "Prov Bot"}`)}` });
    await h.offer(dir);
  });
  after(async () => {
    await bot?.stop();
    await h?.stop();
    await synapse?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("an account is created, its delivered token works, and the agent is in the rooms its Gosuto trusts", async () => {
    await h.waitForStatus("prov", isReady, "prov Ready with its account");
    const account = h.state.matrixAccounts.current("prov")!;
    assert.equal(account.userId, "@prov:localhost");
    const token = tokenOf("prov")!;
    const report = await agentReport("prov");
    assert.equal(report.matrix?.userId, "@prov:localhost", "the agent holds its identity");
    assert.equal(report.matrix?.homeserver, synapse.baseUrl);
    assert.equal(report.matrix?.digest, matrixIdentityDigestOf(synapse.baseUrl, "@prov:localhost", token.info), "it holds exactly the stored token");

    const session = clientFor(token.value.toString("utf8"));
    assert.equal((await session.whoami()).user_id, "@prov:localhost", "the delivered token logs in");
    // Ready says the agent holds its identity, not that it is in its rooms: the token is stored (and so delivered)
    // as soon as the account is registered, and the joins come after.
    await waitFor(() => recordedRooms("prov") === [agentsRoom, lobbyRoom].sort().join(), "prov's trusted rooms joined", 20_000);
    assert.deepEqual(await joinedRooms(token.value.toString("utf8")), [agentsRoom, lobbyRoom].sort(), "in its trusted rooms (not in *)");
    assert.equal((await session.getProfileInfo("@prov:localhost")).displayname, "Prov Bot");

    await waitFor(() => statusSaid(/Matrix account @prov:localhost created for prov/), "the status room told", 20_000);
    assert.equal(querySourcesFor({ state: h.state, snapshot: () => h.controller.snapshot, runtime: h.runtime }).agentMatrix("prov"), "@prov:localhost (provisioned)", "/ruriko agent prov names it");
    const secretText = token.value.toString("utf8");
    assert.ok(!readFileSync(h.logFile, "utf8").includes(secretText), "the token is not in Ruriko's log");
    const [container] = await h.containersOf("prov");
    assert.ok(!JSON.stringify(await h.docker.getContainer(container!.Id).inspect()).includes(secretText), "nor in docker inspect");
    assert.ok(!JSON.stringify(h.state.audit.forTarget("Agent/prov", 100)).includes(secretText), "nor in the audit log");
  });

  test("a room no longer trusted is left (one renamed from alias to id is not); a revoked token is replaced and delivered", async () => {
    writeFileSync(join(dir, "prov.yaml"), `${gosuto("prov", `{allowedRooms: ["${agentsRoom}", "${lobbyRoom}"]}`)}---\n${agent("prov", `{provision: true, displayName: "Prov Bot"}`)}`);
    await h.offer(dir);
    await waitFor(() => Object.keys(h.state.matrixAccounts.current("prov")!.rooms).includes(lobbyRoom), "the lobby now known by its id", 20_000);
    assert.deepEqual(await joinedRooms(tokenOf("prov")!.value.toString("utf8")), [agentsRoom, lobbyRoom].sort(), "the same room by another name: not left");
    assert.ok(!h.state.audit.forTarget("Agent/prov", 100).some((e) => e.action === "matrix.account.left"));

    writeFileSync(join(dir, "prov.yaml"), `${gosuto("prov", `{allowedRooms: ["${agentsRoom}"]}`)}---\n${agent("prov", `{provision: true, displayName: "Prov Bot"}`)}`);
    await h.offer(dir);
    await waitFor(() => recordedRooms("prov") === agentsRoom, "the lobby left", 20_000);
    assert.deepEqual(Object.keys(h.state.matrixAccounts.current("prov")!.rooms), [agentsRoom]);
    assert.deepEqual(await joinedRooms(tokenOf("prov")!.value.toString("utf8")), [agentsRoom], "left on the homeserver");
    assert.equal(h.state.audit.forTarget("Agent/prov", 100).filter((e) => e.action === "matrix.account.left").length, 1);

    const old = tokenOf("prov")!;
    await clientFor(old.value.toString("utf8")).logout();
    await waitFor(() => tokenOf("prov")!.info.revision !== old.info.revision, "a new token stored", 20_000);
    const renewed = tokenOf("prov")!;
    await waitFor(async () => (await agentReport("prov")).matrix?.digest === matrixIdentityDigestOf(synapse.baseUrl, "@prov:localhost", renewed.info), "the new token delivered", 20_000);
    assert.equal((await clientFor(renewed.value.toString("utf8")).whoami()).user_id, "@prov:localhost");
    // The agent itself signs in again with it.
    await waitFor(async () => (await agentReport("prov")).conversation?.state === "connected", "the agent connected with the new token", 20_000);
    await h.waitForStatus("prov", isReady, "Ready");
  });

  test("while the homeserver is away a new agent runs and says it waits for its account; it gets it once the homeserver is back", async () => {
    await synapse.pause();
    writeFileSync(join(dir, "late.yaml"), `${gosuto("late", "{}")}---\n${agent("late", "{provision: true}")}`);
    await h.offer(dir);
    const waiting = await h.waitForStatus("late", (s) => readyReason(s)?.reason === "MatrixAccountPending" && !!s?.gosutoDigest, "late configured, waiting for its account");
    assert.equal(waiting!.containerState, "running", "the agent is not held up by the homeserver");
    assert.equal((await agentReport("late")).matrix, null);
    await synapse.resume();
    await h.waitForStatus("late", isReady, "late Ready once the homeserver is back", 90_000);
    assert.equal((await agentReport("late")).matrix?.userId, "@late:localhost");
  });

  test("an existing account is used as given once its token is stored; a taken user id and Ruriko's own rooms are refused with the reason", async () => {
    const helper = await synapse.registerUser("helper");
    await synapse.registerUser("taken");
    writeFileSync(join(dir, "helper.yaml"), `${gosuto("helper", "{}")}---\n${agent("helper", `{userId: "@helper:localhost"}`)}`);
    writeFileSync(join(dir, "taken.yaml"), `${gosuto("taken", "{}")}---\n${agent("taken", "{provision: true}")}`);
    writeFileSync(join(dir, "nosy.yaml"), `${gosuto("nosy", `{allowedRooms: ["${statusRoom}"]}`)}---\n${agent("nosy", "{provision: true}")}`);
    await h.offer(dir);
    const nosy = await h.waitForStatus("nosy", (s) => readyReason(s)?.reason === "MatrixAccountFailed", "nosy refused its room");
    assert.match(readyReason(nosy)!.message, /one of Ruriko's own rooms .*: Ruriko does not invite agents into them/);
    assert.equal((await agentReport("nosy")).matrix?.userId, "@nosy:localhost", "it still has its account, only not that room");
    const missing = await h.waitForStatus("helper", (s) => readyReason(s)?.reason === "MatrixTokenMissing", "helper waits for its token");
    assert.match(readyReason(missing)!.message, /ruriko secret set agent\.helper\.matrix-token/);
    const taken = await h.waitForStatus("taken", (s) => readyReason(s)?.reason === "MatrixAccountFailed", "taken refused");
    assert.match(readyReason(taken)!.message, /taken by an account Ruriko did not create/);

    h.vault.secrets.set(agentMatrixTokenSecret("helper"), Buffer.from(helper.accessToken));
    await h.waitForStatus("helper", isReady, "helper Ready with its token");
    assert.equal((await agentReport("helper")).matrix?.userId, "@helper:localhost");
    assert.equal(h.state.matrixAccounts.current("helper"), undefined, "Ruriko created nothing for it");
  });

  test("an agent whose creation waits for approval gets no account until it is approved", async () => {
    writeFileSync(
      join(dir, "policy.yaml"),
      `apiVersion: ruriko.dev/v1alpha1\nkind: ApprovalPolicy\nmetadata: {name: gate}\nspec:\n  room: "${statusRoom}"\n  approvers: ["@alice:localhost"]\n  rules: [{match: {kind: Agent, operation: create, names: [gated]}, require: approval}]\n`,
    );
    // A new policy is itself a change: in force only once the policies already in force (here none: the local operator) approve it.
    await h.offer(dir);
    let policyChange: ReturnType<typeof h.state.approvals.list>[number] | undefined;
    await waitFor(() => !!(policyChange = h.state.approvals.list({ status: "pending" }).find((r) => r.objectKey === "ApprovalPolicy/gate")), "the new policy parked", 20_000);
    h.state.approvals.vote(policyChange!.id, { approver: "test-operator", decision: "approve", source: "test", override: true });
    await waitFor(() => h.state.policies.get("gate") !== undefined, "the policy in force", 20_000);

    writeFileSync(join(dir, "gated.yaml"), `${gosuto("gated", "{}")}---\n${agent("gated", "{provision: true}")}`);
    await h.offer(dir);
    let request: ReturnType<typeof h.state.approvals.list>[number] | undefined;
    await waitFor(() => !!(request = h.state.approvals.list({ status: "pending" }).find((r) => r.agent === "gated")), "the creation parked", 20_000);
    await accountsPassOver();
    assert.equal(h.state.matrixAccounts.current("gated"), undefined, "no account for an agent that does not exist yet");
    h.state.approvals.vote(request!.id, { approver: "@alice:localhost", decision: "approve", source: "test" });
    await h.waitForStatus("gated", isReady, "gated Ready with its account");
    assert.equal((await agentReport("gated")).matrix?.userId, "@gated:localhost");
  });

  test("removing the agent, once approved, deactivates its account and forgets its credentials", async () => {
    const token = tokenOf("prov")!.value.toString("utf8");
    const password = h.vault.secrets.reveal(provisionedPasswordSecret("prov"))!.value.toString("utf8");
    unlinkSync(join(dir, "prov.yaml"));
    await h.offer(dir);
    let request: ReturnType<typeof h.state.approvals.list>[number] | undefined;
    await waitFor(() => !!(request = h.state.approvals.list({ status: "pending" }).find((r) => r.agent === "prov" && r.operation === "delete")), "the removal parked", 20_000);
    await accountsPassOver();
    assert.equal(h.state.matrixAccounts.current("prov")?.state, "active", "nothing deactivated before the approval");
    assert.equal((await clientFor(token).whoami()).user_id, "@prov:localhost");

    h.state.approvals.vote(request!.id, { approver: "test-operator", decision: "approve", source: "test", override: true });
    await waitFor(() => h.state.matrixAccounts.current("prov") === undefined, "the account deactivated", 30_000);
    await assert.rejects(clientFor(token).whoami(), (e: { httpStatus?: number }) => e.httpStatus === 401, "its token no longer works");
    await assert.rejects(
      createClient({ baseUrl: synapse.baseUrl }).loginRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: "prov" }, password }),
      (e: { errcode?: string }) => e.errcode === "M_USER_DEACTIVATED" || e.errcode === "M_FORBIDDEN",
      "nobody can log in to it",
    );
    assert.equal(tokenOf("prov"), undefined);
    assert.equal(h.vault.secrets.info(provisionedPasswordSecret("prov")), undefined);
    await waitFor(() => statusSaid(/Matrix account @prov:localhost of removed agent prov deactivated/), "the status room told", 20_000);
  });
});
