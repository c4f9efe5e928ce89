/** docs/operations.md's `/readyz` row names every reason serve can give for not being ready, and no other. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { NOT_READY } from "../../../src/observability/readiness.ts";

test("the /readyz reasons in docs/operations.md are those serve gives", () => {
  const docs = readFileSync(join(import.meta.dirname, "../../../docs/operations.md"), "utf8");
  const row = /^\| `GET \/readyz` \|(.*)\|$/m.exec(docs)?.[1];
  assert.ok(row, "docs/operations.md has a /readyz row");
  // The backticked phrases of the row, but the JSON bodies: the reasons.
  const documented = [...row.matchAll(/`([^`]+)`/g)].map((m) => m[1]!).filter((t) => !t.startsWith("{") && !t.startsWith("/"));
  assert.deepEqual(documented.sort(), Object.values(NOT_READY).sort());
});
