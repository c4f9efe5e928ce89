/** An agent's per-minute, concurrency and token limits, with the clock driven by the test: what is let through, what is refused, and what the asker is told. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { AgentLimits, type LimitsConfig } from "../../../src/gitai/limits/limits.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** 2026-11-30 13:04:20 UTC */
const T0 = Date.UTC(2026, 10, 30, 13, 4, 20);
const S = 1000;

function agent(config: LimitsConfig) {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-limits-"));
  dirs.push(dir);
  const clock = { t: T0 };
  const limits = new AgentLimits({ config, now: () => clock.t, spendFile: join(dir, "spend.json") });
  return { limits, clock };
}

const iso = (ms: number) => new Date(ms).toISOString();

describe("no limits", () => {
  test("0 or absent lets everything through and lists nothing", () => {
    for (const config of [{}, { limits: { maxRequestsPerMinute: 0, maxEventsPerMinute: 0, maxConcurrentRequests: 0, maxMonthlyCostUSD: 0, maxTokensPerRequest: 0 }, messaging: { maxMessagesPerMinute: 0 } }]) {
      const { limits } = agent(config);
      const turns = [];
      for (let i = 0; i < 500; i++) {
        assert.deepEqual(limits.admitEvent(), { ok: true });
        assert.deepEqual(limits.admitRequest(), { ok: true });
        assert.deepEqual(limits.admitMessage(), { ok: true });
        const turn = limits.beginTurn();
        assert.equal(turn.ok, true);
        turns.push(turn);
      }
      assert.deepEqual(limits.status(), []);
    }
  });
});

describe("limits.maxRequestsPerMinute", () => {
  test("fills, says so once with the time it resets, then keeps quiet", () => {
    const { limits, clock } = agent({ limits: { maxRequestsPerMinute: 6 } });
    for (let i = 0; i < 6; i++) {
      assert.deepEqual(limits.admitRequest(), { ok: true }, `request ${i + 1}`);
      clock.t += 5 * S;
    }
    const refused = limits.admitRequest();
    assert.deepEqual(refused, {
      ok: false,
      limit: "maxRequestsPerMinute",
      resetsAt: iso(T0 + 60 * S),
      notice: {
        limit: "maxRequestsPerMinute",
        text: "A rate limit was reached: at most 6 model requests a minute (limits.maxRequestsPerMinute). It resets at 13:05:20 UTC.",
        resetsAt: "2026-11-30T13:05:20.000Z",
      },
    });
    clock.t += 10 * S;
    const again = limits.admitRequest();
    assert.deepEqual(again, { ok: false, limit: "maxRequestsPerMinute", resetsAt: iso(T0 + 60 * S), notice: undefined }, "the same full stretch is silent");
  });

  test("the window slides: the oldest leaving makes room for exactly one, and refusals never counted", () => {
    const { limits, clock } = agent({ limits: { maxRequestsPerMinute: 2 } });
    assert.equal(limits.admitRequest().ok, true); // T0
    clock.t = T0 + 30 * S;
    assert.equal(limits.admitRequest().ok, true); // T0+30
    for (let i = 0; i < 20; i++) assert.equal(limits.admitRequest().ok, false);
    clock.t = T0 + 60 * S - 1;
    assert.equal(limits.admitRequest().ok, false, "still inside the minute");
    clock.t = T0 + 60 * S;
    assert.equal(limits.admitRequest().ok, true, "the first has left");
    const full = limits.admitRequest();
    assert.equal(full.ok, false);
    assert.equal(full.ok === false && full.resetsAt, iso(T0 + 90 * S), "next room when the second leaves");
  });

  test("a calendar minute changing does not reset it: it is any 60 seconds", () => {
    const { limits, clock } = agent({ limits: { maxRequestsPerMinute: 3 } });
    clock.t = Date.UTC(2026, 10, 30, 13, 4, 50);
    for (let i = 0; i < 3; i++) assert.equal(limits.admitRequest().ok, true);
    clock.t = Date.UTC(2026, 10, 30, 13, 5, 10);
    assert.equal(limits.admitRequest().ok, false);
    clock.t = Date.UTC(2026, 10, 30, 13, 5, 50);
    assert.equal(limits.admitRequest().ok, true);
  });

  test("each new fill gets its own notice", () => {
    const { limits, clock } = agent({ limits: { maxRequestsPerMinute: 1 } });
    assert.equal(limits.admitRequest().ok, true);
    const first = limits.admitRequest();
    assert.ok(first.ok === false && first.notice);
    assert.ok(limits.admitRequest().ok === false);
    clock.t += 60 * S;
    assert.equal(limits.admitRequest().ok, true, "room again");
    const second = limits.admitRequest();
    assert.ok(second.ok === false && second.notice, "the window filled again: a new notice");
    assert.equal(second.notice.text, "A rate limit was reached: at most 1 model request a minute (limits.maxRequestsPerMinute). It resets at 13:06:20 UTC.");
    const third = limits.admitRequest();
    assert.ok(third.ok === false && third.notice === undefined);
  });
});

