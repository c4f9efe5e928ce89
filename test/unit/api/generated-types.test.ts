import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { generateTypes } from "../../../scripts/generate-types.ts";

test("the TypeScript types are generated from the current schemas (run `npm run gen:types` after editing a schema)", async () => {
  const committed = readFileSync(join(import.meta.dirname, "../../../src/api/generated/types.ts"), "utf8");
  assert.equal(committed, await generateTypes());
});
