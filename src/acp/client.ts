/**
 * Ruriko's side of the Agent Control Protocol: typed calls with a timeout each, and retries only where a
 * retry is safe (every call but POST /restart is a read or a whole-document PUT). Answers are checked
 * against the protocol schema; an error names the agent and the call, never the token or a secret.
 */
import type { AcpApplied, AcpConfigRequest, AcpEvents, AcpHealth, AcpMatrixRequest, AcpSecretsRequest, AcpStatus } from "../api/generated/types.ts";
import { backoffDelay, type BackoffPolicy } from "../time/backoff.ts";
import { ACP_TRACE_HEADER, acpBodyProblems, type AcpBodies } from "./protocol.ts";
import { AnswerTooLarge, exchange, type HttpAnswer } from "./http-exchange.ts";

export type AcpErrorCode = "unreachable" | "timeout" | "unauthorized" | "refused" | "too-large" | "protocol" | "agent-error";

export class AcpError extends Error {
  readonly code: AcpErrorCode;
  readonly agent: string;
  /** "PUT /config" */
  readonly call: string;
  readonly httpStatus: number | undefined;
  /** The agent's own explanation (validation errors of a refused Gosuto). */
  readonly details: string[];
  constructor(code: AcpErrorCode, agent: string, call: string, message: string, extra: { httpStatus?: number; details?: string[]; cause?: unknown } = {}) {
    super(`agent ${agent}: ${call}: ${message}`, { cause: extra.cause });
    this.name = "AcpError";
    this.code = code;
    this.agent = agent;
    this.call = call;
    this.httpStatus = extra.httpStatus;
    this.details = extra.details ?? [];
  }
}

export interface AcpEndpoint {
  agent: string;
  /** http://127.0.0.1:<published port> */
  baseUrl: string;
  token: string;
}

export interface AcpClientOptions {
  timeoutMs?: number;
  /** Further attempts after a connection failure, timeout or 5xx of an idempotent call. */
  retries?: number;
  /** The delay before the first retry; it doubles for each further one. */
  retryDelayMs?: number;
}

/**
 * A caller that asks for many retries still hears back within seconds: the controller's own backoff takes
 * over from there, per agent, so this loop only has to ride out a blip.
 */
const RETRY_MAX_MS = 5_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class AcpClient {
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly retryBackoff: BackoffPolicy;

  constructor(options: AcpClientOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 3000;
    this.retries = options.retries ?? 2;
    const retryDelayMs = options.retryDelayMs ?? 150;
    this.retryBackoff = { baseMs: retryDelayMs, maxMs: Math.max(retryDelayMs, RETRY_MAX_MS), jitter: 0.2 };
  }

  health(ep: AcpEndpoint, traceId: string): Promise<AcpHealth> {
    return this.call(ep, "GET", "/health", undefined, "AcpHealth", traceId, true, 0);
  }

  /** `retries: 0` for a probe whose caller retries on its own schedule (a container still starting). */
  status(ep: AcpEndpoint, traceId: string, opts: { retries?: number } = {}): Promise<AcpStatus> {
    return this.call(ep, "GET", "/status", undefined, "AcpStatus", traceId, true, opts.retries);
  }

  /** The agent's decisions after seq `after`, oldest first, at most `limit` (the agent caps it at 500). */
  events(ep: AcpEndpoint, after: number, limit: number, traceId: string): Promise<AcpEvents> {
    return this.call(ep, "GET", `/events?after=${after}&limit=${limit}`, undefined, "AcpEvents", traceId, true);
  }

  putConfig(ep: AcpEndpoint, body: AcpConfigRequest, traceId: string): Promise<AcpApplied> {
    return this.call(ep, "PUT", "/config", body, "AcpApplied", traceId, true);
  }

  putSecrets(ep: AcpEndpoint, body: AcpSecretsRequest, traceId: string): Promise<AcpApplied> {
    return this.call(ep, "PUT", "/secrets", body, "AcpApplied", traceId, true);
  }

  putMatrix(ep: AcpEndpoint, body: AcpMatrixRequest, traceId: string): Promise<AcpApplied> {
    return this.call(ep, "PUT", "/matrix", body, "AcpApplied", traceId, true);
  }

  async restart(ep: AcpEndpoint, traceId: string): Promise<void> {
    await this.call(ep, "POST", "/restart", undefined, undefined, traceId, false);
  }

  private async call<K extends keyof AcpBodies>(
    ep: AcpEndpoint,
    method: string,
    path: string,
    body: unknown,
    answer: K | undefined,
    traceId: string,
    idempotent: boolean,
    retries = this.retries,
  ): Promise<AcpBodies[K]> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once<K>(ep, method, path, body, answer, traceId);
      } catch (error) {
        const retriable = error instanceof AcpError && (error.code === "unreachable" || error.code === "timeout" || (error.httpStatus ?? 0) >= 500);
        if (!idempotent || !retriable || attempt >= retries) throw error;
        await sleep(backoffDelay(attempt + 1, this.retryBackoff));
      }
    }
  }

  private async once<K extends keyof AcpBodies>(ep: AcpEndpoint, method: string, path: string, body: unknown, answer: K | undefined, traceId: string): Promise<AcpBodies[K]> {
    const call = `${method} ${path}`;
    let response: HttpAnswer;
    try {
      response = await exchange(`${ep.baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${ep.token}`,
          [ACP_TRACE_HEADER]: traceId,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        timeoutMs: this.timeoutMs,
      });
    } catch (error) {
      const name = (error as { name?: string }).name;
      if (name === "TimeoutError" || name === "AbortError") throw new AcpError("timeout", ep.agent, call, `no answer within ${this.timeoutMs} ms`, { cause: error });
      if (error instanceof AnswerTooLarge) throw new AcpError("protocol", ep.agent, call, error.message);
      throw new AcpError("unreachable", ep.agent, call, "the agent does not answer", { cause: error });
    }
    let json: unknown;
    try {
      json = JSON.parse(response.body);
    } catch {
      json = undefined;
    }
    if (response.status < 200 || response.status > 299) {
      const e = (json ?? {}) as { error?: unknown; details?: unknown };
      const message = typeof e.error === "string" ? e.error : `HTTP ${response.status}`;
      const details = Array.isArray(e.details) ? e.details.filter((d): d is string => typeof d === "string") : [];
      const code: AcpErrorCode = response.status === 401 ? "unauthorized" : response.status === 413 ? "too-large" : response.status === 422 ? "refused" : "agent-error";
      throw new AcpError(code, ep.agent, call, details.length > 0 ? `${message}: ${details.join("; ")}` : message, { httpStatus: response.status, details });
    }
    if (answer === undefined) return json as AcpBodies[K];
    const problems = acpBodyProblems(answer, json);
    if (problems.length > 0) throw new AcpError("protocol", ep.agent, call, `answer does not follow the protocol: ${problems.join("; ")}`);
    return json as AcpBodies[K];
  }
}
