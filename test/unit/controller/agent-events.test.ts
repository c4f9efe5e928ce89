import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AcpEvent, AcpEvents } from "../../../src/api/generated/types.ts";
import { anchorOf, auditOfEvent, collectPage, decisionDetail, decisionLines, planFetch } from "../../../src/controller/agent-events.ts";
import { parseEventsQuery } from "../../../src/gitai/acp/server.ts";
import { composeMessage, describeDecision } from "../../../src/matrix/status-messages.ts";
import type { AuditEntry } from "../../../src/store/audit-log.ts";

const ev = (seq: number, kind: AcpEvent["kind"] = "message.accepted", extra: Partial<AcpEvent> = {}): AcpEvent => ({ seq, at: `2025-01-01T00:00:${String(seq % 60).padStart(2, "0")}.000Z`, traceId: `t${seq}`, kind, ...extra });
const page = (events: AcpEvent[], first: number, last: number): AcpEvents => ({ events, first, last });

describe("planFetch: whether to ask /events at all", () => {
  test("nothing moved, or no journal: no request", () => {
    assert.equal(planFetch(undefined, undefined), undefined);
    assert.equal(planFetch(0, undefined), undefined);
    assert.equal(planFetch(7, { seq: 7, anchor: "a" }), undefined);
  });
  test("moved: from the cursor, overlapping one event to check the anchor", () => {
    assert.deepEqual(planFetch(3, undefined), { after: 0 });
    assert.deepEqual(planFetch(9, { seq: 7, anchor: "a" }), { after: 6 });
    assert.deepEqual(planFetch(9, { seq: 7, anchor: null }), { after: 7 });
  });
  test("went backwards: a new journal, read from the start", () => {
    const f = planFetch(2, { seq: 7, anchor: "a" });
    assert.equal(f?.after, 0);
    assert.match(f?.reset ?? "", /from 7 to 2/);
  });
});

describe("auditOfEvent", () => {
  test("the agent as actor, its own trace and time; payload without seq, at, traceId; denials refused", () => {
    const e = ev(4, "tool.denied", { mcp: "fetch", tool: "fetch_markdown", rule: "deny-everything-else", argsDigest: "sha256:abc" });
    assert.deepEqual(auditOfEvent("newsbot", e), {
      ts: e.at,
      traceId: "t4",
      actor: "agent:newsbot",
      action: "agent.tool.denied",
      target: "Agent/newsbot",
      payload: { kind: "tool.denied", mcp: "fetch", tool: "fetch_markdown", rule: "deny-everything-else", argsDigest: "sha256:abc" },
      result: "refused",
    });
    assert.equal(auditOfEvent("a", ev(1, "tool.rejected")).result, "refused");
    assert.equal(auditOfEvent("a", ev(1, "message.accepted")).result, "info");
    assert.equal(auditOfEvent("a", ev(1, "schedule.failed")).result, "error");
    assert.equal((auditOfEvent("a", ev(1, "schedule.failed", { reason: "x".repeat(5000) })).payload.reason as string).length, 500);
  });
});

describe("collectPage", () => {
  const start = { seq: 0, anchor: null };

  test("copies every new event, moves the cursor to the last, names the events to report", () => {
    const got = collectPage("bot", start, { after: 0 }, page([ev(1), ev(2, "tool.denied", { tool: "x" }), ev(3, "limit.reached", { limit: "maxRequestsPerMinute" })], 1, 3), "sync");
    assert.deepEqual(got.entries.map((e) => e.action), ["agent.message.accepted", "agent.tool.denied", "agent.limit.reached"]);
    assert.deepEqual(got.cursor, { seq: 3, anchor: anchorOf(ev(3, "limit.reached", { limit: "maxRequestsPerMinute" })) });
    assert.deepEqual(got.reported.map((e) => e.kind), ["tool.denied", "limit.reached"]);
    assert.equal(got.next, undefined);
  });

  test("skips the overlap event when its anchor matches", () => {
    const cursor = { seq: 2, anchor: anchorOf(ev(2)) };
    const got = collectPage("bot", cursor, { after: 1 }, page([ev(2), ev(3)], 1, 3), "sync");
    assert.deepEqual(got.entries.map((e) => e.traceId), ["t3"]);
    assert.equal(got.cursor.seq, 3);
  });

  test("another event at the cursor's seq: another journal; nothing written, start over", () => {
    const cursor = { seq: 2, anchor: "2024-12-31T00:00:00.000Z old" };
    const got = collectPage("bot", cursor, { after: 1 }, page([ev(2), ev(3)], 1, 3), "sync");
    assert.deepEqual(got.entries, []);
    assert.deepEqual(got.cursor, cursor);
    assert.equal(got.next?.after, 0);
    assert.match(got.next?.reset ?? "", /another event at 2/);
    const restarted = collectPage("bot", cursor, got.next!, page([ev(1), ev(2), ev(3)], 1, 3), "sync");
    assert.deepEqual(restarted.entries.map((e) => e.action), ["agent.events.reset", "agent.message.accepted", "agent.message.accepted", "agent.message.accepted"]);
    assert.equal(restarted.entries[0]!.actor, "controller");
    assert.equal(restarted.cursor.seq, 3);
  });

  test("a gap (compacted before Ruriko read it) is one entry saying how many were lost", () => {
    const got = collectPage("bot", { seq: 2, anchor: null }, { after: 2 }, page([ev(10), ev(11)], 10, 11), "sync-1");
    assert.equal(got.entries.length, 3);
    assert.deepEqual(got.entries[0], { traceId: "sync-1", actor: "controller", action: "agent.events.lost", target: "Agent/bot", payload: { after: 2, first: 10, last: 11, lost: 7 }, result: "error" });
    assert.equal(got.cursor.seq, 11);
  });

  test("nothing held past the cursor although the agent counts further: lost, and the cursor moves (no refetch loop)", () => {
    const got = collectPage("bot", { seq: 4, anchor: null }, { after: 4 }, page([], 0, 9), "s");
    assert.equal(got.entries[0]?.payload.lost, 5);
    assert.deepEqual(got.cursor, { seq: 9, anchor: null });
    assert.equal(got.next, undefined);
  });

  test("a full page asks for the next", () => {
    const got = collectPage("bot", start, { after: 0 }, page([ev(1), ev(2)], 1, 5), "s");
    assert.deepEqual(got.next, { after: 2 });
  });
});

