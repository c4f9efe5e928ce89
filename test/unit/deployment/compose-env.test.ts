/**
 * compose.yaml's variables, .env.example and docs/deployment.md's table of them say the same: every `${VAR}` compose
 * reads is in .env.example (and nothing else is), a default compose falls back to is the value .env.example shows,
 * and the table names each variable.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const ROOT = join(import.meta.dirname, "../../..");
const read = (file: string) => readFileSync(join(ROOT, file), "utf8");

/** Every `${VAR}`, `${VAR:-default}`, `${VAR:?message}` in compose.yaml, with its default if any. */
function composeVariables(): Map<string, string | undefined> {
  const vars = new Map<string, string | undefined>();
  for (const [, name, op, rest] of read("compose.yaml").matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g)) {
    const fallback = op?.endsWith("-") ? rest : undefined;
    if (!vars.has(name!) || fallback !== undefined) vars.set(name!, fallback ?? vars.get(name!));
  }
  // `$VAR` without braces would be read too: none is expected (compose's `$$` is a literal dollar).
  assert.deepEqual([...read("compose.yaml").replace(/\$\$/g, "").matchAll(/\$([A-Za-z_]\w*)/g)].map((m) => m[1]), [], "compose.yaml uses ${VAR} only");
  assert.ok(vars.size > 5, "compose.yaml's variables were found");
  return vars;
}

/** `NAME=value` lines of .env.example (comments skipped). */
function envExample(): Map<string, string> {
  return new Map([...read(".env.example").matchAll(/^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/gm)].map(([, k, v]) => [k!, v!]));
}

test("every variable compose.yaml reads is in .env.example, and only those", () => {
  assert.deepEqual([...envExample().keys()].sort(), [...composeVariables().keys()].sort());
});

test("a default compose.yaml falls back to is the value .env.example shows", () => {
  const example = envExample();
  for (const [name, fallback] of composeVariables()) {
    if (fallback !== undefined) assert.equal(example.get(name), fallback, `${name}: compose.yaml's default and .env.example's value`);
  }
});

test("docs/deployment.md's configuration table names every variable", () => {
  const docs = read("docs/deployment.md");
  const table = docs.slice(docs.indexOf("`.env` holds what compose needs")).split("\n\n")[1]!;
  const named = new Set([...table.matchAll(/^\| ([^|]+) \|/gm)].flatMap(([, cell]) => [...cell!.matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]!)));
  assert.deepEqual([...composeVariables().keys()].filter((v) => !named.has(v)).sort(), []);
});
