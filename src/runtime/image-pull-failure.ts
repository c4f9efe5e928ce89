/**
 * What a failed pull comes down to, in a few words, from the engine's message: `unauthorized`, `manifest
 * unknown`, `connection refused`, … The engine's messages are long and carry URLs and resolver addresses;
 * a condition needs the reason and what would fix it. Pure.
 *
 * Example: `Head "http://127.0.0.1:5000/v2/agent/manifests/v1": no basic auth credentials` → unauthorized
 * (definitive: asking again without a credential cannot help).
 */
import type { PullFailure } from "./runtime.ts";

/** Checked in order: the first that matches names the failure. */
const PATTERNS: ReadonlyArray<{ test: RegExp; reason: string; definitive: boolean }> = [
  { test: /no basic auth credentials|unauthorized|authentication required|incorrect username or password|\b401 Unauthorized\b/i, reason: "unauthorized", definitive: true },
  { test: /\bdenied\b|\b403 Forbidden\b/i, reason: "denied", definitive: true },
  { test: /manifest unknown|manifest for .* not found|not found: manifest/i, reason: "manifest unknown", definitive: true },
  { test: /name unknown|repository name not known|repository does not exist/i, reason: "name unknown", definitive: true },
  { test: /no matching manifest for|no match for platform/i, reason: "no image for this platform", definitive: true },
  { test: /invalid reference format/i, reason: "invalid reference", definitive: true },
  { test: /no such host|Name or service not known/i, reason: "no such host", definitive: true },
  { test: /connection refused/i, reason: "connection refused", definitive: false },
  { test: /toomanyrequests|too many requests/i, reason: "too many requests", definitive: false },
  { test: /timeout|timed out|deadline exceeded/i, reason: "timeout", definitive: false },
  { test: /server gave HTTP response to HTTPS client/i, reason: "registry speaks HTTP, not HTTPS", definitive: false },
  { test: /x509|certificate|tls:/i, reason: "TLS error", definitive: false },
  { test: /connection reset|broken pipe|\bEOF\b|network is unreachable|no route to host/i, reason: "connection lost", definitive: false },
  { test: /no space left on device/i, reason: "no space left on device", definitive: false },
];

/** The failure an engine message describes; `error` (retried with backoff) when none of the known ones. */
export function classifyPullFailure(message: string): PullFailure {
  for (const p of PATTERNS) if (p.test.test(message)) return { reason: p.reason, definitive: p.definitive };
  return { reason: "error", definitive: false };
}

/** Our own deadline passed (`serve --image-pull-timeout`): retried with backoff. */
export const PULL_TIMED_OUT: PullFailure = { reason: "timeout", definitive: false };

/**
 * A short, single-line form of an engine message for the detail of an unclassified failure: without the
 * `(HTTP code 500) server error -` prefix, URLs shortened to their host, cut at `max` characters. Any text the
 * caller names in `secrets` (the credential used) is blanked, should an engine ever echo it.
 */
export function shortEngineMessage(message: string, secrets: readonly string[] = [], max = 160): string {
  let text = message
    .replace(/^\(HTTP code \d+\)\s*[a-z ]*-\s*/i, "")
    .replace(/"?https?:\/\/([^/"\s]+)[^"\s]*"?/g, "$1")
    .replace(/\s+/g, " ")
    .trim();
  for (const secret of secrets) if (secret.length > 0) text = text.split(secret).join("[redacted]");
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
