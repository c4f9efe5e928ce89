import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
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

/** A route's answer: a status, and JSON or text of a content type. */
interface Answer {
  status: number;
  body: unknown;
  contentType?: string;
}

const JSON_TYPE = "application/json; charset=utf-8";

/**
 * Health, readiness, metrics, status and the git webhook. Read-only except for "fetch now". On node:http: five
 * routes do not need a framework, and one (fastify) was several megabytes of an idle serve's memory.
 */
export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const routes: Record<string, (req: IncomingMessage) => Answer | Promise<Answer>> = {
    "GET /healthz": () => {
      const live = opts.live?.() ?? { ok: true };
      return live.ok ? { status: 200, body: { status: "ok" } } : { status: 503, body: { status: "failing", reason: live.reason } };
    },
    "GET /readyz": () => {
      const r = opts.ready();
      return { status: r.ready ? 200 : 503, body: r };
    },
    "GET /metrics": async () => {
      const { contentType, body } = await opts.metrics.render();
      return { status: 200, body, contentType };
    },
    "GET /api/v1/status": () => ({ status: 200, body: opts.status() }),
  };
  const webhook = opts.webhook;
  if (webhook) routes["POST /api/v1/webhooks/git"] = (req) => gitWebhook(req, webhook, opts.logger);

  const server = createServer((req, res) => {
    const started = performance.now();
    const path = (req.url ?? "/").split("?", 1)[0]!;
    // HEAD is answered as GET without a body (node:http leaves the body out).
    const route = routes[`${req.method === "HEAD" ? "GET" : req.method} ${path}`];
    res.on("finish", () => {
      // Access log: debug level only, and only the method, path (no query string) and status; never headers or bodies.
      opts.logger.debug({ method: req.method, path, status: res.statusCode, ms: Math.round(performance.now() - started) }, "http request");
    });
    if (!route) {
      req.resume();
      return send(res, { status: 404, body: { error: `no route ${req.method} ${path}` } });
    }
    Promise.resolve()
      .then(() => route(req))
      .then(
        (answer) => send(res, answer),
        // A failure of our own is logged and answered generically; a refusal (a status below 500) says why.
        (error: { statusCode?: number; message?: string }) => {
          const status = typeof error.statusCode === "number" && error.statusCode >= 400 ? error.statusCode : 500;
          if (status >= 500) opts.logger.error({ err: error, method: req.method, path }, "http handler failed");
          // A body refused unread must not be taken for the next request on the connection.
          if (status === 413) res.setHeader("connection", "close");
          send(res, { status, body: { error: status >= 500 ? "internal error" : (error.message ?? "bad request") } });
        },
      );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: opts.host, port: opts.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}`,
    port,
    // Requests under way finish; idle keep-alive connections are closed so that the server can stop.
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeIdleConnections();
      }),
  };
}

function send(res: ServerResponse, answer: Answer): void {
  if (res.headersSent) return;
  const text = typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body);
  res.writeHead(answer.status, { "content-type": answer.contentType ?? JSON_TYPE, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** A refusal with its status: answered as `{ error: message }`. */
class HttpRefusal extends Error {
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.statusCode = statusCode;
  }
}

/** The request body, as the bytes sent (the signature covers exactly those); past the limit, a 413. */
function rawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => new HttpRefusal(413, `request body is larger than ${limit} bytes`);
    // The rest is not read: the refusal closes the connection (see the server's error answer).
    if (Number(req.headers["content-length"] ?? 0) > limit) return reject(tooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.pause();
      reject(tooLarge());
    });
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

/** POST /api/v1/webhooks/git: a GitHub-style push, signed over the raw body; a valid one for any branch triggers a fetch. */
async function gitWebhook(req: IncomingMessage, webhook: NonNullable<HttpServerOptions["webhook"]>, logger: Logger): Promise<Answer> {
  const raw = await rawBody(req, WEBHOOK_BODY_LIMIT);
  const signature = req.headers["x-hub-signature-256"];
  if (!verifyGitHubSignature(webhook.secret, raw, typeof signature === "string" ? signature : undefined)) {
    logger.warn({ remote: req.socket.remoteAddress }, "git webhook refused: bad or missing signature");
    return { status: 401, body: { error: "bad or missing X-Hub-Signature-256" } };
  }
  if (req.headers["x-github-event"] === "ping") return { status: 200, body: { pong: true } };
  let payload: unknown = {};
  try {
    payload = raw.length > 0 ? JSON.parse(raw.toString("utf8")) : {};
  } catch {
    return { status: 400, body: { error: "body is not JSON" } };
  }
  const branch = webhookBranch(payload);
  const deliveryId = req.headers["x-github-delivery"];
  logger.info({ branch, deliveryId }, "git webhook: fetching now");
  webhook.onPush({ ...(branch ? { branch } : {}), ...(typeof deliveryId === "string" ? { deliveryId } : {}) });
  return { status: 202, body: { accepted: true } };
}
