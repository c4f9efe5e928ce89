import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { WorkQueue } from "../../../src/controller/work-queue.ts";

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("work queue", () => {
  test("a key is never reconciled twice at once; a trigger during a run runs it once more", async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const q = new WorkQueue({
      concurrency: 4,
      handler: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        runs++;
        await tick(30);
        running--;
        return {};
      },
    });
    q.add("a", "t");
    await tick(5);
    for (let i = 0; i < 10; i++) q.add("a", "t");
    await q.idle();
    await tick(5);
    await q.idle();
    assert.equal(maxRunning, 1);
    assert.equal(runs, 2);
    await q.stop();
  });

  test("queued duplicates collapse into one run", async () => {
    let runs = 0;
    const q = new WorkQueue({ concurrency: 1, handler: async () => (runs++, {}) });
    q.add("busy", "t");
    for (let i = 0; i < 5; i++) q.add("b", "t");
    await q.idle();
    assert.equal(runs, 2);
    await q.stop();
  });

  test("failures back off exponentially with jitter, and events do not cut the wait short", async () => {
    const q = new WorkQueue({ concurrency: 1, backoffBaseMs: 100, backoffMaxMs: 1000, random: () => 0.5, handler: async () => ({}) });
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => q.backoff(n)), [100, 200, 400, 800, 1000, 1000]);
    let runs = 0;
    const failing = new WorkQueue({
      concurrency: 1,
      backoffBaseMs: 200,
      random: () => 0.5,
      handler: async () => {
        runs++;
        throw new Error("boom");
      },
    });
    failing.add("x", "t");
    await failing.idle();
    assert.equal(failing.failuresOf("x"), 1);
    for (let i = 0; i < 5; i++) failing.add("x", "t"); // engine events while backing off
    await failing.idle();
    assert.equal(runs, 1);
    failing.add("x", "t", { urgent: true }); // a new desired state does not wait
    await failing.idle();
    assert.equal(runs, 2);
    await failing.stop();
    await q.stop();
  });

  test("an urgent trigger that arrives during a failing run is not lost; resetBackoff starts the backoff over", async () => {
    let runs = 0;
    let release: () => void = () => {};
    const q = new WorkQueue({
      concurrency: 1,
      backoffBaseMs: 60_000,
      random: () => 0.5,
      handler: async () => {
        runs++;
        if (runs === 1) await new Promise<void>((r) => (release = r));
        throw new Error("engine away");
      },
    });
    q.add("x", "t");
    await tick(5);
    q.add("x", "t2"); // an engine event during the run: waits out the backoff
    q.add("x", "t3", { urgent: true }); // the engine is back: goes first
    release();
    await tick(20);
    await q.idle();
    assert.equal(runs, 2, "the urgent trigger ran at once, not after a minute of backoff");
    assert.equal(q.failuresOf("x"), 2);
    q.resetBackoff();
    assert.equal(q.failuresOf("x"), 0);
    await q.stop();
  });
});
