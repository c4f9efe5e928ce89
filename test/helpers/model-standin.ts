import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * The test harness's LLM provider: an OpenAI-compatible Chat Completions server on loopback, scripted per test.
 * It speaks the real wire format so production code (the official `openai` client) cannot tell it apart from
 * OpenAI, vLLM, Ollama or llama.cpp. Like OpenAI, it serves only under `/v1`, so `baseUrl` includes `/v1`.
 */

/** Bigger bodies get 413; a real conversation never comes close, so hitting it means a runaway prompt. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;
const MODELS = ["standin-large", "standin-small"];

export interface RecordedRequest {
  at: Date;
  method: string;
  /** Path as received, e.g. `/v1/chat/completions`. */
  path: string;
  /** Lower-cased names (Node does that), repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The parsed JSON body (model, messages, tools, tool_choice, temperature, ...); `{}` when absent or not an object. */
  body: Record<string, unknown>;
  /**
   * Milliseconds (performance.now()) from the request's arrival to its response handed to the socket, scripted
   * delays included: the stand-in's own share of a turn, which benchmarks subtract. Undefined until answered.
   */
  durationMs?: number;
}

export interface ScriptedToolCall {
  name: string;
  arguments: Record<string, unknown>;
  id?: string;
}

export type ScriptedReply =
  /** `withoutUsage`: as some OpenAI-compatible servers answer, with no `usage` in the completion. */
  | { text: string; withoutUsage?: boolean }
  | { toolCalls: ScriptedToolCall[] }
  | { status: number; error?: { message: string; type?: string; code?: string }; headers?: Record<string, string> }
  | { delayMs: number; then: ScriptedReply }
  /** Held until `until` settles (a test opens the gate once it has seen what happens while the model "thinks"). */
  | { until: Promise<unknown>; then: ScriptedReply }
  | ((request: RecordedRequest) => ScriptedReply);