describe("limits.maxEventsPerMinute", () => {
  test("fills, one notice, silence, then room after the window", () => {
    const { limits, clock } = agent({ limits: { maxEventsPerMinute: 2 } });
    assert.equal(limits.admitEvent().ok, true);
    clock.t += 1 * S;
    assert.equal(limits.admitEvent().ok, true);
    const refused = limits.admitEvent();
    assert.ok(refused.ok === false);
    assert.equal(refused.limit, "maxEventsPerMinute");
    assert.equal(refused.notice?.text, "A rate limit was reached: at most 2 messages a minute reach me (limits.maxEventsPerMinute). It resets at 13:05:20 UTC.");
    assert.equal(refused.resetsAt, iso(T0 + 60 * S));
    const quiet = limits.admitEvent();
    assert.ok(quiet.ok === false && quiet.notice === undefined);
    clock.t = T0 + 60 * S;
    assert.equal(limits.admitEvent().ok, true);
    assert.equal(limits.admitEvent().ok, false);
  });

  test("events and model requests are counted apart", () => {
    const { limits } = agent({ limits: { maxEventsPerMinute: 1, maxRequestsPerMinute: 1 } });
    assert.equal(limits.admitEvent().ok, true);
    assert.equal(limits.admitRequest().ok, true);
    assert.equal(limits.admitEvent().ok, false);
    assert.equal(limits.admitRequest().ok, false);
  });
});

describe("limits.maxConcurrentRequests", () => {
  test("refuses a turn while full, once aloud, and a freed slot ends the stretch", () => {
    const { limits } = agent({ limits: { maxConcurrentRequests: 1 } });
    const turn = limits.beginTurn();
    assert.ok(turn.ok);
    const refused = limits.beginTurn();
    assert.deepEqual(refused, {
      ok: false,
      limit: "maxConcurrentRequests",
      resetsAt: null,
      notice: {
        limit: "maxConcurrentRequests",
        text: "Too many requests at once: at most 1 (limits.maxConcurrentRequests). Please ask again when the current one is answered.",
        resetsAt: null,
      },
    });
    const quiet = limits.beginTurn();
    assert.ok(quiet.ok === false && quiet.notice === undefined);
    turn.release();
    const next = limits.beginTurn();
    assert.ok(next.ok, "a slot freed");
    const again = limits.beginTurn();
    assert.ok(again.ok === false && again.notice, "full again: a new notice");
    next.release();
  });

  test("release is idempotent: releasing twice frees one slot, not two", () => {
    const { limits } = agent({ limits: { maxConcurrentRequests: 2 } });
    const a = limits.beginTurn();
    const b = limits.beginTurn();
    assert.ok(a.ok && b.ok);
    a.release();
    a.release();
    assert.deepEqual(limits.status(), [{ name: "maxConcurrentRequests", limit: 2, used: 1, resetsAt: null, reachedAt: null }]);
    assert.ok(limits.beginTurn().ok);
    assert.equal(limits.beginTurn().ok, false, "b and the new one fill both slots");
  });

  test("turns are counted without a cap, so a cap set later sees them", () => {
    const { limits } = agent({});
    const a = limits.beginTurn();
    const b = limits.beginTurn();
    assert.ok(a.ok && b.ok);
    limits.reconfigure({ limits: { maxConcurrentRequests: 2 } });
    assert.equal(limits.beginTurn().ok, false);
    b.release();
    assert.ok(limits.beginTurn().ok);
  });
});

