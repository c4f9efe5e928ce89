/**
 * Gitai's Agent Control Protocol server (DESIGN.md §5): health and status for anyone holding the agent's token,
 * and the idempotent writes Ruriko makes — the Gosuto, the secrets and the Matrix identity. Every request is
 * logged with its trace id, never with a body or a header.
 *
 * On node:http rather than a framework: seven JSON routes do not need one, and every agent is a container whose
 * memory counts — Fastify cost each running agent ~3 MB (docs/performance.md).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { AcpEvents, AcpStatus } from "../../api/generated/types.ts";
import { ACP_BODY_LIMIT, ACP_TOKEN_FILE, ACP_TRACE_HEADER, acpBodyProblems, isAcpBody } from "../../acp/protocol.ts";
import { newTraceId, type Logger } from "../../observability/logger.ts";
import { RURIKO_VERSION } from "../../version.ts";
import type { EventJournal } from "../events/journal.ts";
import { ControlToken } from "./control-token.ts";
import { GosutoState } from "./gosuto-state.ts";
import { MatrixIdentityHolder } from "./matrix-identity.ts";
import { SecretHolder } from "./secret-holder.ts";

/** What the ACP server tells the running agent, and asks of it. */
export interface AgentHooks {
  /** Something the agent holds changed (its Gosuto, secrets or identity): bring its parts in line. */
  configure(): void;
  /** POST /restart: the agent loop and its MCP servers start over. */
  restart(): Promise<void>;
  status(): Pick<AcpStatus, "conversation" | "model" | "mcps" | "counters" | "approvals" | "limits" | "gateways">;
}

export interface AcpServerOptions {
  host: string;
  port: number;
  agent: string;
  /** The agent's data volume: Ruriko writes the token file here. */
  dataDir: string;
  logger: Logger;
  /** What the agent holds (made here when not given). */
  held?: { gosuto: GosutoState; secrets: SecretHolder; identity: MatrixIdentityHolder };
  hooks?: AgentHooks;
  /** The decision journal GET /events serves and /status counts (no journal: /events answers nothing). */
  events?: Pick<EventJournal, "after" | "last">;
}

export interface AcpServer {
  port: number;
  close(): Promise<void>;
}

const TRACE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** An answer: its status and JSON body. */
interface Answer {
  status: number;
  body: unknown;
}

/** One route: the request's parsed JSON body (undefined for a GET), trace id and query → its answer. */
type Route = (body: unknown, traceId: string, query: URLSearchParams) => Answer | Promise<Answer>;

/** GET /events pages: a collector asks for the default, a catching-up one for at most the max. */
export const EVENTS_LIMIT_DEFAULT = 100;
export const EVENTS_LIMIT_MAX = 500;

export type EventsQuery = { ok: true; after: number; limit: number } | { ok: false; errors: string[] };

/** Reads `after` (default 0) and `limit` (default 100, at most 500) strictly: digits only, no silent clamping of junk; pure. */
export function parseEventsQuery(query: URLSearchParams): EventsQuery {
  const errors: string[] = [];
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = query.getAll(name);
    if (raw.length === 0) return fallback;
    const text = raw[0]!;
    const value = Number(text);
    if (raw.length > 1 || !/^[0-9]{1,16}$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
      errors.push(`${name} must be one integer from ${min} to ${max}`);
      return fallback;
    }
    return value;
  };
  const after = integer("after", 0, 0, Number.MAX_SAFE_INTEGER);
  const limit = integer("limit", EVENTS_LIMIT_DEFAULT, 1, EVENTS_LIMIT_MAX);
  return errors.length > 0 ? { ok: false, errors } : { ok: true, after, limit };
}

const ok = (body: unknown): Answer => ({ status: 200, body });
const refuse = (status: number, error: string, details?: string[]): Answer => ({ status, body: details ? { error, details } : { error } });

class RequestError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export async function startAcpServer(opts: AcpServerOptions): Promise<AcpServer> {
  const log = opts.logger;
  const token = new ControlToken(join(opts.dataDir, ACP_TOKEN_FILE), () =>
    log.warn("a token file appeared while the agent holds a token: deleted unread (a token is taken once per process)"),
  );
  const { gosuto, secrets, identity: matrix } = opts.held ?? { gosuto: new GosutoState(), secrets: new SecretHolder(), identity: new MatrixIdentityHolder() };
  const hooks = opts.hooks;
  const startedAt = new Date().toISOString();
  let restarts = 0;

