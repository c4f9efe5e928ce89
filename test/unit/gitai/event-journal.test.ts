import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { EventJournal, eventsAfter, parseJournal } from "../../../src/gitai/events/journal.ts";

const fixedClock = () => new Date("2025-01-02T03:04:05.000Z");
const lineCount = (file: string) => readFileSync(file, "utf8").split("\n").filter((l) => l !== "").length;

describe("EventJournal", () => {
  let dir: string;
  let n = 0;
  const file = () => join(dir, `events-${++n}.jsonl`);
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "gitai-journal-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("records with seq, time and trace id; only the fields given; appends one JSON line each", () => {
    const f = file();
    const j = new EventJournal({ file: f, now: fixedClock });
    assert.equal(j.last, 0);
    const a = j.record({ kind: "tool.denied", traceId: "t1", mcp: "fetch", tool: "fetch_markdown", rule: "deny-everything-else", reason: undefined });
    assert.deepEqual(a, { seq: 1, at: "2025-01-02T03:04:05.000Z", traceId: "t1", kind: "tool.denied", mcp: "fetch", tool: "fetch_markdown", rule: "deny-everything-else" });
    const b = j.record({ kind: "limit.reached", limit: "maxRequestsPerMinute" });
    assert.equal(b.seq, 2);
    assert.match(b.traceId, /^[0-9a-f]{16}$/, "a trace id is made when none is given");
    assert.equal(j.last, 2);
    assert.equal(lineCount(f), 2);
    assert.deepEqual(JSON.parse(readFileSync(f, "utf8").split("\n")[0]!), a);
  });

  test("after(seq, limit): the events after seq, oldest first, with the bounds", () => {
    const j = new EventJournal({ file: file() });
    for (let i = 0; i < 5; i++) j.record({ kind: "message.accepted", size: i });
    const page = j.after(1, 2);
    assert.deepEqual(page.events.map((e) => e.seq), [2, 3]);
    assert.equal(page.first, 1);
    assert.equal(page.last, 5);
    assert.deepEqual(j.after(5, 100).events, []);
    assert.deepEqual(new EventJournal({ file: file() }).after(0, 100), { events: [], first: 0, last: 0 });
  });

  test("seq continues across restarts: the file is read back", () => {
    const f = file();
    const first = new EventJournal({ file: f });
    first.record({ kind: "schedule.fired", gateway: "daily" });
    first.record({ kind: "schedule.fired", gateway: "daily" });
    const second = new EventJournal({ file: f });
    assert.equal(second.last, 2);
    assert.equal(second.record({ kind: "message.accepted" }).seq, 3);
    assert.deepEqual(new EventJournal({ file: f }).after(0, 10).events.map((e) => e.seq), [1, 2, 3]);
  });

  test("compacts to the newest keep past 2×keep lines, via a temp file; seq goes on", () => {
    const f = file();
    const j = new EventJournal({ file: f, keep: 3 });
    for (let i = 0; i < 6; i++) j.record({ kind: "message.accepted" });
    assert.equal(lineCount(f), 6, "at most 2×keep lines before compacting");
    j.record({ kind: "message.accepted" });
    assert.equal(lineCount(f), 3);
    assert.equal(existsSync(`${f}.tmp`), false);
    const held = j.after(0, 10);
    assert.deepEqual([held.first, held.last], [5, 7]);
    assert.deepEqual(held.events.map((e) => e.seq), [5, 6, 7]);
    const again = new EventJournal({ file: f, keep: 3 });
    assert.equal(again.last, 7);
    assert.equal(again.record({ kind: "message.accepted" }).seq, 8);
  });

  test("a line cut short by kill -9 is skipped, and the next append does not glue onto it", () => {
    const f = file();
    const j = new EventJournal({ file: f });
    j.record({ kind: "tool.allowed", tool: "a" });
    j.record({ kind: "tool.allowed", tool: "b" });
    appendFileSync(f, '{"seq":3,"at":"2025-01-02T03:04:05.000Z","trac');
    const recovered = new EventJournal({ file: f });
    assert.equal(recovered.last, 2);
    assert.equal(recovered.record({ kind: "tool.allowed", tool: "c" }).seq, 3);
    const reread = new EventJournal({ file: f });
    assert.deepEqual(reread.after(0, 10).events.map((e) => e.tool), ["a", "b", "c"]);
    assert.equal(parseJournal(readFileSync(f, "utf8")).skipped, 0, "the file was rewritten clean");
  });

  test("junk lines and lines that go backwards are skipped, not fatal", () => {
    const ok = (seq: number) => JSON.stringify({ seq, at: "2025-01-02T03:04:05.000Z", traceId: "t", kind: "message.accepted" });
    const extra = JSON.stringify({ ...(JSON.parse(ok(5)) as object), body: "a message text" });
    const parsed = parseJournal([ok(1), "not json", JSON.stringify({ seq: 2, kind: "no.such.kind", at: "x", traceId: "t" }), ok(4), ok(3), extra, ""].join("\n"));
    assert.deepEqual(parsed.events.map((e) => e.seq), [1, 4]);
    assert.equal(parsed.skipped, 4, "junk, an unknown kind, a seq going back, a field the protocol does not have");
    assert.equal(parsed.dirty, true);
    assert.deepEqual(parseJournal(""), { events: [], skipped: 0, dirty: false });
  });

  test("a write that fails is reported, not thrown; the events stay served from memory", () => {
    const blocked = join(dir, "not-a-dir");
    writeFileSync(blocked, "a file where the journal's directory should be");
    const errors: string[] = [];
    const j = new EventJournal({ file: join(blocked, "events.jsonl"), onWriteError: (e) => errors.push(e.message) });
    assert.equal(j.record({ kind: "message.accepted" }).seq, 1);
    assert.equal(j.after(0, 10).events.length, 1);
    assert.ok(errors.length >= 1);
    assert.match(errors[0]!, /events\.jsonl/);
  });

  test("an oversized file (not the journal's doing) is read from its tail only", () => {
    const f = file();
    const line = (seq: number) => `${JSON.stringify({ seq, at: "2025-01-02T03:04:05.000Z", traceId: "t", kind: "message.accepted" })}\n`;
    writeFileSync(f, `${line(1)}${"x".repeat(5 * 1024 * 1024)}\n${line(2)}${line(3)}`);
    const j = new EventJournal({ file: f });
    assert.equal(j.last, 3);
    assert.deepEqual(j.after(0, 10).events.map((e) => e.seq), [2, 3]);
    assert.ok(readFileSync(f, "utf8").length < 1000, "rewritten without the junk");
  });

  test("eventsAfter is pure and honours the limit", () => {
    const held = [3, 4, 5].map((seq) => ({ seq, at: "t", traceId: "x", kind: "message.accepted" as const }));
    assert.deepEqual(eventsAfter(held, 5, 0, 2), { events: held.slice(0, 2), first: 3, last: 5 });
    assert.deepEqual(eventsAfter(held, 5, 4, 10), { events: held.slice(2), first: 3, last: 5 });
  });
});
