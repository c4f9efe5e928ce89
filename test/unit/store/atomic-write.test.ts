/** Atomic file writes: the new content whole, its mode from the first byte, no temporary file left behind. */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { writeFileAtomicSync } from "../../../src/store/atomic-write.ts";

const dir = mkdtempSync(join(tmpdir(), "ruriko-atomic-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("replaces the file whole, with the mode asked for, and leaves nothing beside it", () => {
  const file = join(dir, "token");
  writeFileSync(file, "old\n");
  writeFileAtomicSync(file, "new\n", { mode: 0o600 });
  assert.equal(readFileSync(file, "utf8"), "new\n");
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), ["token"]);
});

test("a write that cannot complete leaves the old file as it was and no temporary file", () => {
  const target = join(dir, "occupied");
  mkdirSync(join(target, "inside"), { recursive: true }); // a non-empty directory cannot be renamed over
  assert.throws(() => writeFileAtomicSync(target, "x"));
  assert.deepEqual(readdirSync(dir).sort(), ["occupied", "token"]);
  assert.deepEqual(readdirSync(target), ["inside"]);
});