export interface ModelStandin {
  /** `http://127.0.0.1:PORT/v1`: pass as the client's `baseURL`. */
  baseUrl: string;
  port: number;
  /** Every request received, in arrival order (chat completions, model listings, wrong paths alike). */
  requests: RecordedRequest[];
  /** Queues replies for the next chat completions, in order. */
  script(...replies: ScriptedReply[]): void;
  /** What to answer when the queue is empty; initially `{ text: "ok" }`. */
  setDefault(reply: ScriptedReply): void;
  /** Resolves with the requests once at least `n` were received; rejects after `timeoutMs`. */
  waitForRequests(n: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  /** Forgets requests, script, default and generated ids; keeps the port. */
  reset(): void;
  close(): Promise<void>;
}

interface Waiter {
  n: number;
  resolve: (requests: RecordedRequest[]) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

function errorBody(message: string, type: string, code: string | null = null): object {
  return { error: { message, type, param: null, code } };
}

/** Rough and deterministic: tests may assert on usage, so it must not depend on a real tokenizer. */
function tokens(text: string): number {
  return Math.ceil(text.length / 4);
}

function flatHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

/** Reads the body, but keeps draining past the limit so the client gets a clean 413 rather than a reset. */
async function readBody(req: IncomingMessage): Promise<string | "too-large"> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  return size > MAX_BODY_BYTES ? "too-large" : Buffer.concat(chunks).toString("utf8");
}

function parseObject(raw: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(raw);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export async function startModelStandin(options: { port?: number } = {}): Promise<ModelStandin> {
  const requests: RecordedRequest[] = [];
  let queue: ScriptedReply[] = [];
  let fallback: ScriptedReply = { text: "ok" };
  let waiters: Waiter[] = [];
  let nextCallId = 1;
  let nextCompletionId = 1;
  // Aborts pending delayed replies on close, so a test never waits on (or is kept alive by) a timer.
  const closing = new AbortController();

  const settleWaiters = (): void => {
    waiters = waiters.filter((w) => {
      if (requests.length < w.n) return true;
      clearTimeout(w.timer);
      w.resolve(requests.slice());
      return false;
    });
  };

  const send = (res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void => {
    // The client may have given up (timeout) while a delayed reply waited; there is no one left to answer.
    if (res.destroyed || res.writableEnded) return;
    res.writeHead(status, { ...headers, "content-type": "application/json" }).end(JSON.stringify(body));
  };

  const completion = (request: RecordedRequest, reply: { text: string; withoutUsage?: boolean } | { toolCalls: ScriptedToolCall[] }): object => {
    const model = typeof request.body.model === "string" ? request.body.model : MODELS[0];
    const toolCalls = "toolCalls" in reply
      ? reply.toolCalls.map((c) => ({ id: c.id ?? `call_${nextCallId++}`, type: "function", function: { name: c.name, arguments: JSON.stringify(c.arguments) } }))
      : undefined;
    // As a real model does: an answer longer than the request's token limit is cut there, finish_reason "length".
    const limit = Number(request.body.max_tokens ?? request.body.max_completion_tokens ?? Infinity);
    const full = "text" in reply ? reply.text : null;
    const cut = full !== null && tokens(full) > limit;
    const content = cut ? full.slice(0, limit * 4) : full;
    const promptTokens = tokens(JSON.stringify(request.body.messages ?? []));
    const completionTokens = tokens(content ?? JSON.stringify(toolCalls));
    return {
      id: `chatcmpl-standin-${nextCompletionId++}`,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [{
        index: 0,
        message: { role: "assistant", content, ...(toolCalls ? { tool_calls: toolCalls } : {}), refusal: null },
        finish_reason: toolCalls ? "tool_calls" : cut ? "length" : "stop",
        logprobs: null,
      }],
      ...("withoutUsage" in reply && reply.withoutUsage ? {} : { usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens } }),
      system_fingerprint: null,
    };
  };

  const answer = async (res: ServerResponse, request: RecordedRequest, reply: ScriptedReply): Promise<void> => {
    if (typeof reply === "function") return answer(res, request, reply(request));
    if ("delayMs" in reply) {
      const slept = await sleep(reply.delayMs, true, { signal: closing.signal }).catch(() => false);
      return slept ? answer(res, request, reply.then) : undefined;
    }
    if ("until" in reply) {
      const released = await new Promise<boolean>((resolve) => {
        if (closing.signal.aborted) return resolve(false);
        closing.signal.addEventListener("abort", () => resolve(false), { once: true });
        reply.until.finally(() => resolve(true)).catch(() => undefined);
      });
      return released ? answer(res, request, reply.then) : undefined;
    }
    if ("status" in reply) {
      const type = reply.error?.type ?? (reply.status >= 500 ? "server_error" : "invalid_request_error");
      return send(res, reply.status, errorBody(reply.error?.message ?? `scripted error ${reply.status}`, type, reply.error?.code), reply.headers);
    }
    send(res, 200, completion(request, reply));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const arrived = performance.now();
    const raw = await readBody(req);
    const path = new URL(req.url ?? "/", "http://standin").pathname;
    const body = raw === "too-large" ? undefined : parseObject(raw);
    const request: RecordedRequest = { at: new Date(), method: req.method ?? "GET", path, headers: flatHeaders(req), body: body ?? {} };
    res.once("finish", () => { request.durationMs = performance.now() - arrived; });
    requests.push(request);
    settleWaiters();

    if (raw === "too-large") return send(res, 413, errorBody(`request body exceeds ${MAX_BODY_BYTES} bytes`, "invalid_request_error"));
    if (req.method === "GET" && path === "/v1/models") {
      return send(res, 200, { object: "list", data: MODELS.map((id) => ({ id, object: "model", created: 0, owned_by: "ruriko-standin" })) });
    }
    if (req.method !== "POST" || path !== "/v1/chat/completions") {
      return send(res, 404, errorBody(`Invalid URL (${req.method} ${path})`, "invalid_request_error"));
    }
    if (!body || typeof body.model !== "string" || !Array.isArray(body.messages)) {
      return send(res, 400, errorBody("body must be a JSON object with `model` and `messages`", "invalid_request_error"));
    }
    // Gitai's model client does not stream; a request asking for SSE means production code changed under us.
    if (body.stream === true) return send(res, 400, errorBody("stream: true is not supported by the model stand-in", "invalid_request_error"));
    await answer(res, request, queue.shift() ?? fallback);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => send(res, 500, errorBody(`model stand-in failed: ${String(err)}`, "server_error")));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    script: (...replies) => { queue.push(...replies); },
    setDefault: (reply) => { fallback = reply; },
    waitForRequests(n, timeoutMs = 5_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w.timer !== timer);
          reject(new Error(`model stand-in: waited ${timeoutMs} ms for ${n} request(s), received ${requests.length}`));
        }, timeoutMs);
        waiters.push({ n, resolve, reject, timer });
        settleWaiters();
      });
    },
    reset() {
      requests.length = 0; // in place: tests may hold the array
      queue = [];
      fallback = { text: "ok" };
      nextCallId = 1;
      nextCompletionId = 1;
    },
    async close() {
      closing.abort();
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.reject(new Error("model stand-in closed"));
      }
      waiters = [];
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections(); // the client keeps connections alive; close() alone would wait for them
      await closed;
    },
  };
}
