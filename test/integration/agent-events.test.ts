/**
 * One audit trail: a Gitai (in-process, its real ACP server and journal file) records decisions; Ruriko's agent
 * sync reads them over ACP into a real SQLite audit log. An idle agent costs no /events request; seq survives a
 * Gitai restart; a gap and a replaced journal are recorded as such.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { AcpClient } from "../../src/acp/client.ts";
import type { AgentManifest } from "../../src/api/generated/types.ts";
import type { AgentConfigEvent } from "../../src/controller/agent-sync.ts";
import { AgentSync } from "../../src/controller/agent-sync.ts";
import { EventJournal } from "../../src/gitai/events/journal.ts";
import { EVENTS_FILE, startGitai, type Gitai } from "../../src/gitai/gitai.ts";
import { describeChange } from "../../src/matrix/status-messages.ts";
import { answerQuery } from "../../src/matrix/queries.ts";
import { createLogger } from "../../src/observability/logger.ts";
import type { ObservedContainer } from "../../src/runtime/runtime.ts";
import { generateMasterKeyText } from "../../src/secrets/crypto.ts";
import { openVault, type Vault } from "../../src/secrets/vault.ts";
import { openState, type StateStores } from "../../src/store/state.ts";

const AGENT = "newsbot";
const MANIFEST = { apiVersion: "ruriko.dev/v1alpha1", kind: "Agent", metadata: { name: AGENT }, spec: { image: "ruriko/gitai:test", gosuto: AGENT } } as AgentManifest;

describe("agent decisions reach Ruriko's audit log over ACP", () => {
  let stateDir: string;
  let dataDir: string;
  let state: StateStores;
  let vault: Vault;
  let gitai: Gitai;
  let sync: AgentSync;
  let token: string;
  /** Gitai's request log: every ACP request it answered, by path. */
  const requests: string[] = [];
  const told: AgentConfigEvent[] = [];
  const silent = createLogger({ level: "silent", pretty: false });
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) {
        const entry = JSON.parse(line) as { msg?: string; path?: string };
        if (entry.msg === "acp request" && entry.path) requests.push(entry.path);
      }
      cb();
    },
  });
  const count = (path: string) => requests.filter((p) => p === path).length;

  /** Starts Gitai on the data volume, handing it the token as Ruriko does (a file it takes once per process). */
  const startAgent = async () => {
    writeFileSync(join(dataDir, "acp-token"), token, { mode: 0o600 });
    gitai = await startGitai({ host: "127.0.0.1", port: 0, agent: AGENT, dataDir, logger: createLogger({ level: "info", pretty: false, destination: sink }) });
  };
  const observed = (): ObservedContainer => ({ id: "in-process", name: AGENT, agent: AGENT, image: "ruriko/gitai:test", state: "running", exitCode: 0, oomKilled: false, specDigest: "", revision: "", controlHostPort: gitai.port });
  const reconcile = (traceId: string) => sync.sync({ manifest: MANIFEST, observed: observed(), applied: { gosuto: null, matrixUserId: null, grants: [] }, bindings: [], bootWaitMs: 5000, traceId, log: silent });
  const decisions = () => state.audit.byActor(`agent:${AGENT}`, 100).reverse();
  /** What the collection itself recorded under a reconcile's trace (beside, say, the secrets a restarted agent gets again). */
  const collection = (traceId: string) => state.audit.byTrace(traceId).filter((e) => e.action.startsWith("agent.events."));

  before(async () => {
    stateDir = mkdtempSync(join(tmpdir(), "ruriko-events-"));
    dataDir = mkdtempSync(join(tmpdir(), "gitai-events-"));
    state = openState(stateDir);
    vault = openVault(state, { stateDir, env: { RURIKO_MASTER_KEY: generateMasterKeyText() } });
    token = vault.tokens.issue(AGENT);
    const never = () => Promise.reject(new Error("the agent holds the token on record"));
    sync = new AgentSync({
      acp: new AcpClient({ retries: 0 }),
      secrets: vault.secrets,
      tokens: vault.tokens,
      matrixAccounts: state.matrixAccounts,
      audit: state.audit,
      eventCursors: state.eventCursors,
      transaction: state.transaction,
      handOverToken: never,
      restartWithNewToken: never,
      agentStartGraceMs: 5000,
      onEvent: (e) => told.push(e),
      now: () => new Date(),
    });
    await startAgent();
  });
  after(async () => {
    await gitai?.close();
    state?.close();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test("GET /events needs the token and a well-formed query", async () => {
    const base = `http://127.0.0.1:${gitai.port}`;
    assert.equal((await fetch(`${base}/events`)).status, 401);
    const bad = await fetch(`${base}/events?after=-1&limit=9999`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(bad.status, 400);
    const body = (await bad.json()) as { error: string; details: string[] };
    assert.equal(body.error, "bad events query");
    assert.equal(body.details.length, 2);
  });

  test("decisions are collected with the agent's trace ids; the status room hears the denial and the limit", async () => {
    const before = count("/events");
    gitai.events.record({ kind: "message.accepted", traceId: "turn-1", room: "!r:hs", sender: "@alice:hs", size: 42 });
    gitai.events.record({ kind: "tool.denied", traceId: "turn-1", mcp: "fetch", tool: "fetch_markdown", rule: "deny-everything-else", argsDigest: "sha256:00ff" });
    gitai.events.record({ kind: "limit.reached", traceId: "turn-2", limit: "maxRequestsPerMinute" });
    await reconcile("sync-1");

    assert.equal(count("/events") - before, 1, "one page read");
    const entries = decisions();
    assert.deepEqual(entries.map((e) => [e.action, e.traceId, e.result]), [
      ["agent.message.accepted", "turn-1", "info"],
      ["agent.tool.denied", "turn-1", "refused"],
      ["agent.limit.reached", "turn-2", "info"],
    ]);
    assert.equal(entries[0]!.target, `Agent/${AGENT}`);
    assert.deepEqual(entries[0]!.payload, { kind: "message.accepted", room: "!r:hs", sender: "@alice:hs", size: 42 });
    assert.deepEqual(state.eventCursors.get(AGENT)?.seq, 3);

    const lines = told.filter((e) => e.what === "decision").map((e) => describeChange(e));
    assert.deepEqual(lines.map((l) => [l.text, l.traceId]), [
      ["newsbot: tool fetch.fetch_markdown denied by policy (rule deny-everything-else)", "turn-1"],
      ["newsbot: limit maxRequestsPerMinute reached", "turn-2"],
    ]);

    // /ruriko trace shows the turn's decisions readably.
    const trace = await answerQuery({ trace: (id: string) => state.audit.byTrace(id) } as never, "/ruriko trace turn-1");
    assert.match(trace!.body, /agent:newsbot {2}agent\.tool\.denied {2}Agent\/newsbot {2}refused {2}fetch\.fetch_markdown rule=deny-everything-else/);
  });

  test("a second reconcile with nothing new asks /status only, never /events", async () => {
    const events = count("/events");
    const statuses = count("/status");
    await reconcile("sync-2");
    await reconcile("sync-3");
    assert.equal(count("/status") - statuses, 2);
    assert.equal(count("/events"), events);
    assert.equal(decisions().length, 3);
  });

  test("seq survives a Gitai restart: the journal is on the data volume", async () => {
    await gitai.close();
    await startAgent();
    assert.equal(gitai.events.last, 3);
    assert.equal(gitai.events.record({ kind: "tool.approved", traceId: "turn-3", mcp: "mail", tool: "send", approval: "ab12", sender: "@bob:hs" }).seq, 4);
    await reconcile("sync-4");
    assert.deepEqual(decisions().map((e) => e.traceId), ["turn-1", "turn-1", "turn-2", "turn-3"]);
    assert.equal(state.eventCursors.get(AGENT)?.seq, 4);
  });

  test("events dropped before Ruriko read them are one audit entry saying how many", async () => {
    await gitai.close();
    // The agent busy while Ruriko was away: a small journal compacts away what Ruriko has not read.
    const busy = new EventJournal({ file: join(dataDir, EVENTS_FILE), keep: 3 });
    for (let i = 0; i < 10; i++) busy.record({ kind: "message.ignored", traceId: `busy-${i}`, reason: "sender" });
    const first = busy.after(0, 1).first;
    await startAgent();
    await reconcile("sync-5");
    const [gap] = collection("sync-5");
    assert.equal(gap?.action, "agent.events.lost");
    assert.equal(gap?.payload.lost, first - 5);
    assert.equal(state.eventCursors.get(AGENT)?.seq, 14);
    assert.equal(decisions().at(-1)?.traceId, "busy-9");
  });

  test("a new volume (seq going back) resets the cursor and reads the new journal from its start", async () => {
    await gitai.close();
    unlinkSync(join(dataDir, EVENTS_FILE));
    await startAgent();
    gitai.events.record({ kind: "schedule.fired", traceId: "fresh-1", gateway: "daily" });
    await reconcile("sync-6");
    assert.deepEqual(collection("sync-6").map((e) => e.action), ["agent.events.reset"]);
    assert.equal(decisions().at(-1)?.traceId, "fresh-1");
    assert.equal(state.eventCursors.get(AGENT)?.seq, 1);
  });

  test("an agent removed forgets its cursor", () => {
    sync.forget(AGENT);
    assert.equal(state.eventCursors.get(AGENT), undefined);
  });
});
