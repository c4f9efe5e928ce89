import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManualClock } from "../../../src/time/clock.ts";
import { QuietPeriod, quietWaitMs } from "../../../src/time/quiet-period.ts";

const bounds = { minMs: 25, maxMs: 300 };

describe("QuietPeriod", () => {
  const setup = () => {
    const clock = new ManualClock();
    const fired: number[] = [];
    const start = clock.now();
    const quiet = new QuietPeriod({ ...bounds, clock, onQuiet: () => fired.push(clock.now() - start) });
    return { clock, fired, quiet };
  };

  test("a lone save is acted on after the shortest wait", () => {
    const { clock, fired, quiet } = setup();
    quiet.poke();
    clock.advance(24);
    assert.deepEqual(fired, []);
    clock.advance(1);
    assert.deepEqual(fired, [25]);
  });

  test("the few events of one save (within the shortest wait) still make one action, soon", () => {
    const { clock, fired, quiet } = setup();
    quiet.poke();
    clock.advance(2);
    quiet.poke();
    clock.advance(3);
    quiet.poke();
    clock.advance(100);
    assert.deepEqual(fired, [30]);
  });

  test("a burst waits as long as it has lasted: one action, after it is over", () => {
    const { clock, fired, quiet } = setup();
    // A checkout writing a file every 20 ms for 400 ms.
    for (let t = 0; t < 400; t += 20) {
      quiet.poke();
      clock.advance(20);
    }
    assert.deepEqual(fired, [], "nothing while the burst goes on");
    clock.advance(1000);
    // The last event came 380 ms into the burst: the wait after it is capped at 300 ms.
    assert.deepEqual(fired, [380 + 300]);
  });

  test("after an action the next event starts a new burst, with the shortest wait again", () => {
    const { clock, fired, quiet } = setup();
    for (let t = 0; t < 200; t += 20) {
      quiet.poke();
      clock.advance(20);
    }
    clock.advance(500);
    assert.equal(fired.length, 1);
    quiet.poke();
    clock.advance(25);
    assert.equal(fired.length, 2);
    assert.equal(fired[1]! - 700, 25);
  });

  test("stop drops a pending wait", () => {
    const { clock, fired, quiet } = setup();
    quiet.poke();
    quiet.stop();
    clock.advance(1000);
    assert.deepEqual(fired, []);
  });
});

test("quietWaitMs: the burst's length so far, between the bounds", () => {
  assert.deepEqual([0, 10, 25, 120, 300, 5000].map((b) => quietWaitMs(b, bounds)), [25, 25, 25, 120, 300, 300]);
});