describe("messaging.maxMessagesPerMinute", () => {
  test("over the cap a message is delayed to a reserved slot, never dropped; one notice per stretch", () => {
    const { limits, clock } = agent({ messaging: { maxMessagesPerMinute: 2 } });
    assert.deepEqual(limits.admitMessage(), { ok: true });
    clock.t = T0 + 10 * S;
    assert.deepEqual(limits.admitMessage(), { ok: true });
    clock.t = T0 + 20 * S;
    assert.deepEqual(limits.admitMessage(), {
      ok: false,
      limit: "maxMessagesPerMinute",
      resetsAt: iso(T0 + 60 * S),
      retryAt: T0 + 60 * S,
      notice: {
        limit: "maxMessagesPerMinute",
        text: "My message limit was reached: at most 2 messages a minute (messaging.maxMessagesPerMinute). My answer follows at 13:05:20 UTC.",
        resetsAt: iso(T0 + 60 * S),
      },
    });
    const fourth = limits.admitMessage();
    assert.ok(fourth.ok === false);
    assert.equal(fourth.retryAt, T0 + 70 * S, "queued behind the third");
    assert.equal(fourth.notice, undefined);
    // The third goes out at its slot (without asking again); a new one asked meanwhile queues behind the fourth.
    clock.t = T0 + 65 * S;
    const fifth = limits.admitMessage();
    assert.ok(fifth.ok === false);
    assert.equal(fifth.retryAt, T0 + 120 * S);
    assert.equal(fifth.notice, undefined, "the queue has not drained: the same stretch");
    clock.t = T0 + 200 * S;
    assert.deepEqual(limits.admitMessage(), { ok: true });
    assert.deepEqual(limits.admitMessage(), { ok: true });
    const refill = limits.admitMessage();
    assert.ok(refill.ok === false && refill.notice, "a new fill: a new notice");
  });

  test("a burst is spread so that no 60 seconds ever hold more than the cap", () => {
    const { limits, clock } = agent({ messaging: { maxMessagesPerMinute: 3 } });
    const sent: number[] = [];
    for (let i = 0; i < 20; i++) {
      clock.t = T0 + i * 100;
      const a = limits.admitMessage();
      sent.push(a.ok ? clock.t : a.retryAt);
    }
    assert.equal(sent.length, 20);
    const sorted = [...sent].sort((x, y) => x - y);
    assert.deepEqual(sent, sorted, "first asked, first sent");
    for (const start of sorted) assert.ok(sorted.filter((t) => t >= start && t < start + 60 * S).length <= 3, `window from ${start}`);
    assert.equal(sorted.at(-1), T0 + 100 + 6 * 60 * S, "the 20th waits six minutes behind the 2nd");
  });
});

describe("limits.maxTokensPerRequest", () => {
  test("a cut answer gets the note every time; status shows the last request's completion tokens", () => {
    const { limits, clock } = agent({ limits: { maxTokensPerRequest: 512 } });
    limits.recordUsage({ promptTokens: 100, completionTokens: 512 });
    const note = { limit: "maxTokensPerRequest", text: "(My answer was cut at the token limit of 512 tokens per request: limits.maxTokensPerRequest.)", resetsAt: null };
    assert.deepEqual(limits.truncated(), note);
    clock.t += S;
    assert.deepEqual(limits.truncated(), note, "it belongs to each cut answer");
    assert.deepEqual(limits.status(), [{ name: "maxTokensPerRequest", limit: 512, used: 512, resetsAt: null, reachedAt: iso(T0 + S) }]);
  });

  test("without a cap the provider's own limit cut the answer", () => {
    const { limits } = agent({});
    assert.equal(limits.truncated().text, "(My answer was cut at the model's token limit.)");
    assert.deepEqual(limits.status(), []);
  });
});

