/**
 * The whole path, as an operator runs it: manifests in git → `ruriko serve --agent-network host` → Gitai in its
 * image, with the Matrix account Ruriko provisioned for it on a real Synapse → the model stand-in (OpenAI wire
 * format) → `gitai-http-tool`, the MCP server shipped in the image → a loopback HTTP server → the reply in the
 * room. Then what an operator changes while it runs: a capability removed in git, a rotated API key, a tool
 * server killed inside the container, a tool server that cannot start.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Docker from "dockerode";
import { simpleGit, type SimpleGit } from "simple-git";
import type { StatusReport } from "../../src/controller/status-report.ts";
import { ensureAgentImage, newStateDir, removeInstanceResources, TEST_AGENT_IMAGE, waitFor } from "../helpers/controller-harness.ts";
import { matrixApi, say as sayIn, startPageServer, timeline as roomTimeline } from "../helpers/matrix-chat.ts";
import { startModelStandin, type ModelStandin, type RecordedRequest } from "../helpers/model-standin.ts";
import { startServe, type ServeProcess } from "../helpers/serve-process.ts";
import { startSynapse, type SynapseHandle } from "../helpers/synapse.ts";

const CLI = join(import.meta.dirname, "../../src/cli/ruriko.ts");
const KEY_1 = "sk-e2e-key-one-7c1d";
const KEY_2 = "sk-e2e-key-two-93ab";

type User = { userId: string; accessToken: string };
type AgentReport = StatusReport["agents"][number];

describe("an agent end to end under ruriko serve (host networking, real Synapse, Gitai in its image)", () => {
  const docker = new Docker();
  const { stateDir, instance } = newStateDir();
  const base = mkdtempSync(join(tmpdir(), "ruriko-e2e-"));
  let synapse: SynapseHandle;
  let model: ModelStandin;
  let page: Server;
  let pageHits: string[];
  let pageUrl: string;
  let serve: ServeProcess;
  let git: SimpleGit;
  let masterKey: string;
  let ruriko: User;
  let alice: User;
  let mallory: User;
  let room: string;
  let statusRoom: string;

  const api = (token: string, method: string, path: string, body?: unknown) => matrixApi(synapse.baseUrl, token, method, path, body);
  const say = (who: User, body: string) => sayIn(synapse.baseUrl, who, room, body);
  const timeline = (roomId: string) => roomTimeline(synapse.baseUrl, alice, roomId);
  const replyTo = async (eventId: string) => (await timeline(room)).find((c) => c.sender === "@helper:localhost" && c.inReplyTo === eventId);
  const waitForReply = async (eventId: string) => {
    await waitFor(async () => !!(await replyTo(eventId)), "the agent's reply", 60_000);
    return (await replyTo(eventId))!;
  };
  const statusSays = async (pattern: RegExp) => (await timeline(statusRoom)).filter((c) => c.sender === ruriko.userId && pattern.test(c.body));
  const agent = async (): Promise<AgentReport | undefined> => (await serve.status())?.agents.find((a) => a.name === "helper");
  /** Waits until Ruriko's status of the agent (what the agent last reported included) passes `check`. */
  const waitForAgent = async (check: (a: AgentReport) => boolean, what: string) => {
    let last: AgentReport | undefined;
    await waitFor(async () => {
      last = await agent();
      return !!last && check(last);
    }, what, 120_000).catch((error: Error) => {
      throw new Error(`${error.message}\nlast status: ${JSON.stringify(last)}\n${serve.logTail(30)}`);
    });
    return last!;
  };
  const toolMessages = (r: RecordedRequest) => ((r.body.messages as Array<{ role: string; content: string }>) ?? []).filter((m) => m.role === "tool").map((m) => m.content);
  const userMessages = (r: RecordedRequest) => ((r.body.messages as Array<{ role: string; content: string }>) ?? []).filter((m) => m.role === "user").map((m) => m.content);
  const offered = (r: RecordedRequest) => ((r.body.tools as Array<{ function: { name: string } }>) ?? []).map((t) => t.function.name);
  const chatRequests = () => model.requests.filter((r) => r.path.endsWith("/chat/completions"));
  const cli = (args: string[], input = "") => {
    const run = spawnSync(process.execPath, [CLI, ...args, "--state-dir", stateDir], { encoding: "utf8", input, timeout: 60_000, env: { ...process.env, RURIKO_MASTER_KEY: masterKey } });
    assert.equal(run.status, 0, `ruriko ${args.join(" ")}: ${run.stderr}`);
    return run.stdout;
  };

  const gosuto = (opts: { intranet: boolean; broken?: boolean }) => `apiVersion: ruriko.dev/v1alpha1
kind: Gosuto
metadata: {name: helper}
spec:
  trust:
    allowedRooms: ["${room}"]
    allowedSenders: ["${alice.userId}"]
  mcps:
    - name: web
      command: gitai-http-tool
${opts.broken ? "    - name: broken\n      command: no-such-mcp-server\n" : ""}  capabilities:
${opts.intranet ? `    - {name: intranet, mcp: web, tool: http_get, allow: true, constraints: {url_prefix: "${pageUrl}/intranet/"}}\n` : ""}    - {name: deny-all, mcp: "*", tool: "*", allow: false}
  persona:
    llmProvider: openai
    baseUrl: "${model.baseUrl}"
    model: standin-large
    systemPrompt: You answer from the intranet.
    apiKeySecretRef: llm-key
  limits: {maxTurnSteps: 4}
`;
  const AGENT = `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: helper}\nspec:\n  image: ${TEST_AGENT_IMAGE}\n  gosuto: helper\n  matrix: {provision: true}\n  resources: {memory: 512Mi}\n`;
  const BINDING = `apiVersion: ruriko.dev/v1alpha1\nkind: SecretBinding\nmetadata: {name: helper-llm}\nspec: {agent: helper, secret: llm-key}\n`;
  const commit = async (files: Record<string, string>, message: string) => {
    const work = join(base, "work");
    for (const [p, c] of Object.entries(files)) {
      mkdirSync(join(work, p, ".."), { recursive: true });
      writeFileSync(join(work, p), c);
    }
    await git.add(["-A"]).commit(message);
    await git.push("origin", "main");
  };

  before(async () => {
    await ensureAgentImage(docker);
    [synapse, model] = await Promise.all([startSynapse(), startModelStandin()]);
    ({ server: page, hits: pageHits, url: pageUrl } = await startPageServer({ "/intranet/menu": "Today: lentil soup." }));

    ruriko = await synapse.registerUser("ruriko");
    alice = await synapse.registerUser("alice");
    mallory = await synapse.registerUser("mallory");
    statusRoom = (await api(ruriko.accessToken, "POST", "/createRoom", { name: "status", invite: [alice.userId] })).room_id as string;
    // Ruriko is in the agent's room: it invites the account it provisions.
    room = (await api(ruriko.accessToken, "POST", "/createRoom", { name: "ops", preset: "private_chat", invite: [alice.userId, mallory.userId] })).room_id as string;
    for (const [who, r] of [[alice, statusRoom], [alice, room], [mallory, room]] as const) await api(who.accessToken, "POST", `/join/${encodeURIComponent(r)}`, {});

    masterKey = spawnSync(process.execPath, [CLI, "secret", "keygen"], { encoding: "utf8" }).stdout.trim();
    cli(["secret", "set", "llm-key"], `${KEY_1}\n`);

    const bare = join(base, "origin.git");
    await simpleGit().init(true, [bare, "--initial-branch=main"]);
    await simpleGit().clone(bare, join(base, "work"));
    git = simpleGit(join(base, "work"));
    await git.addConfig("user.name", "Ops").addConfig("user.email", "ops@example.org").checkoutLocalBranch("main");
    await commit({ "agents/helper.yaml": `${gosuto({ intranet: true })}---\n${AGENT}---\n${BINDING}` }, "add helper");

    serve = await startServe(
      ["--git", bare, "--git-interval", "1", "--agent-network", "host", "--agent-poll", "1", "--matrix-homeserver", synapse.baseUrl, "--matrix-user", ruriko.userId, "--status-room", statusRoom, "--matrix-operators", alice.userId],
      { stateDir, env: { RURIKO_MASTER_KEY: masterKey, RURIKO_MATRIX_ACCESS_TOKEN: ruriko.accessToken, RURIKO_MATRIX_REGISTRATION_SECRET: synapse.registrationSharedSecret } },
    );
    // Granting a secret needs approval: with no policy in force, the local operator's.
    let request: string | undefined;
    await waitFor(() => {
      request = (JSON.parse(cli(["approvals", "list", "-o", "json"])) as Array<{ id: string; summary: string }>).find((r) => /helper-llm|llm-key/.test(r.summary))?.id;
      return !!request;
    }, "the grant of llm-key waits for approval", 120_000);
    cli(["approvals", "approve", request!, "--reason", "e2e"]);
    await waitForAgent((a) => {
      return a.phase === "Ready" && a.runtime?.conversation?.rooms?.includes(room) === true && a.runtime.mcps.some((m) => m.name === "web" && m.state === "running") && a.runtime.model?.state === "ready";
    }, "helper Ready: in its room, its tool server running, its model ready");
  });
  after(async () => {
    await serve?.stop();
    await removeInstanceResources(docker, instance).catch(() => {});
    await model?.close();
    page?.close();
    await synapse?.stop();
    rmSync(base, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  });

  test("an allowed sender asks; the model calls the allowed tool; the server in the image does it; the answer is a reply", async () => {
    model.reset();
    model.script({ toolCalls: [{ name: "web__http_get", arguments: { url: `${pageUrl}/intranet/menu` } }] }, (r) => ({ text: `The menu: ${toolMessages(r).at(-1)}` }));
    const asked = await say(alice, "What is for lunch?");
    const reply = await waitForReply(asked);
    assert.match(reply.body, /^The menu: HTTP 200\n\nToday: lentil soup\.$/);
    assert.deepEqual(pageHits, ["/intranet/menu"]);
    const [first, second] = chatRequests();
    assert.equal(first!.headers.authorization, `Bearer ${KEY_1}`);
    assert.deepEqual(userMessages(first!), ["What is for lunch?"]);
    assert.ok(offered(first!).includes("web__http_get"));
    assert.equal((first!.body.messages as Array<{ role: string; content: string }>)[0]!.content, "You answer from the intranet.");
    assert.deepEqual(toolMessages(second!), ["HTTP 200\n\nToday: lentil soup."]);
    const a = await waitForAgent((x) => (x.runtime?.counters?.toolCallsAllowed ?? 0) >= 1, "the allowed call counted");
    assert.ok((a.runtime!.counters!.messagesAnswered ?? 0) >= 1);
  });

  test("an outsider's message never reaches the model; a call the policy denies is never executed", async () => {
    model.reset();
    const ignored = await say(mallory, "Fetch the private page for me.");
    // The agent handles a room's messages in order: once alice's later question is answered, mallory's was seen.
    model.script({ toolCalls: [{ name: "web__http_get", arguments: { url: `${pageUrl}/private/payroll` } }] }, (r) => ({ text: `Could not: ${toolMessages(r).at(-1)}` }));
    const asked = await say(alice, "And the payroll page?");
    const reply = await waitForReply(asked);
    assert.match(reply.body, /^Could not: denied by policy \(rule deny-all\)/);
    assert.equal(await replyTo(ignored), undefined, "the outsider gets no answer");
    assert.ok(chatRequests().every((r) => !JSON.stringify(r.body).includes("Fetch the private page")), "the outsider's words never reached the model");
    assert.ok(!pageHits.some((h) => h.startsWith("/private")), "the denied call was not executed");
    const a = await waitForAgent((x) => (x.runtime?.counters?.messagesIgnored ?? 0) >= 1 && (x.runtime?.counters?.toolCallsDenied ?? 0) >= 1, "counted");
    assert.ok(a.runtime!.counters!.messagesIgnored! >= 1);

    // One audit trail: the agent's decisions reach Ruriko's audit log, under the turn's trace id.
    await waitFor(async () => (await statusSays(/helper: tool web\.http_get denied by policy \(rule deny-all\)/)).length > 0, "the status room hears of the denial", 60_000);
    const [denial] = await statusSays(/helper: tool web\.http_get denied by policy/);
    const traceId = /\[trace ([0-9a-f]+)\]/.exec(denial!.body)?.[1];
    assert.ok(traceId, denial!.body);
    await sayIn(synapse.baseUrl, alice, statusRoom, `/ruriko trace ${traceId}`);
    const answer = async () => (await timeline(statusRoom)).find((c) => c.sender === ruriko.userId && c.body.includes("agent.message.accepted") && c.body.includes(traceId!));
    await waitFor(async () => !!(await answer()), "Ruriko answers the trace query", 60_000);
    const trace = (await answer())!.body;
    for (const action of ["agent.message.accepted", "agent.tool.denied"]) assert.ok(trace.includes(action), `${action} in:\n${trace}`);
    assert.ok(!trace.includes("payroll page"), "no message body in the audit trail");
  });

  test("a Gosuto edit in git that removes the capability takes effect without recreating the container", async () => {
    const before = (await agent())!;
    await commit({ "agents/helper.yaml": `${gosuto({ intranet: false })}---\n${AGENT}---\n${BINDING}` }, "helper: no more intranet");
    const after = await waitForAgent((a) => a.agent.gosutoDigest !== before.agent.gosutoDigest && a.phase === "Ready", "the new Gosuto applied");
    assert.equal(after.container?.id, before.container?.id, "same container");
    model.reset();
    model.script({ text: "I cannot read the intranet any more." });
    const asked = await say(alice, "Menu again?");
    await waitForReply(asked);
    assert.deepEqual(offered(chatRequests()[0]!), [], "the tool is no longer offered to the model");
  });

  test("a rotated API key reaches the model without a restart", async () => {
    const before = (await agent())!;
    cli(["secret", "rotate", "llm-key"], `${KEY_2}\n`);
    await waitForAgent((a) => a.agent.secretsDigest !== before.agent.secretsDigest, "the new key delivered");
    model.reset();
    model.script({ text: "still here" });
    await waitForReply(await say(alice, "Are you there?"));
    assert.equal(chatRequests()[0]!.headers.authorization, `Bearer ${KEY_2}`);
    assert.equal((await agent())!.container?.id, before.container?.id);
  });

  test("a tool server killed inside the container is restarted, and /status shows it", async () => {
    const { container } = (await agent())!;
    const top = await docker.getContainer(container!.id).top({ ps_args: "-eo pid,args" });
    const pidColumn = top.Titles.indexOf("PID");
    const tool = (top.Processes as string[][]).find((p) => p.join(" ").includes("gitai-http-tool"));
    assert.ok(tool, `the tool server runs in the container: ${JSON.stringify(top.Processes)}`);
    process.kill(Number(tool[pidColumn]), "SIGKILL");
    const a = await waitForAgent((x) => x.runtime?.mcps.some((m) => m.name === "web" && m.state === "running" && (m.restarts ?? 0) >= 1) === true, "the tool server restarted");
    assert.match(a.runtime!.mcps.find((m) => m.name === "web")!.lastError ?? "", /exited/);
  });

  test("a tool server that cannot start makes the agent Degraded, told once in the status room; fixed, it is Ready again", async () => {
    // Counted by what it is about: the status room batches what happens together, so the previous test's own
    // Degraded (its tool server killed) may be told in the same message as this commit.
    const brokenTold = /helper is not Ready \(Degraded\): MCP server broken/g;
    const count = async () => (await statusSays(/helper/)).reduce((n, c) => n + (c.body.match(brokenTold)?.length ?? 0), 0);
    const toldBefore = await count();
    await commit({ "agents/helper.yaml": `${gosuto({ intranet: false, broken: true })}---\n${AGENT}---\n${BINDING}` }, "helper: a server that does not exist");
    const degraded = await waitForAgent((a) => a.phase === "Degraded", "Degraded");
    const ready = degraded.conditions.find((c) => c.type === "Ready")!;
    assert.match(ready.message, /MCP server broken (restarting|failed).*no-such-mcp-server/);
    await waitFor(async () => (await statusSays(/helper is not Ready \(Degraded\): MCP server broken/)).length > 0, "the status room told", 60_000);
    await commit({ "agents/helper.yaml": `${gosuto({ intranet: false })}---\n${AGENT}---\n${BINDING}` }, "helper: drop the broken server");
    await waitForAgent((a) => a.phase === "Ready", "Ready again");
    await waitFor(async () => (await statusSays(/helper is Ready again \(was Degraded\)/)).length > 0, "the recovery told", 60_000);
    const told = (await count()) - toldBefore;
    assert.equal(told, 1, `told once, however many times the server failed: ${JSON.stringify((await statusSays(/helper/)).map((c) => c.body))}`);
  });
});
