/** `/ruriko` queries in chat: allowed senders are answered within a rate, told once when it is reached; others refused once. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ChatListener } from "../../../src/matrix/chat-listener.ts";
import type { QuerySources } from "../../../src/matrix/queries.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import { openState } from "../../../src/store/state.ts";

test("an operator flooding queries is answered up to the rate, told once when the next will be, then silent until there is room", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-chat-"));
  const state = openState(dir);
  let now = Date.parse("2026-11-29T10:00:00Z");
  let asked = 0;
  const sources = { status: () => (asked++, { agents: [] }) } as unknown as QuerySources;
  const listener = new ChatListener({
    sources,
    rooms: async () => new Set(["!ops"]),
    senders: () => new Set(["@op:hs"]),
    outbox: state.outbox,
    seen: state.seenEvents,
    onEnqueued: () => {},
    logger: createLogger({ level: "silent", pretty: false }),
    queriesPerMinute: 3,
    now: () => now,
  });
  let n = 0;
  const ask = (sender = "@op:hs") => listener.handle({ room: "!ops", eventId: `$e${n++}`, sender, body: "/ruriko agents" });
  const said = () => state.outbox.list(1000).map((m) => m.body);
  try {
    for (let i = 0; i < 10; i++) await ask();
    assert.equal(said().length, 4, "three answers and one notice");
    assert.equal(said()[3], "@op:hs: at most 3 queries a minute; the next is answered from 10:01:00 UTC.");
    assert.equal(asked, 3, "the refused queries were never run");

    now += 60_000;
    await ask();
    assert.equal(said().length, 5, "room again: answered");
    for (let i = 0; i < 5; i++) await ask();
    assert.equal(said().length, 8, "two more answers, and the new stretch is told once");
    assert.match(said()[7]!, /at most 3 queries a minute/);

    for (let i = 0; i < 5; i++) await ask("@stranger:hs");
    assert.equal(said().filter((b) => b.includes("not allowed to query")).length, 1, "a sender who may not ask is refused once");
  } finally {
    state.db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
