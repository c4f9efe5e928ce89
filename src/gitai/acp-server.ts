/**
 * Gitai's Agent Control Protocol server (DESIGN.md §5): health and status for anyone holding the agent's
 * token, and the idempotent writes Ruriko makes — the Gosuto, the secrets and the Matrix identity. Every request is logged
 * with its trace id, never with a body or a header.
 */
import Fastify, { type FastifyInstance } from "fastify";
import { join } from "node:path";
import type { AcpStatus } from "../api/generated/types.ts";
import { ACP_BODY_LIMIT, ACP_TOKEN_FILE, ACP_TRACE_HEADER, acpBodyProblems, isAcpBody } from "../acp/protocol.ts";
import { newTraceId, type Logger } from "../observability/logger.ts";
import { RURIKO_VERSION } from "../version.ts";
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
  status(): Pick<AcpStatus, "conversation" | "model" | "mcps" | "counters">;
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
}

export interface AcpServer {
  port: number;
  close(): Promise<void>;
}

const TRACE_ID = /^[A-Za-z0-9._-]{1,64}$/;

declare module "fastify" {
  interface FastifyRequest {
    traceId: string;
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

  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: ACP_BODY_LIMIT });
  app.decorateRequest("traceId", "");
  app.addHook("onRequest", async (req, reply) => {
    const presented = req.headers[ACP_TRACE_HEADER];
    req.traceId = typeof presented === "string" && TRACE_ID.test(presented) ? presented : newTraceId();
    reply.header(ACP_TRACE_HEADER, req.traceId);
    // Health is the liveness probe and says nothing but "ok"; everything else needs the token.
    if (req.url === "/health") return;
    if (!token.accepts(req.headers.authorization)) {
      return reply.code(401).send({ error: "missing or wrong bearer token" });
    }
  });
  app.addHook("onResponse", async (req, reply) => {
    log.info({ traceId: req.traceId, method: req.method, path: req.url.split("?", 1)[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, "acp request");
  });
  app.setErrorHandler(async (err: { statusCode?: number; code?: string; message?: string }, req, reply) => {
    if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") return reply.code(413).send({ error: `body larger than ${ACP_BODY_LIMIT} bytes` });
    const code = typeof err.statusCode === "number" && err.statusCode >= 400 ? err.statusCode : 500;
    if (code >= 500) {
      log.error({ traceId: req.traceId, err: err.message }, "acp handler failed");
      return reply.code(500).send({ error: "internal error" });
    }
    // Fastify's own messages (bad JSON, wrong content type) name no body content.
    return reply.code(code).send({ error: err.message ?? "bad request" });
  });

  app.get("/health", async () => ({ status: "ok" }));

  app.get("/status", async (): Promise<AcpStatus> => ({
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
  }));

  app.put("/config", async (req, reply) => {
    const problems = acpBodyProblems("AcpConfigRequest", req.body);
    if (problems.length > 0 || !isAcpBody("AcpConfigRequest", req.body)) return reply.code(422).send({ error: "malformed config request", details: problems });
    const verdict = gosuto.apply(req.body.gosuto, req.body.digest);
    if (!verdict.ok) {
      log.warn({ traceId: req.traceId, errors: verdict.errors }, "Gosuto refused; the previous config stays in force");
      return reply.code(422).send({ error: "invalid Gosuto", details: verdict.errors });
    }
    log.info({ traceId: req.traceId, gosutoDigest: verdict.applied.digest }, "Gosuto applied");
    hooks?.configure();
    return { digest: verdict.applied.digest };
  });

  app.put("/secrets", async (req, reply) => {
    const problems = acpBodyProblems("AcpSecretsRequest", req.body);
    // Problems name paths and rules only (never values): safe to answer.
    if (problems.length > 0 || !isAcpBody("AcpSecretsRequest", req.body)) return reply.code(422).send({ error: "malformed secrets request", details: problems });
    secrets.replace(req.body);
    log.info({ traceId: req.traceId, secretsDigest: req.body.digest, names: Object.keys(req.body.secrets).sort() }, "secrets replaced");
    hooks?.configure();
    return { digest: req.body.digest };
  });

  app.put("/matrix", async (req, reply) => {
    const problems = acpBodyProblems("AcpMatrixRequest", req.body);
    if (problems.length > 0 || !isAcpBody("AcpMatrixRequest", req.body)) return reply.code(422).send({ error: "malformed matrix request", details: problems });
    if ((req.body.identity === null) !== (req.body.digest === null)) return reply.code(422).send({ error: "identity and digest go together: both null or both set" });
    matrix.replace(req.body);
    log.info({ traceId: req.traceId, userId: req.body.identity?.userId ?? null, matrixDigest: req.body.digest }, req.body.identity ? "Matrix identity replaced" : "Matrix identity dropped");
    hooks?.configure();
    return { digest: req.body.digest };
  });

  app.post("/restart", async (req, reply) => {
    // A soft restart: the agent loop and its MCP servers start over with what the agent holds; the process, its
    // start time, its token, its Gosuto and its secrets stay.
    restarts++;
    log.info({ traceId: req.traceId, restarts }, "soft restart");
    hooks?.restart().catch((error: unknown) => log.error({ err: (error as Error).message }, "restart failed"));
    return reply.code(202).send({ status: "restarting" });
  });

  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address();
  return {
    port: typeof address === "object" && address ? address.port : opts.port,
    close: () => app.close(),
  };
}
