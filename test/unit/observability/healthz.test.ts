/** /healthz fails once the process cannot do its work (the state database failed), so a supervisor restarts it. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger } from "../../../src/observability/logger.ts";
import { ControllerMetrics } from "../../../src/observability/metrics.ts";
import { startHttpServer } from "../../../src/observability/http-server.ts";

test("/healthz answers 200 while live, 503 with the reason once not", async () => {
  let live: { ok: true } | { ok: false; reason: string } = { ok: true };
  const server = await startHttpServer({
    host: "127.0.0.1",
    port: 0,
    logger: createLogger({ level: "silent", pretty: false }),
    metrics: new ControllerMetrics({ collectAgents: () => [], collectPendingApprovals: () => 0 }),
    status: () => ({}),
    ready: () => ({ ready: true, reasons: [] }),
    live: () => live,
  });
  try {
    const ok = await fetch(`${server.url}/healthz`);
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { status: "ok" });
    live = { ok: false, reason: "state database /s/ruriko.sqlite: SQLITE_CORRUPT" };
    const failing = await fetch(`${server.url}/healthz`);
    assert.equal(failing.status, 503);
    assert.deepEqual(await failing.json(), { status: "failing", reason: "state database /s/ruriko.sqlite: SQLITE_CORRUPT" });
  } finally {
    await server.close();
  }
});
