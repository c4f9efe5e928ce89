/**
 * Durable before acknowledged: what the status room will hear is in the outbox in the same transaction as the
 * change it reports. `ruriko serve` (its own process, real Docker, real Synapse) is killed with SIGKILL right
 * after each step of a recreate shows in its state database (read here read-only, as another process would),
 * started again, and then every line — in particular each "recreated …" the audit log vouches for — must be in
 * the outbox and in the room exactly once.
 *
 * Where exactly the kill lands after a step depends on the machine; what is checked holds wherever it lands.
 */
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Docker from "dockerode";
import { createClient, Direction, type MatrixClient } from "matrix-js-sdk";
import { logger as sdkLogger } from "matrix-js-sdk/lib/logger.js";
import { generateMasterKeyText } from "../../src/secrets/crypto.ts";
import { AgentStatusStore } from "../../src/store/agent-status-store.ts";
import { AuditLog, type AuditEntry } from "../../src/store/audit-log.ts";
import { openDatabase, type Db } from "../../src/store/database.ts";
import { OutboxStore, type OutboxMessage } from "../../src/store/outbox-store.ts";
import { RevisionStore } from "../../src/store/revision-store.ts";
import { STATE_DB_FILE } from "../../src/store/state.ts";
import { ensureAgentImage, isReady, newStateDir, removeInstanceResources, TEST_AGENT_IMAGE, waitFor } from "../helpers/controller-harness.ts";
import { writeTree } from "../helpers/manifest-tree.ts";
import { startServe, type ServeProcess } from "../helpers/serve-process.ts";
import { startSynapse, type SynapseHandle } from "../helpers/synapse.ts";

(sdkLogger as unknown as { setLevel(level: string): void }).setLevel("warn");

const agentDoc = (tz: string) =>
  `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: alpha}\nspec: {}\n---\napiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: alpha}\nspec: {image: "${TEST_AGENT_IMAGE}", gosuto: alpha, env: {TZ: ${tz}}}\n`;

/**
 * The steps of a recreate as the state database shows them, in order: its audit entries, then the status written
 * at its end, then its lines' delivery (fixed in the outbox, tried while the homeserver is away).
 */
const STEPS = ["revision.accepted", "agent.token.issued", "agent.recreate", "agent.configure", "agent.secrets", "Ready", "delivery"] as const;
const ZONES = ["Europe/Paris", "Asia/Tokyo", "America/New_York", "Australia/Sydney", "Africa/Cairo", "Europe/Berlin", "Asia/Kolkata"];

/** The lines of a status message: one line as itself, several as a counted list (composeMessage). */
function linesOf(body: string): string[] {
  if (/^\d+ changes:\n/.test(body)) return body.split("\n").slice(1, -1).map((l) => l.replace(/^- /, "").replace(/ \[trace [^\]]+\]$/, ""));
  return [body.replace(/ \[trace [^\]]+\]$/, "")];
}

