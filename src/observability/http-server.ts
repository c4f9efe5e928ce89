import Fastify from "fastify";
import { verifyGitHubSignature, webhookBranch } from "../sources/webhook.ts";
import type { Logger } from "./logger.ts";
import type { ControllerMetrics } from "./metrics.ts";

/** Largest request body accepted (the git webhook is the only route with one). */
const WEBHOOK_BODY_LIMIT = 1024 * 1024;

export interface HttpServerOptions {
  host: string;
  port: number;
  logger: Logger;
  metrics: ControllerMetrics;
  status: () => unknown;
  ready: () => { ready: boolean; reasons: string[] };
  /**
   * Whether the process can still do its work: false once the state database failed (storage-health.ts), so that
   * a supervisor restarts it. Without it, /healthz answers 200 while the process runs.
   */
  live?: () => { ok: true } | { ok: false; reason: string };
  /** The git webhook, when a git source with a webhook secret is configured. */
  webhook?: { secret: string; onPush: (info: { branch?: string; deliveryId?: string }) => void };
}

export interface HttpServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Health, readiness, metrics, status and the git webhook. Read-only except for "fetch now". */
export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const app = Fastify({ logger: false, bodyLimit: WEBHOOK_BODY_LIMIT });
  // Access log: debug level only, and only the method, path (no query string) and status; never headers or bodies.
  app.addHook("onResponse", async (req, reply) => {
    opts.logger.debug(
      { method: req.method, path: req.url.split("?", 1)[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      "http request",
    );
  });
  // Error answers carry a short message only; a failure of our own is logged and answered generically.
  app.setErrorHandler(async (err: { statusCode?: number; message?: string }, req, reply) => {
    const code = typeof err.statusCode === "number" && err.statusCode >= 400 ? err.statusCode : 500;
    if (code >= 500) {
      opts.logger.error({ err, method: req.method, path: req.url.split("?", 1)[0] }, "http handler failed");
      return reply.code(code).send({ error: "internal error" });
    }
    return reply.code(code).send({ error: err.message ?? "bad request" });
  });
  app.get("/healthz", async (_req, reply) => {
    const live = opts.live?.() ?? { ok: true };
    return live.ok ? reply.send({ status: "ok" }) : reply.code(503).send({ status: "failing", reason: live.reason });
  });
  app.get("/readyz", async (_req, reply) => {
    const r = opts.ready();
    return reply.code(r.ready ? 200 : 503).send(r);
  });
  app.get("/metrics", async (_req, reply) => {
    const { contentType, body } = await opts.metrics.render();
    return reply.type(contentType).send(body);
  });
  app.get("/api/v1/status", async () => opts.status());

  const webhook = opts.webhook;
  if (webhook) {
    app.register(async (scope) => {
      // The signature covers the exact bytes sent, so the body is kept raw.
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
      scope.post("/api/v1/webhooks/git", { bodyLimit: WEBHOOK_BODY_LIMIT }, async (req, reply) => {
        const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const signature = req.headers["x-hub-signature-256"];
        if (!verifyGitHubSignature(webhook.secret, raw, typeof signature === "string" ? signature : undefined)) {
          opts.logger.warn({ remote: req.ip }, "git webhook refused: bad or missing signature");
          return reply.code(401).send({ error: "bad or missing X-Hub-Signature-256" });
        }
        const event = req.headers["x-github-event"];
        if (event === "ping") return reply.send({ pong: true });
        let payload: unknown = {};
        try {
          payload = raw.length > 0 ? JSON.parse(raw.toString("utf8")) : {};
        } catch {
          return reply.code(400).send({ error: "body is not JSON" });
        }
        const branch = webhookBranch(payload);
        const deliveryId = req.headers["x-github-delivery"];
        opts.logger.info({ branch, deliveryId }, "git webhook: fetching now");
        webhook.onPush({ ...(branch ? { branch } : {}), ...(typeof deliveryId === "string" ? { deliveryId } : {}) });
        return reply.code(202).send({ accepted: true });
      });
    });
  }
  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  return { url: `http://${host}:${port}`, port, close: () => app.close() };
}
