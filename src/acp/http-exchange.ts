/**
 * One HTTP request and its whole answer as text, on node:http. The ACP client asks every running agent every
 * poll: Node's global fetch would load its HTTP stack (undici) into serve for that alone, 10–16 MiB of an idle
 * serve's memory, where node:http is already loaded for Ruriko's own endpoints. Connections are kept alive by
 * Node's global agent.
 */
import { request } from "node:http";

export interface HttpAnswer {
  status: number;
  body: string;
}

export interface HttpExchange {
  method: string;
  headers: Record<string, string>;
  body?: string;
  /** The whole exchange, connecting included; past it the request is aborted with a TimeoutError. */
  timeoutMs: number;
  /** Answers longer than this are cut off and refused (an agent is not trusted with Ruriko's memory). */
  maxAnswerBytes?: number;
}

/** An answer past its size limit. */
export class AnswerTooLarge extends Error {
  constructor(limit: number) {
    super(`answer longer than ${limit} bytes`);
    this.name = "AnswerTooLarge";
  }
}

/** An exchange past its `timeoutMs`; named as AbortSignal.timeout's error is. */
export class ExchangeTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = "TimeoutError";
  }
}

const DEFAULT_MAX_ANSWER_BYTES = 8 << 20;

export function exchange(url: string, x: HttpExchange): Promise<HttpAnswer> {
  const limit = x.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES;
  return new Promise((resolve, reject) => {
    const ok = (answer: HttpAnswer) => {
      clearTimeout(timer);
      resolve(answer);
    };
    const fail = (error: unknown) => {
      clearTimeout(timer);
      reject(error);
    };
    const req = request(url, { method: x.method, headers: { ...x.headers, ...(x.body === undefined ? {} : { "content-length": String(Buffer.byteLength(x.body)) }) } }, (res) => {
      const chunks: Buffer[] = [];
      let length = 0;
      res.on("data", (chunk: Buffer) => {
        length += chunk.length;
        if (length > limit) {
          req.destroy(new AnswerTooLarge(limit));
          return;
        }
        chunks.push(chunk);
      });
      res.on("end", () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", fail);
    });
    // A timer of its own, not AbortSignal.timeout(): that signal, its listeners and its finalization cost 40–60 µs of
    // an attempt's ~140 µs on a port that refuses (a thousand agents starting, docs/performance.md).
    const timer = setTimeout(() => req.destroy(new ExchangeTimeout(x.timeoutMs)), x.timeoutMs);
    req.on("error", fail);
    req.end(x.body);
  });
}