describe("status lines survive kill -9 of ruriko serve (real Synapse, real Docker)", () => {
  let synapse: SynapseHandle;
  let reader: MatrixClient;
  let botUserId: string;
  let room: string;
  let token: string;
  let stateDir: string;
  let instance: string;
  let manifests: string;
  let serve: ServeProcess | undefined;
  let db: Db | undefined;
  const key = generateMasterKeyText();
  const docker = new Docker();

  const start = async () => {
    serve = await startServe(["--manifests", manifests, "--matrix-homeserver", synapse.baseUrl, "--matrix-user", botUserId, "--status-room", room, "--resync", "3600"], {
      stateDir,
      env: { RURIKO_MASTER_KEY: key, RURIKO_MATRIX_ACCESS_TOKEN: token },
    });
  };
  /** The state database, read-only, as `ruriko status` reads it beside `serve`. */
  const state = () => {
    db ??= openDatabase(join(stateDir, STATE_DB_FILE), { readonly: true });
    return { audit: new AuditLog(db), status: new AgentStatusStore(db), revisions: new RevisionStore(db), outbox: new OutboxStore(db) };
  };
  const auditSince = (id: number): AuditEntry[] => state().audit.tail(10_000).filter((e) => e.id > id).reverse();
  const lastAuditId = () => state().audit.tail(1)[0]?.id ?? 0;
  /** alpha Ready at the revision in force: the recreate (or what a restart made of it) is done and recorded. */
  const converged = () => {
    const s = state();
    const status = s.status.get("alpha");
    return isReady(status) && status?.observedRevision === s.revisions.latestApplied()?.revision;
  };
  const roomMessages = async () => {
    const page = await reader.createMessagesRequest(room, null, 1000, Direction.Backward);
    return page.chunk
      .filter((e) => e.sender === botUserId && e.type === "m.room.message")
      .reverse()
      .map((e) => ({ body: String((e.content as { body?: unknown }).body), outboxId: Number((e.content as Record<string, unknown>)["dev.ruriko.outbox_id"]) }));
  };

  before(async () => {
    await ensureAgentImage(docker);
    synapse = await startSynapse();
    const bot = await synapse.registerUser("ruriko");
    botUserId = bot.userId;
    token = bot.accessToken;
    reader = createClient({ baseUrl: synapse.baseUrl, accessToken: bot.accessToken, userId: bot.userId });
    room = (await reader.createRoom({ name: "status" })).room_id;
    ({ stateDir, instance } = newStateDir());
    manifests = writeTree({ "alpha.yaml": agentDoc("UTC") });
    await start();
    await waitFor(converged, "alpha Ready at the first start", 120_000);
  });
  after(async () => {
    await serve?.kill();
    db?.close();
    if (instance) await removeInstanceResources(docker, instance);
    await synapse?.stop();
    for (const dir of [stateDir, manifests]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * The outbox and the room read together once nothing is waiting: a line can still be written after the agent
   * is Ready again (a restart's own report), so the outbox is read on both sides of reading the room and the pair
   * is kept only when it did not move in between.
   */
  const settled = async () => {
    for (;;) {
      await waitFor(() => state().outbox.unsentCount() === 0, "the outbox delivered", 120_000);
      const before = state().outbox.list(10_000);
      const said = await roomMessages();
      const outbox = state().outbox.list(10_000);
      if (JSON.stringify(before) === JSON.stringify(outbox) && outbox.every((m) => m.mergedInto !== null || m.sentAt)) return { outbox, said };
    }
  };

  /**
   * What the room heard, against what the state database records: each recreate said exactly once, each
   * reported change's line in the outbox once under its own trace id, each outbox message in the room once.
   */
  const check = async (after: string) => {
    const { outbox, said } = await settled();
    const entries = state().audit.tail(10_000).reverse();
    const saidLines = said.flatMap((m) => linesOf(m.body));
    const recreates = entries.filter((e) => e.action === "agent.recreate" && e.result === "ok" && e.target === "Agent/alpha");
    assert.equal(saidLines.filter((l) => /^recreated alpha \(env changed: TZ\)$/.test(l)).length, recreates.length, `after the kill after ${after}: every recreate the audit log records is said exactly once; the room heard:\n${saidLines.join("\n")}`);

    const lines = outbox.filter((m): m is OutboxMessage & { line: NonNullable<OutboxMessage["line"]> } => m.line !== null);
    for (const e of entries.filter((e) => (e.action === "agent.recreate" && e.result === "ok") || e.action === "revision.accepted")) {
      const mine = lines.filter((m) => m.traceId === e.traceId && (e.action === "revision.accepted" ? /^revision [0-9a-f]{12} applied/ : /^recreated alpha/).test(m.line.text));
      assert.equal(mine.length, 1, `${e.action} [trace ${e.traceId}]: ${mine.length} lines in the outbox`);
    }
    assert.equal(new Set(said.map((m) => m.outboxId)).size, said.length, "no message arrived twice");
    assert.deepEqual(said.map((m) => m.outboxId), outbox.filter((m) => m.mergedInto === null).map((m) => m.id), "every outbox message, in order");
    for (const m of said) {
      const carried = lines.filter((l) => (l.mergedInto ?? l.id) === m.outboxId).map((l) => l.line.text);
      if (carried.length > 0) assert.deepEqual(linesOf(m.body), carried, `message ${m.outboxId} says exactly the lines it carries`);
    }
    assert.ok(lines.every((l) => said.some((m) => m.outboxId === (l.mergedInto ?? l.id))), "every line is in a message");
    return recreates.length;
  };

  test("killed at every step of a recreate and started again: every line reaches the outbox and the room exactly once", async (t) => {
    for (const [i, step] of STEPS.entries()) {
      const since = lastAuditId();
      if (step === "delivery") await synapse.pause();
      writeFileSync(join(manifests, "alpha.yaml"), agentDoc(ZONES[i]!));
      const recreated = () => auditSince(since).some((e) => e.action === "agent.recreate");
      // The recreate's line waits in the outbox, and a delivery to the room has been tried (and failed: the
      // homeserver is away). Which message was tried first depends on how fast lines arrived: the recreate's line
      // may ride in it, or wait behind an earlier message fixed before it came.
      const triedToSay = () => {
        const rows = state().outbox.list(100);
        const line = rows.find((m) => m.line && /^recreated alpha/.test(m.line.text) && !m.sentAt);
        return !!line && rows.some((m) => !m.sentAt && m.fixed && m.attempts > 0);
      };
      const reached = () => (step === "Ready" ? recreated() && converged() : step === "delivery" ? recreated() && converged() && triedToSay() : auditSince(since).some((e) => e.action === step));
      // Polled as fast as the database allows: the kill lands as soon after the step as this machine manages.
      const deadline = Date.now() + 120_000;
      while (!reached()) {
        assert.ok(Date.now() < deadline, `step ${step} never showed; serve log:\n${serve!.logTail()}`);
        await new Promise((r) => setTimeout(r, 2));
      }
      await serve!.kill();
      t.diagnostic(`killed after ${step}: ${auditSince(since).map((e) => e.action).join(", ")}`);
      if (step === "delivery") await synapse.resume();
      await start();
      await waitFor(converged, `alpha Ready again after the kill after ${step}`, 120_000);
      await waitFor(() => state().outbox.unsentCount() === 0, "the outbox delivered", 120_000);
      await check(step);
    }
    assert.ok((await check("the last step")) >= STEPS.length - 1, "the recreates ran");
  });
});
