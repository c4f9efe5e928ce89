import assert from "node:assert/strict";
import { test } from "node:test";
import { unansweredRequeueMs } from "../../../src/controller/agent-sync.ts";

test("an agent that does not answer is asked again soon at first, then after a quarter of its silence, at most 5 s", () => {
  assert.deepEqual([0, 400, 999].map(unansweredRequeueMs), [50, 50, 50], "its first second: every 50 ms");
  assert.deepEqual([1000, 1500, 4000, 8000, 20_000].map(unansweredRequeueMs), [250, 375, 1000, 2000, 5000]);
  assert.equal(unansweredRequeueMs(10 * 60_000), 5000, "never longer than 5 s");
  // Over its first minute a silent agent is asked 42 times (20 of them in its first second), not 256 (50 ms, then 250).
  let asked = 0;
  for (let t = 0; t < 60_000; t += unansweredRequeueMs(t)) asked++;
  assert.equal(asked, 42);
});
