/**
 * The agent's tool policy: whether one proposed call `(mcp, tool, args)` may run, decided by the Gosuto's
 * ordered `capabilities[]`. Pure. The first rule that matches the call — its server, its tool, and every one
 * of its constraints against the call's actual arguments — decides; a call no rule matches is denied.
 *
 * Constraints (each must hold for the rule to match):
 * - `url_prefix`: `args.url` is an absolute http(s) URL on the prefix's origin (scheme, host and port, compared
 *   exactly, so `https://example.com` never matches `https://example.com.evil.org`) whose path starts with the
 *   prefix's path. A prefix of only a scheme (`https://`) asks for that scheme and nothing else.
 * - `allowed_args`: a comma-separated list of argument names; a call carrying any other argument does not match
 *   (a fetch tool's `proxy` or `headers`, say, which would let the model send the request elsewhere or as
 *   someone else). Name every argument the call may use, the constrained ones included.
 * - any other key: `args[key]` is present and equal to the value (a missing argument fails the constraint:
 *   a tool's own default is not something the policy can see).
 *
 * Example: [{name: read-docs, mcp: fetch, tool: fetch_markdown, allow: true, constraints: {url_prefix:
 * "https://docs.example.org/"}}, {name: deny-all, allow: false}] → fetch_markdown of
 * https://docs.example.org/a runs (rule read-docs); of https://evil.example.org/ is denied (rule deny-all).
 */
import type { GosutoManifest } from "../../api/generated/types.ts";

export type Capability = NonNullable<NonNullable<GosutoManifest["spec"]>["capabilities"]>[number];

export interface ToolCall {
  mcp: string;
  tool: string;
  args: Record<string, unknown>;
}

export type PolicyDecision =
  | { decision: "allow"; rule: string }
  | { decision: "needs-approval"; rule: string }
  /** `rule` null: no rule matched, denied by default. */
  | { decision: "deny"; rule: string | null };

const matches = (pattern: string | undefined, value: string) => pattern === undefined || pattern === "*" || pattern === value;

export function evaluate(capabilities: readonly Capability[], call: ToolCall): PolicyDecision {
  for (const rule of capabilities) {
    if (!matches(rule.mcp, call.mcp) || !matches(rule.tool, call.tool)) continue;
    if (!constraintsHold(rule.constraints ?? {}, call.args)) continue;
    if (!rule.allow) return { decision: "deny", rule: rule.name };
    return rule.requireApproval ? { decision: "needs-approval", rule: rule.name } : { decision: "allow", rule: rule.name };
  }
  return { decision: "deny", rule: null };
}

/**
 * Whether some rule could let a call of this tool run, whatever its arguments: the tools offered to the model.
 * A rule denying the tool outright (no constraints) hides it from every rule after it.
 */
export function couldAllow(capabilities: readonly Capability[], mcp: string, tool: string): boolean {
  for (const rule of capabilities) {
    if (!matches(rule.mcp, mcp) || !matches(rule.tool, tool)) continue;
    if (rule.allow) return true;
    if (Object.keys(rule.constraints ?? {}).length === 0) return false;
  }
  return false;
}

function constraintsHold(constraints: Record<string, string | number | boolean | undefined>, args: Record<string, unknown>): boolean {
  return Object.entries(constraints).every(([key, wanted]) => {
    if (wanted === undefined) return true;
    if (key === "url_prefix") return typeof args.url === "string" && urlHasPrefix(args.url, String(wanted));
    if (key === "allowed_args") {
      const allowed = new Set(String(wanted).split(",").map((name) => name.trim()));
      return Object.keys(args).every((name) => allowed.has(name));
    }
    return key in args && args[key] === wanted;
  });
}

function urlHasPrefix(url: string, prefix: string): boolean {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return false;
  }
  if (target.protocol !== "http:" && target.protocol !== "https:") return false;
  const schemeOnly = /^([a-z][a-z0-9+.-]*):\/\/$/i.exec(prefix);
  if (schemeOnly) return target.protocol === `${schemeOnly[1]!.toLowerCase()}:`;
  let base: URL;
  try {
    base = new URL(prefix);
  } catch {
    return false;
  }
  return target.origin === base.origin && target.pathname.startsWith(base.pathname);
}