  const routes: Record<string, Route> = {
    "GET /status": () =>
      ok({
        agent: opts.agent,
        version: RURIKO_VERSION,
        startedAt,
        gosutoDigest: gosuto.current?.digest ?? null,
        secretsDigest: secrets.digest,
        matrix: matrix.describe(),
        secrets: secrets.describe(),
        mcps: [],
        restarts,
        ...hooks?.status(),
        ...(opts.events ? { events: { last: opts.events.last } } : {}),
      } satisfies AcpStatus),

    "GET /events": (_body, _traceId, query) => {
      const q = parseEventsQuery(query);
      if (!q.ok) return refuse(400, "bad events query", q.errors);
      return ok((opts.events?.after(q.after, q.limit) ?? { events: [], first: 0, last: 0 }) satisfies AcpEvents);
    },

    "PUT /config": (body, traceId) => {
      const problems = acpBodyProblems("AcpConfigRequest", body);
      if (problems.length > 0 || !isAcpBody("AcpConfigRequest", body)) return refuse(422, "malformed config request", problems);
      const verdict = gosuto.apply(body.gosuto, body.digest);
      if (!verdict.ok) {
        log.warn({ traceId, errors: verdict.errors }, "Gosuto refused; the previous config stays in force");
        return refuse(422, "invalid Gosuto", verdict.errors);
      }
      log.info({ traceId, gosutoDigest: verdict.applied.digest }, "Gosuto applied");
      hooks?.configure();
      return ok({ digest: verdict.applied.digest });
    },

    "PUT /secrets": (body, traceId) => {
      const problems = acpBodyProblems("AcpSecretsRequest", body);
      // Problems name paths and rules only (never values): safe to answer.
      if (problems.length > 0 || !isAcpBody("AcpSecretsRequest", body)) return refuse(422, "malformed secrets request", problems);
      secrets.replace(body);
      log.info({ traceId, secretsDigest: body.digest, names: Object.keys(body.secrets).sort() }, "secrets replaced");
      hooks?.configure();
      return ok({ digest: body.digest });
    },

    "PUT /matrix": (body, traceId) => {
      const problems = acpBodyProblems("AcpMatrixRequest", body);
      if (problems.length > 0 || !isAcpBody("AcpMatrixRequest", body)) return refuse(422, "malformed matrix request", problems);
      if ((body.identity === null) !== (body.digest === null)) return refuse(422, "identity and digest go together: both null or both set");
      matrix.replace(body);
      log.info({ traceId, userId: body.identity?.userId ?? null, matrixDigest: body.digest }, body.identity ? "Matrix identity replaced" : "Matrix identity dropped");
      hooks?.configure();
      return ok({ digest: body.digest });
    },

    "POST /restart": (_body, traceId) => {
      // A soft restart: the agent loop and its MCP servers start over with what the agent holds; the process, its
      // start time, its token, its Gosuto and its secrets stay.
      restarts++;
      log.info({ traceId, restarts }, "soft restart");
      hooks?.restart().catch((error: unknown) => log.error({ err: (error as Error).message }, "restart failed"));
      return { status: 202, body: { status: "restarting" } };
    },
  };

  const answer = async (req: IncomingMessage, traceId: string): Promise<Answer> => {
    const [path = "/", search = ""] = (req.url ?? "/").split(/\?(.*)/s, 2);
    // Health is the liveness probe and says nothing but "ok"; everything else needs the token.
    if (path === "/health") return req.method === "GET" ? ok({ status: "ok" }) : refuse(405, "method not allowed");
    if (!token.accepts(req.headers.authorization)) return refuse(401, "missing or wrong bearer token");
    const route = routes[`${req.method} ${path}`];
    if (!route) return refuse(404, `no route ${req.method} ${path}`);
    const body = req.method === "GET" ? undefined : await readJson(req);
    return route(body, traceId, new URLSearchParams(search));
  };

  const server = createServer((req, res) => {
    const began = performance.now();
    const presented = req.headers[ACP_TRACE_HEADER];
    const traceId = typeof presented === "string" && TRACE_ID.test(presented) ? presented : newTraceId();
    res.setHeader(ACP_TRACE_HEADER, traceId);
    answer(req, traceId)
      .catch((error: unknown): Answer => {
        if (error instanceof RequestError) return refuse(error.status, error.message);
        log.error({ traceId, err: (error as Error).message }, "acp handler failed");
        return refuse(500, "internal error");
      })
      .then((a) => {
        send(res, a);
        log.info({ traceId, method: req.method, path: (req.url ?? "/").split("?", 1)[0], status: a.status, ms: Math.round(performance.now() - began) }, "acp request");
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: opts.host, port: opts.port }, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

/** The request's JSON body, at most ACP_BODY_LIMIT bytes; its errors name no body content. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const length = req.headers["content-length"];
  if (length === "0" || (length === undefined && req.headers["transfer-encoding"] === undefined)) return undefined;
  const type = req.headers["content-type"] ?? "";
  if (!/^application\/json\b/i.test(type)) {
    req.resume();
    throw new RequestError(415, "the body must be application/json");
  }
  if (Number(req.headers["content-length"] ?? 0) > ACP_BODY_LIMIT) {
    req.resume();
    throw new RequestError(413, `body larger than ${ACP_BODY_LIMIT} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    // Keep reading (and dropping) past the limit, so the client gets its 413 rather than a reset.
    if (size <= ACP_BODY_LIMIT) chunks.push(chunk);
  }
  if (size > ACP_BODY_LIMIT) throw new RequestError(413, `body larger than ${ACP_BODY_LIMIT} bytes`);
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new RequestError(400, "the body is not valid JSON");
  }
}

function send(res: ServerResponse, a: Answer): void {
  const text = JSON.stringify(a.body);
  res.writeHead(a.status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
