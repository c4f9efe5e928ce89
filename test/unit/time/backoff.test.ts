import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { backoffDelay, BackoffTracker, type BackoffPolicy } from "../../../src/time/backoff.ts";

const exact: BackoffPolicy = { baseMs: 100, maxMs: 1000, jitter: 0 };

describe("backoffDelay", () => {
  test("doubles from the base with each failure", () => {
    assert.deepEqual(
      [1, 2, 3, 4].map((n) => backoffDelay(n, exact)),
      [100, 200, 400, 800],
    );
  });

  test("stops at the cap", () => {
    assert.equal(backoffDelay(5, exact), 1000);
    assert.equal(backoffDelay(40, exact), 1000);
  });

  test("failures below 1 (and NaN) count as the first failure", () => {
    for (const n of [0, -3, 0.5, Number.NaN]) assert.equal(backoffDelay(n, exact), 100, `failures ${n}`);
  });

  test("huge failure counts give the cap, never Infinity or NaN", () => {
    for (const n of [1_000, 1e6, Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY]) {
      const delay = backoffDelay(n, exact);
      assert.ok(Number.isFinite(delay), `failures ${n} gave ${delay}`);
      assert.equal(delay, 1000);
    }
    // A zero base must not turn into 0 · Infinity.
    assert.equal(backoffDelay(1e6, { baseMs: 0, maxMs: 1000, jitter: 0 }), 0);
    // Even with no cap at all, the delay stays finite.
    assert.ok(Number.isFinite(backoffDelay(1e6, { baseMs: 100, maxMs: Number.POSITIVE_INFINITY, jitter: 0 })));
  });

  test("jitter spreads the delay over [1 - jitter, 1 + jitter) of it", () => {
    const policy = { baseMs: 1000, maxMs: 10_000, jitter: 0.1 };
    assert.equal(backoffDelay(1, policy, () => 0), 900);
    assert.equal(backoffDelay(1, policy, () => 0.5), 1000);
    // The factor stays below 1 + jitter; rounding to whole milliseconds may reach the bound, never pass it.
    assert.ok(backoffDelay(1, policy, () => 0.999_999) <= 1100);
    assert.equal(backoffDelay(1, policy, () => 0.75), 1050);
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelay(3, policy);
      assert.ok(delay >= 3600 && delay <= 4400, `delay ${delay}`);
    }
  });

  test("jitter applies after the cap, and defaults to 0.2", () => {
    const policy = { baseMs: 100, maxMs: 1000 };
    assert.equal(backoffDelay(10, policy, () => 0), 800);
    assert.equal(backoffDelay(10, policy, () => 0.5), 1000);
  });

  test("delays are whole milliseconds", () => {
    for (let i = 0; i < 50; i++) assert.ok(Number.isInteger(backoffDelay(2, { baseMs: 333, maxMs: 10_000 })));
    assert.equal(backoffDelay(1, { baseMs: 10.4, maxMs: 100, jitter: 0 }), 10);
  });
});

describe("BackoffTracker", () => {
  test("counts failures per key, each key on its own schedule", () => {
    let now = 1_000;
    const tracker = new BackoffTracker<string>(exact, { now: () => now });
    assert.deepEqual(tracker.failed("a"), { failures: 1, delayMs: 100, retryAt: 1_100 });
    assert.deepEqual(tracker.failed("a"), { failures: 2, delayMs: 200, retryAt: 1_200 });
    now = 1_050;
    assert.deepEqual(tracker.failed("b"), { failures: 1, delayMs: 100, retryAt: 1_150 });
    assert.equal(tracker.failures("a"), 2);
    assert.equal(tracker.failures("b"), 1);
    assert.equal(tracker.failures("c"), 0);
    assert.equal(tracker.retryAt("a"), 1_200);
    assert.equal(tracker.retryAt("c"), undefined);
  });

  test("a key waits until its retry time, then may be tried again", () => {
    let now = 0;
    const tracker = new BackoffTracker<string>(exact, { now: () => now });
    assert.equal(tracker.waiting("a"), false, "a key that never failed does not wait");
    tracker.failed("a");
    assert.equal(tracker.waiting("a"), true);
    now = 99;
    assert.equal(tracker.waiting("a"), true);
    now = 100;
    assert.equal(tracker.waiting("a"), false);
    assert.equal(tracker.failures("a"), 1, "the count stays until the key succeeds");
  });

  test("success forgets a key; the next failure starts over from the base", () => {
    const now = 0;
    const tracker = new BackoffTracker<string>(exact, { now: () => now });
    tracker.failed("a");
    tracker.failed("a");
    tracker.failed("b");
    tracker.succeeded("a");
    assert.equal(tracker.failures("a"), 0);
    assert.equal(tracker.retryAt("a"), undefined);
    assert.equal(tracker.waiting("a"), false);
    assert.equal(tracker.failed("a").delayMs, 100);
    assert.equal(tracker.failures("b"), 1, "other keys are untouched");
    tracker.clear();
    assert.equal(tracker.failures("a"), 0);
    assert.equal(tracker.failures("b"), 0);
  });

  test("uses the injected dice for jitter", () => {
    const tracker = new BackoffTracker<number>({ baseMs: 1000, maxMs: 1000, jitter: 0.5 }, { now: () => 0, random: () => 0 });
    assert.deepEqual(tracker.failed(7), { failures: 1, delayMs: 500, retryAt: 500 });
  });
});