describe("describing decisions", () => {
  test("status room lines: one per decision, with the agent's trace; repeats keyed", () => {
    const denied = describeDecision("newsbot", ev(1, "tool.denied", { mcp: "fetch", tool: "fetch_markdown", rule: "deny-everything-else" }));
    assert.equal(denied.text, "newsbot: tool fetch.fetch_markdown denied by policy (rule deny-everything-else)");
    assert.equal(denied.traceId, "t1");
    assert.ok(denied.key);
    assert.equal(describeDecision("newsbot", ev(2, "limit.reached", { limit: "maxRequestsPerMinute" })).text, "newsbot: limit maxRequestsPerMinute reached");
    assert.equal(describeDecision("newsbot", ev(3, "tool.waiting", { tool: "send", mcp: "mail", approval: "ab12" })).text, "newsbot: tool mail.send waits for approval (approval ab12)");
    assert.equal(describeDecision("newsbot", ev(4, "tool.approved", { tool: "send", mcp: "mail", approval: "ab12", sender: "@alice:hs" })).text, "newsbot: tool mail.send approved by @alice:hs (approval ab12)");
    assert.equal(describeDecision("newsbot", ev(5, "tool.rejected", { tool: "send", mcp: "mail", reason: "denied", sender: "@bob:hs" })).text, "newsbot: tool mail.send rejected by @bob:hs (denied)");
    assert.equal(describeDecision("newsbot", ev(6, "tool.expired", { tool: "send", mcp: "mail", approval: "ab12" })).text, "newsbot: tool mail.send not run: its approval expired (approval ab12)");
    assert.equal(describeDecision("x", ev(7, "tool.denied", { tool: "a\nb" })).text, "x: tool a b denied by policy (no rule allows it)");
  });

  test("a coalesced message names each line's own trace when it differs", () => {
    const m = composeMessage([
      { text: "created newsbot (new)", traceId: "r1" },
      describeDecision("newsbot", ev(9, "limit.reached", { limit: "x", traceId: "a9" })),
      { text: "b is Ready", traceId: "r2" },
    ]);
    assert.match(m.body, /- created newsbot \(new\)\n- newsbot: limit x reached \[trace a9\]\n- b is Ready\n\[trace r1\]$/);
  });

  test("audit listings tell an agent decision's tool and rule; other entries are unchanged", () => {
    const entry: AuditEntry = { id: 1, ...auditOfEvent("newsbot", ev(1, "tool.denied", { mcp: "fetch", tool: "get", rule: "deny-all", argsDigest: "sha256:0123456789abcdef" })), ts: "2025-01-01T00:00:01.000Z" };
    assert.equal(decisionDetail(entry), "fetch.get rule=deny-all argsDigest=0123456789ab");
    assert.equal(decisionDetail({ actor: "controller", action: "agent.configure", payload: { gosuto: "g" } }), "");
    assert.deepEqual(decisionLines([entry]), ["2025-01-01T00:00:01.000Z  tool.denied       fetch.get rule=deny-all argsDigest=0123456789ab  trace t1"]);
  });
});

describe("GET /events query", () => {
  test("defaults, bounds and refusals", () => {
    assert.deepEqual(parseEventsQuery(new URLSearchParams("")), { ok: true, after: 0, limit: 100 });
    assert.deepEqual(parseEventsQuery(new URLSearchParams("after=12&limit=500")), { ok: true, after: 12, limit: 500 });
    for (const bad of ["limit=501", "limit=0", "after=-1", "after=abc", "after=1.5", "after=1&after=2", "limit="]) {
      assert.equal(parseEventsQuery(new URLSearchParams(bad)).ok, false, bad);
    }
  });
});
