import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { createLogger } from "../../../src/observability/logger.ts";
import { ControllerMetrics } from "../../../src/observability/metrics.ts";
import { startHttpServer, type HttpServer } from "../../../src/observability/http-server.ts";

describe("HTTP server", () => {
  let server: HttpServer;
  let ready = false;
  const pushes: Array<{ branch?: string }> = [];
  before(async () => {
    const metrics = new ControllerMetrics({ collectAgents: () => [{ condition: "Ready", status: "True", count: 3 }], collectPendingApprovals: () => 2 });
    metrics.reconciled("success", 200, 4);
    // A rejected snapshot after the applied one leaves the time of the revision in force as it was.
    metrics.snapshotTaken("applied", 1_700_000_060_000);
    metrics.snapshotTaken("rejected", 1_700_000_120_000);
    server = await startHttpServer({
      host: "127.0.0.1",
      port: 0,
      logger: createLogger({ level: "silent", pretty: false }),
      metrics,
      status: () => ({ agents: [{ name: "newsbot", phase: "Ready" }] }),
      ready: () => ({ ready, reasons: ready ? [] : ["no snapshot from the source yet"] }),
      webhook: { secret: "hook-secret", onPush: (info) => pushes.push(info) },
    });
  });
  after(() => server.close());

  test("health, readiness and status", async () => {
    assert.deepEqual(await (await fetch(`${server.url}/healthz`)).json(), { status: "ok" });
    const notReady = await fetch(`${server.url}/readyz`);
    assert.equal(notReady.status, 503);
    assert.deepEqual(await notReady.json(), { ready: false, reasons: ["no snapshot from the source yet"] });
    ready = true;
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    assert.deepEqual(await (await fetch(`${server.url}/api/v1/status`)).json(), { agents: [{ name: "newsbot", phase: "Ready" }] });
  });

  test("Prometheus metrics", async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(text, /ruriko_reconcile_duration_seconds_count\{result="success"\} 1/);
    assert.match(text, /ruriko_pending_approvals 2/);
    assert.match(text, /ruriko_agents\{condition="Ready",status="True"\} 3/);
    assert.match(text, /ruriko_queue_depth 4/);
    assert.match(text, /ruriko_snapshots_total\{outcome="applied"\} 1/);
    assert.match(text, /ruriko_snapshots_total\{outcome="rejected"\} 1/);
    assert.match(text, /ruriko_last_applied_revision_timestamp_seconds 1700000060/);
  });

  test("the git webhook checks the signature over the raw body", async () => {
    const body = JSON.stringify({ ref: "refs/heads/main" });
    const signature = `sha256=${createHmac("sha256", "hook-secret").update(body).digest("hex")}`;
    const post = (sig: string | undefined, event = "push", payload = body) =>
      fetch(`${server.url}/api/v1/webhooks/git`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-github-event": event, ...(sig ? { "x-hub-signature-256": sig } : {}) },
        body: payload,
      });
    assert.equal((await post(undefined)).status, 401);
    assert.equal((await post(signature, "push", body.replace("main", "evil"))).status, 401);
    assert.equal(pushes.length, 0);
    const ok = await post(signature);
    assert.equal(ok.status, 202);
    assert.deepEqual(pushes, [{ branch: "main" }]);
    assert.deepEqual(await (await post(signature, "ping")).json(), { pong: true });
  });
});

test("secrets never reach the log", () => {
  let out = "";
  const destination = new Writable({ write: (chunk, _enc, done) => ((out += chunk.toString()), done()) });
  const log = createLogger({ destination, level: "info" });
  log.info({ token: "tok-s3cr3t", nested: { password: "pw-s3cr3t", secret: "x-s3cr3t" }, headers: { authorization: "Bearer b-s3cr3t" } }, "hello");
  log.child({ traceId: "abc" }).info("traced");
  assert.doesNotMatch(out, /s3cr3t/);
  assert.match(out, /"traceId":"abc"/);
});