describe("reconfigure", () => {
  test("new caps apply at once against what the window already holds", () => {
    const { limits, clock } = agent({ limits: { maxRequestsPerMinute: 6 } });
    for (let i = 0; i < 4; i++) {
      assert.equal(limits.admitRequest().ok, true);
      clock.t += 10 * S;
    }
    // T0, +10, +20, +30 in the window; now T0+40.
    limits.reconfigure({ limits: { maxRequestsPerMinute: 2 } });
    const refused = limits.admitRequest();
    assert.ok(refused.ok === false);
    assert.equal(refused.resetsAt, iso(T0 + 80 * S), "room once three of the four have left");
    assert.match(refused.notice?.text ?? "", /at most 2 model requests a minute/);
    clock.t = T0 + 80 * S;
    assert.equal(limits.admitRequest().ok, true);
    // +30 and +80 in the window: a raised cap lets a third in at once, and no fourth.
    limits.reconfigure({ limits: { maxRequestsPerMinute: 3 } });
    assert.equal(limits.admitRequest().ok, true);
    const full = limits.admitRequest();
    assert.ok(full.ok === false && full.notice, "a new cap, a new stretch");
    assert.equal(full.resetsAt, iso(T0 + 90 * S));
  });

  test("a changed cap starts a new stretch; an unchanged one keeps the silence", () => {
    const { limits } = agent({ limits: { maxEventsPerMinute: 1 } });
    assert.equal(limits.admitEvent().ok, true);
    const first = limits.admitEvent();
    assert.ok(first.ok === false && first.notice);
    limits.reconfigure({ limits: { maxEventsPerMinute: 1 } });
    const same = limits.admitEvent();
    assert.ok(same.ok === false && same.notice === undefined);
    limits.reconfigure({ limits: { maxEventsPerMinute: 1, maxRequestsPerMinute: 5 } });
    const stillSame = limits.admitEvent();
    assert.ok(stillSame.ok === false && stillSame.notice === undefined, "another limit changing does not matter");
    limits.reconfigure({ limits: {}, messaging: {} });
    assert.equal(limits.admitEvent().ok, true, "no cap: through");
    limits.reconfigure({ limits: { maxEventsPerMinute: 2 } });
    const fresh = limits.admitEvent();
    assert.ok(fresh.ok === false && fresh.notice, "two in the window already (one counted while unlimited)");
    assert.match(fresh.notice.text, /at most 2 messages a minute/);
  });
});

describe("status", () => {
  test("lists each limit that is set, in order, with its window, use and last refusal", () => {
    const { limits, clock } = agent({
      limits: { maxRequestsPerMinute: 2, maxEventsPerMinute: 5, maxConcurrentRequests: 3, maxTokensPerRequest: 1000, maxTurnSteps: 8 },
      messaging: { maxMessagesPerMinute: 1 },
    });
    assert.deepEqual(limits.status(), [
      { name: "maxRequestsPerMinute", limit: 2, used: 0, resetsAt: null, reachedAt: null },
      { name: "maxEventsPerMinute", limit: 5, used: 0, resetsAt: null, reachedAt: null },
      { name: "maxConcurrentRequests", limit: 3, used: 0, resetsAt: null, reachedAt: null },
      { name: "maxTokensPerRequest", limit: 1000, used: 0, resetsAt: null, reachedAt: null },
      { name: "maxMessagesPerMinute", limit: 1, used: 0, resetsAt: null, reachedAt: null },
    ]);
    limits.admitEvent();
    clock.t += 15 * S;
    limits.admitEvent();
    limits.admitRequest();
    limits.admitRequest();
    clock.t += 5 * S;
    limits.admitRequest(); // refused at T0+20
    const turn = limits.beginTurn();
    limits.recordUsage({ promptTokens: 10, completionTokens: 321 });
    limits.admitMessage();
    limits.admitMessage(); // delayed to T0+80
    assert.deepEqual(limits.status(), [
      { name: "maxRequestsPerMinute", limit: 2, used: 2, resetsAt: iso(T0 + 75 * S), reachedAt: iso(T0 + 20 * S) },
      { name: "maxEventsPerMinute", limit: 5, used: 2, resetsAt: iso(T0 + 60 * S), reachedAt: null },
      { name: "maxConcurrentRequests", limit: 3, used: 1, resetsAt: null, reachedAt: null },
      { name: "maxTokensPerRequest", limit: 1000, used: 321, resetsAt: null, reachedAt: null },
      { name: "maxMessagesPerMinute", limit: 1, used: 1, resetsAt: iso(T0 + 140 * S), reachedAt: iso(T0 + 20 * S) },
    ]);
    assert.ok(turn.ok);
    turn.release();
    clock.t = T0 + 200 * S;
    const later = limits.status();
    assert.deepEqual(
      later.map((s) => [s.name, s.used, s.resetsAt]),
      [
        ["maxRequestsPerMinute", 0, null],
        ["maxEventsPerMinute", 0, null],
        ["maxConcurrentRequests", 0, null],
        ["maxTokensPerRequest", 321, null],
        ["maxMessagesPerMinute", 0, null],
      ],
      "the windows have emptied; the last refusals are still reported",
    );
    assert.equal(later[0]!.reachedAt, iso(T0 + 20 * S));
  });
});
