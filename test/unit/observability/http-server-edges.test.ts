/** The HTTP server's answers beyond its routes' own: unknown routes, HEAD, query strings, oversized bodies, failures. */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import { createLogger } from "../../../src/observability/logger.ts";
import { ControllerMetrics } from "../../../src/observability/metrics.ts";
import { startHttpServer, type HttpServer } from "../../../src/observability/http-server.ts";

describe("HTTP server edges", () => {
  let server: HttpServer;
  let failStatus = false;
  before(async () => {
    server = await startHttpServer({
      host: "127.0.0.1",
      port: 0,
      logger: createLogger({ level: "silent", pretty: false }),
      metrics: new ControllerMetrics({ collectAgents: () => [], collectPendingApprovals: () => 0 }),
      status: () => {
        if (failStatus) throw new Error("SQLITE_IOERR: /secret/path");
        return { agents: [] };
      },
      ready: () => ({ ready: true, reasons: [] }),
      webhook: { secret: "hook-secret", onPush: () => {} },
    });
  });
  after(() => server.close());

  test("an unknown route or method answers 404 in JSON", async () => {
    for (const [method, path] of [["GET", "/nope"], ["POST", "/healthz"], ["GET", "/api/v1/webhooks/git"]] as const) {
      const r = await fetch(`${server.url}${path}`, { method });
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.match(((await r.json()) as { error: string }).error, /no route/);
    }
  });

  test("HEAD answers as GET without a body; a query string does not change the route", async () => {
    const head = await fetch(`${server.url}/healthz`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
    assert.deepEqual(await (await fetch(`${server.url}/healthz?verbose=1`)).json(), { status: "ok" });
    assert.match((await fetch(`${server.url}/metrics`)).headers.get("content-type") ?? "", /^text\/plain/);
  });

  test("a body over the limit is refused with 413, declared or streamed", async () => {
    const big = Buffer.alloc(1024 * 1024 + 1, "x");
    const declared = await fetch(`${server.url}/api/v1/webhooks/git`, { method: "POST", body: big });
    assert.equal(declared.status, 413);
    const streamed = await new Promise<number>((resolve, reject) => {
      const req = request(`${server.url}/api/v1/webhooks/git`, { method: "POST", headers: { "transfer-encoding": "chunked" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      for (let i = 0; i < 17; i++) req.write(Buffer.alloc(64 * 1024, "x"));
      req.end();
    });
    assert.equal(streamed, 413);
  });

  test("a failure of its own answers a generic 500, never the error's text", async () => {
    failStatus = true;
    const r = await fetch(`${server.url}/api/v1/status`);
    failStatus = false;
    assert.equal(r.status, 500);
    assert.deepEqual(await r.json(), { error: "internal error" });
  });
});
