/** docs/operations.md's metrics table says what /metrics serves: every ruriko_ metric, its type and its label names. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ControllerMetrics } from "../../../src/observability/metrics.ts";

test("every metric Ruriko serves is documented with its type and labels, and nothing else is", async () => {
  const metrics = new ControllerMetrics({ collectAgents: () => [], collectPendingApprovals: () => 0 });
  // Served on Kubernetes only, documented all the same.
  metrics.kubernetesRequestCounter();
  const types = new Map((await metrics.registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]));
  const served = metrics.registry
    .getMetricsAsArray()
    .map((m) => m as unknown as { name: string; labelNames?: string[] })
    .filter((m) => m.name.startsWith("ruriko_"))
    .map((m) => ({ name: m.name, type: types.get(m.name)!, labels: [...(m.labelNames ?? [])].sort() }));
  const docs = readFileSync(join(import.meta.dirname, "../../../docs/operations.md"), "utf8");
  const documented = [...docs.matchAll(/^\| `(ruriko_[a-z_]+)` \| (\w+) \| ([^|]*)\|$/gm)].map(([, name, type, labels]) => ({
    name: name!,
    type: type!,
    // "`result` (`success`, `error`)": the label names are the backticked words outside the parentheses.
    labels: [...labels!.replace(/\([^)]*\)/g, "").matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!).sort(),
  }));
  const byName = (list: Array<{ name: string }>) => [...list].sort((a, b) => a.name.localeCompare(b.name));
  assert.deepEqual(byName(documented), byName(served));
});
