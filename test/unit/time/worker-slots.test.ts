import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { WorkQueue } from "../../../src/controller/work-queue.ts";
import { waitOutsideSlot, WorkerSlots } from "../../../src/time/worker-slots.ts";

/** A promise the test settles. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** Lets every ready continuation run (the queue's hand-overs are a few microtasks and a macrotask deep). */
const settle = () => new Promise((r) => setImmediate(r));

describe("worker slots", () => {
  test("no more than the slots work at once; work that waits outside its slot lets the next begin", async () => {
    const slots = new WorkerSlots(1);
    const log: string[] = [];
    const cluster = deferred();
    const a = slots.run(async () => {
      log.push("a works");
      await waitOutsideSlot(() => cluster.promise);
      log.push("a works again");
    });
    const bGoes = deferred();
    const b = slots.run(async () => {
      log.push("b works");
      await bGoes.promise;
      log.push("b done");
    });
    const c = slots.run(async () => void log.push("c works"));
    await settle();
    assert.deepEqual(log, ["a works", "b works"], "a waits outside its slot: b has it; c waits for one");
    assert.equal(slots.busy, 1);

    cluster.resolve();
    await settle();
    assert.deepEqual(log, ["a works", "b works"], "a's wait is over, but b still holds the only slot");
    bGoes.resolve();
    await Promise.all([a, b, c]);
    assert.deepEqual(log, ["a works", "b works", "b done", "a works again", "c works"], "work coming back from a wait goes before work not yet begun");
    assert.equal(slots.busy, 0);
  });

  test("several waits at once give the slot up once and take it back once; a failed wait takes it back too", async () => {
    const slots = new WorkerSlots(1);
    const first = deferred();
    const second = deferred();
    const failing = deferred();
    let otherRan = false;
    const a = slots.run(async () => {
      await Promise.all([waitOutsideSlot(() => first.promise), waitOutsideSlot(() => second.promise)]);
      await assert.rejects(waitOutsideSlot(() => failing.promise), /no pod/);
      assert.equal(slots.busy, 1, "the slot is held again when the error reaches the work");
    });
    await settle();
    const other = slots.run(async () => void (otherRan = true));
    await other;
    assert.ok(otherRan, "the other work ran while a waited");
    first.resolve();
    await settle();
    assert.equal(slots.busy, 0, "one wait still pending: the slot stays given up");
    second.resolve();
    await settle();
    failing.reject(new Error("no pod"));
    await a;
    await settle();
    assert.equal(slots.busy, 0);
  });

  test("outside any slot, a wait is only a wait", async () => {
    assert.equal(await waitOutsideSlot(async () => 42), 42);
  });

  test("a queue of concurrency 1: a reconcile waiting on the cluster does not hold back another key; idle waits for both", async () => {
    const pod = deferred();
    const done: string[] = [];
    const q = new WorkQueue({
      concurrency: 1,
      handler: async (key) => {
        if (key === "starting") await waitOutsideSlot(() => pod.promise);
        done.push(key);
        return {};
      },
    });
    q.add("starting", "t1");
    q.add("other", "t2");
    let idle = false;
    void q.idle().then(() => (idle = true));
    await settle();
    assert.deepEqual(done, ["other"]);
    assert.equal(idle, false, "not idle while a reconcile waits");
    pod.resolve();
    await q.idle();
    assert.deepEqual(done, ["other", "starting"]);
    await q.stop();
  });
});
