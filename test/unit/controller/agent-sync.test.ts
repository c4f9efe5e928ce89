import assert from "node:assert/strict";
import { test } from "node:test";
import { unansweredRequeueMs } from "../../../src/controller/agent-sync.ts";

test("an agent that does not answer is asked again soon at first, then after as long again as its silence, at most 10 s", () => {
  assert.deepEqual([0, 400, 999].map(unansweredRequeueMs), [50, 50, 50], "its first second: every 50 ms");
  assert.deepEqual([1000, 1500, 4000, 8000].map(unansweredRequeueMs), [1000, 1500, 4000, 8000]);
  assert.equal(unansweredRequeueMs(10 * 60_000), 10_000, "never longer than 10 s");
  // Over its first minute a silent agent is asked 29 times: 20 in its first second (the boot wait), then at 1, 2, 4,
  // 8, 16, 26, 36, 46 and 56 s; a quarter of the silence up to 5 s was 42, 50 ms then 250 ms was 256.
  let asked = 0;
  for (let t = 0; t < 60_000; t += unansweredRequeueMs(t)) asked++;
  assert.equal(asked, 29);
});
