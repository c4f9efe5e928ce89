import assert from "node:assert/strict";
import { test } from "node:test";
import { conditionCounts } from "../../../src/controller/conditions.ts";
import type { Condition } from "../../../src/store/agent-status-store.ts";

const c = (type: Condition["type"], status: Condition["status"]): Condition => ({ type, status, reason: "r", message: "", lastTransitionTime: "2026-01-01T00:00:00Z" });

test("conditionCounts: agents by condition and status, each pair once", () => {
  const counts = conditionCounts([
    { conditions: [c("Ready", "True"), c("Stalled", "False")] },
    { conditions: [c("Ready", "True"), c("Stalled", "False")] },
    { conditions: [c("Ready", "False"), c("Stalled", "True")] },
    { conditions: [] },
  ]);
  const key = (x: { condition: string; status: string }) => `${x.condition}/${x.status}`;
  assert.deepEqual(counts.map((x) => [key(x), x.count]).sort(), [
    ["Ready/False", 1],
    ["Ready/True", 2],
    ["Stalled/False", 2],
    ["Stalled/True", 1],
  ]);
  assert.deepEqual(conditionCounts([]), []);
});
