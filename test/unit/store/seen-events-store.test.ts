import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { openState } from "../../../src/store/state.ts";

test("an event is acted on once, across a reopen of the database; old sightings can be forgotten", () => {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-seen-"));
  try {
    let state = openState(dir);
    const old = new Date("2026-01-01T00:00:00Z");
    assert.equal(state.seenEvents.firstSighting("$old", old), true);
    assert.equal(state.seenEvents.firstSighting("$new"), true);
    assert.equal(state.seenEvents.firstSighting("$new"), false);
    state.close();
    state = openState(dir);
    assert.equal(state.seenEvents.firstSighting("$new"), false, "a restart does not forget");
    assert.equal(state.seenEvents.prune(new Date("2026-02-01T00:00:00Z")), 1);
    assert.equal(state.seenEvents.firstSighting("$old"), true, "only the old one was forgotten");
    assert.equal(state.seenEvents.firstSighting("$new"), false);
    state.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
