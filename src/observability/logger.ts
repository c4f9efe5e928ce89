import { randomBytes } from "node:crypto";
import { pino, type DestinationStream, type Logger as PinoLogger } from "pino";

export type Logger = PinoLogger;

/** Field names whose values are never written, wherever they appear (DESIGN.md §2.5). */
const REDACT = [
  "token",
  "accessToken",
  "password",
  "secret",
  "secrets",
  "value",
  "authorization",
  "masterKey",
  "*.token",
  "*.accessToken",
  "*.password",
  "*.secret",
  "*.secrets",
  "*.value",
  "*.authorization",
  "*.masterKey",
  "headers.authorization",
  "req.headers.authorization",
];

/**
 * JSON lines by default (for machines), pretty on a terminal (for people). Every reconcile logs through
 * `withTrace`, so all its lines carry one trace id.
 */
export function createLogger(opts: { level?: string; pretty?: boolean; name?: string; destination?: DestinationStream } = {}): Logger {
  const options = {
    name: opts.name ?? "ruriko",
    level: opts.level ?? "info",
    redact: { paths: REDACT, censor: "[redacted]" },
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (opts.destination) return pino(options, opts.destination);
  const pretty = opts.pretty ?? process.stdout.isTTY === true;
  if (pretty) return pino({ ...options, transport: { target: "pino-pretty", options: { colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "name" } } });
  return pino(options);
}

/** `bindings`: what else every line carries (the agent): one child logger, not two, at every reconcile. */
export function withTrace(logger: Logger, traceId: string, bindings: Record<string, string> = {}): Logger {
  return logger.child({ traceId, ...bindings });
}

export function newTraceId(): string {
  return randomBytes(8).toString("hex");
}
