/**
 * Waits settled by store changes, with a slow safety reread (and a read at the start while the store is not fed by
 * a live watch), and a timeout: no polling.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManualClock } from "../../../src/time/clock.ts";
import { Waits, type Progress } from "../../../src/runtime/watch-waits.ts";

/** Lets the reread's promise callbacks run. */
const settle = () => new Promise((r) => setImmediate(r));

function setup(initial: Progress = { state: "waiting", reason: "no pod yet" }, storeIsLive = false) {
  const clock = new ManualClock();
  const waits = new Waits({ clock, rereadMs: 10_000, storeIsLive: () => storeIsLive });
  let progress: Progress = initial;
  let rereads = 0;
  let failNextRead: Error | undefined;
  let outcome: "pending" | "done" | Error = "pending";
  const start = () =>
    waits
      .until({
        keys: ["pod/a-0"],
        check: () => progress,
        reread: async () => {
          rereads++;
          if (failNextRead) throw failNextRead;
        },
        timeoutMs: 60_000,
        timedOut: (reason) => new Error(`timed out (${reason})`),
      })
      .then(
        () => (outcome = "done"),
        (error: Error) => (outcome = error),
      );
  return {
    clock,
    waits,
    start,
    set: (p: Progress) => (progress = p),
    failReads: (e: Error) => (failNextRead = e),
    rereads: () => rereads,
    outcome: () => outcome,
  };
}

describe("Waits", () => {
  test("already settled in the store: no read at all", async () => {
    const w = setup({ state: "done" });
    await w.start();
    assert.equal(w.outcome(), "done");
    assert.equal(w.rereads(), 0);
    assert.equal(w.waits.pending, 0);
  });

  test("reads once when it begins, then is settled by a change of its object, not by time", async () => {
    const w = setup();
    const done = w.start();
    await settle();
    assert.equal(w.rereads(), 1);
    w.waits.changed("pod/other-0");
    w.set({ state: "done" });
    await settle();
    assert.equal(w.outcome(), "pending", "judged again only when one of its own objects changes");
    w.waits.changed("pod/a-0");
    await done;
    assert.equal(w.outcome(), "done");
    assert.equal(w.rereads(), 1);
    assert.equal(w.waits.pending, 0, "nothing left waiting");
    w.clock.advance(60_000);
    await settle();
    assert.equal(w.rereads(), 1, "no reread after it settled");
  });

  test("a missed event is caught by the safety reread", async () => {
    const w = setup();
    const done = w.start();
    await settle();
    w.clock.advance(9_999);
    await settle();
    assert.equal(w.rereads(), 1);
    w.set({ state: "done" });
    w.clock.advance(1);
    await done;
    assert.equal(w.rereads(), 2);
    assert.equal(w.outcome(), "done");
  });

  test("with a live watch feeding the store, a wait begins on the store alone: its first read is the safety reread", async () => {
    const w = setup(undefined, true);
    const done = w.start();
    await settle();
    assert.equal(w.rereads(), 0, "no read when it begins");
    w.clock.advance(9_999);
    await settle();
    assert.equal(w.rereads(), 0);
    w.clock.advance(1);
    await settle();
    assert.equal(w.rereads(), 1);
    w.set({ state: "done" });
    w.waits.changed("pod/a-0");
    await done;
    assert.equal(w.outcome(), "done");
  });

  test("a state that never comes fails the wait at once, with its error", async () => {
    const w = setup();
    const done = w.start();
    await settle();
    w.set({ state: "failed", error: new Error("ErrImageNeverPull") });
    w.waits.changed("pod/a-0");
    await done;
    assert.equal((w.outcome() as Error).message, "ErrImageNeverPull");
  });

  test("times out with the last reason it was waiting for", async () => {
    const w = setup();
    const done = w.start();
    await settle();
    w.set({ state: "waiting", reason: "ContainerCreating" });
    w.waits.changed("pod/a-0");
    for (let t = 0; t < 6; t++) {
      w.clock.advance(10_000);
      await settle();
    }
    await done;
    assert.equal((w.outcome() as Error).message, "timed out (ContainerCreating)");
    assert.equal(w.rereads(), 6, "one at the start, then one every 10 s until the timeout");
    assert.equal(w.waits.pending, 0);
  });

  test("a failed read fails the wait", async () => {
    const w = setup();
    w.failReads(new Error("ECONNREFUSED"));
    await w.start();
    assert.equal((w.outcome() as Error).message, "ECONNREFUSED");
    assert.equal(w.waits.pending, 0);
  });

  test("stopped (serve stopping): a pending wait ends at once with the error, and so does any begun later; nothing is read again", async () => {
    const w = setup({ state: "waiting", reason: "Pending" }, true);
    const done = w.start();
    await settle();
    assert.equal(w.waits.pending, 1);
    w.waits.stop(() => new Error("Ruriko is stopping"));
    await done;
    assert.equal((w.outcome() as Error).message, "Ruriko is stopping");
    assert.equal(w.waits.pending, 0);
    const later = setup({ state: "waiting", reason: "Pending" }, true);
    later.waits.stop(() => new Error("Ruriko is stopping"));
    await later.start();
    assert.equal((later.outcome() as Error).message, "Ruriko is stopping");
    // Its timers are cancelled: time passing reads nothing.
    w.clock.advance(120_000);
    await settle();
    assert.equal(w.rereads(), 0);
  });
});
