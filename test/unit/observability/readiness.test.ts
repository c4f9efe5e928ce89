import assert from "node:assert/strict";
import { test } from "node:test";
import { NOT_READY, readiness } from "../../../src/observability/readiness.ts";

test("ready only with a working database, a snapshot seen and a revision in force; else every reason that holds", () => {
  assert.deepEqual(readiness({ storageOk: true, snapshotSeen: true, revisionInForce: true }), { ready: true, reasons: [] });
  // A first snapshot that was invalid: seen, but nothing in force.
  assert.deepEqual(readiness({ storageOk: true, snapshotSeen: true, revisionInForce: false }), { ready: false, reasons: [NOT_READY.revision] });
  // Each reason on its own, whatever serve's order of events makes possible.
  assert.deepEqual(readiness({ storageOk: true, snapshotSeen: false, revisionInForce: true }), { ready: false, reasons: [NOT_READY.snapshot] });
  assert.deepEqual(readiness({ storageOk: false, snapshotSeen: false, revisionInForce: false }), { ready: false, reasons: [NOT_READY.storage, NOT_READY.snapshot, NOT_READY.revision] });
});
