/**
 * The deliverer, driven by hand: a clock the test moves and explicit passes (flush), never a sleep, so the
 * outcome does not depend on how fast the machine is.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { MatrixSendError, type NoticeContent } from "../../../src/matrix/matrix-connection.ts";
import { OutboxDeliverer, type OutboxDelivererOptions } from "../../../src/matrix/outbox-deliverer.ts";
import { StatusReporter } from "../../../src/matrix/status-reporter.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import { openState } from "../../../src/store/state.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const STATUS = "!status";

/** A state database, a clock, a reporter and a homeserver stand-in that records what it is sent (and can refuse). */
function setup(options: Partial<OutboxDelivererOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-deliverer-"));
  dirs.push(dir);
  const state = openState(dir);
  let clock = Date.parse("2026-11-25T00:00:00Z");
  const now = () => clock;
  const sent: Array<{ room: string; body: string; html: string; txnId: string; outboxId: number }> = [];
  const refusing = new Set<string>();
  const connection = {
    send: async (room: string, content: NoticeContent, txnId: string) => {
      if (refusing.has(room)) throw new MatrixSendError(room, "M_FORBIDDEN (HTTP 403)", 403);
      sent.push({ room, body: content.body, html: content.formatted_body, txnId, outboxId: Number(content["dev.ruriko.outbox_id"]) });
      return `$${sent.length}`;
    },
  };
  const delivererFor = () =>
    new OutboxDeliverer({ outbox: state.outbox, connection, logger: createLogger({ level: "silent", pretty: false }), instance: "t", backoffBaseMs: 20, backoffMaxMs: 40, coalesceMs: 1500, now, ...options });
  const reporter = new StatusReporter({ room: STATUS, outbox: state.outbox, now });
  return { state, sent, refusing, reporter, deliverer: delivererFor(), delivererFor, tick: (ms: number) => (clock += ms) };
}

test("a room that refuses messages holds up no other room, and each room keeps its order", async () => {
  const { state, sent, refusing, deliverer, tick } = setup();
  refusing.add("!approvals");
  for (const [room, body] of [["!approvals", "a1"], [STATUS, "s1"], ["!approvals", "a2"], [STATUS, "s2"], [STATUS, "s3"]] as const) state.outbox.enqueue({ room, body, html: body, traceId: "t" });
  await deliverer.flush();
  assert.deepEqual(sent.map((s) => s.body), ["s1", "s2", "s3"], "the status room is told while the approvals room refuses");
  assert.ok(state.outbox.list().find((m) => m.body === "a1")!.attempts >= 1, "the refused head was tried");
  refusing.delete("!approvals");
  await deliverer.flush();
  assert.equal(sent.length, 3, "the room waits out its backoff");
  tick(1000);
  await deliverer.flush();
  assert.deepEqual(sent.slice(3).map((s) => s.body), ["a1", "a2"], "then its messages, in order");
  state.close();
});

test("a burst becomes one message at delivery: every line, as a counted list, HTML-escaped", async () => {
  const { state, sent, reporter, deliverer, tick } = setup();
  reporter.report({ text: "a is Ready", traceId: "t1" });
  tick(1000);
  reporter.report({ text: "b <script> is Ready", traceId: "t2" });
  await deliverer.flush();
  assert.equal(sent.length, 0, "the first line waits for the lines after it");
  tick(500);
  await deliverer.flush();
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.body, "2 changes:\n- a is Ready\n- b <script> is Ready\n[trace t1]");
  assert.ok(sent[0]!.html.includes("<li>b &lt;script&gt; is Ready</li>") && !sent[0]!.html.includes("<script>"));
  const rows = state.outbox.list();
  assert.equal(sent[0]!.outboxId, rows[0]!.id, "the message is the first line's row; its id is the transaction id");
  assert.deepEqual(rows.map((m) => [m.eventId, m.mergedInto]), [["$1", null], ["$1", rows[0]!.id]], "both lines are marked sent, by the one event");
  assert.equal(state.outbox.unsentCount(), 0);
  state.close();
});

test("one line goes as itself; an agent's decision among other lines names its own trace", async () => {
  const { state, sent, reporter, deliverer } = setup();
  reporter.report({ text: "a is Ready", traceId: "t1" });
  await deliverer.flush({ closeWindows: true });
  reporter.report({ text: "recreated b", traceId: "t2" });
  reporter.report({ text: "b: tool x denied", traceId: "turn-9", ownTrace: true });
  await deliverer.flush({ closeWindows: true });
  assert.deepEqual(sent.map((s) => s.body), ["a is Ready [trace t1]", "2 changes:\n- recreated b\n- b: tool x denied [trace turn-9]\n[trace t2]"]);
  state.close();
});

test("a message queued behind status lines ends their wait, and keeps its place after them", async () => {
  const { state, sent, reporter, deliverer } = setup();
  reporter.report({ text: "a is Ready", traceId: "t1" });
  reporter.report({ text: "b is Ready", traceId: "t2" });
  state.outbox.enqueue({ room: STATUS, body: "answer", html: "answer", traceId: "q" });
  reporter.report({ text: "c is Ready", traceId: "t3" });
  await deliverer.flush();
  assert.deepEqual(sent.map((s) => s.body), ["2 changes:\n- a is Ready\n- b is Ready\n[trace t1]", "answer"], "the line after the answer waits for its own window");
  state.close();
});

test("what a message says is fixed before it is first sent: after a failure or a crash it goes again the same, under the same id", async () => {
  const { state, sent, refusing, reporter, deliverer, delivererFor, tick } = setup();
  refusing.add(STATUS);
  reporter.report({ text: "a is Ready", traceId: "t1" });
  reporter.report({ text: "b is Ready", traceId: "t2" });
  tick(1500);
  await deliverer.flush();
  assert.equal(sent.length, 0);
  const [head] = state.outbox.list();
  assert.equal(head!.fixed, true, "fixed before the attempt");
  assert.equal(head!.body, "2 changes:\n- a is Ready\n- b is Ready\n[trace t1]");
  // A line after the attempt does not join the message already tried: the homeserver may hold it already.
  reporter.report({ text: "c is Ready", traceId: "t3" });
  refusing.delete(STATUS);
  // A restart: a new deliverer over the same outbox.
  await delivererFor().flush({ closeWindows: true });
  assert.deepEqual(sent.map((s) => [s.txnId, s.body]), [
    [`ruriko-t-${head!.id}`, "2 changes:\n- a is Ready\n- b is Ready\n[trace t1]"],
    [`ruriko-t-${head!.id + 2}`, "c is Ready [trace t3]"],
  ]);
  state.close();
});

test("a burst longer than one message is told in several, in order", async () => {
  const { state, sent, reporter, deliverer } = setup({ maxLines: 2 });
  for (const name of ["a", "b", "c", "d", "e"]) reporter.report({ text: `${name} is Ready`, traceId: name });
  await deliverer.flush();
  assert.deepEqual(sent.map((s) => s.body.split("\n").filter((l) => l.startsWith("- ")).length || 1), [2, 2], "full messages go at once; the rest waits for its window");
  await deliverer.flush({ closeWindows: true });
  assert.equal(sent.length, 3);
  assert.equal(sent[2]!.body, "e is Ready [trace e]");
  assert.equal(state.outbox.unsentCount(), 0);
  state.close();
});
