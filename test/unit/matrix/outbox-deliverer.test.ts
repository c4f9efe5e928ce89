import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { MatrixSendError } from "../../../src/matrix/matrix-connection.ts";
import { OutboxDeliverer } from "../../../src/matrix/outbox-deliverer.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import { openState } from "../../../src/store/state.ts";

test("a room that refuses messages holds up no other room, and each room keeps its order", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-deliverer-"));
  const state = openState(dir);
  const sent: Array<[string, string]> = [];
  let kickedOut = true;
  const deliverer = new OutboxDeliverer({
    outbox: state.outbox,
    // The homeserver's side of `send`: the approvals room refuses Ruriko until it is let back in.
    connection: {
      send: async (room, content) => {
        if (room === "!approvals" && kickedOut) throw new MatrixSendError(room, "M_FORBIDDEN (HTTP 403)", 403);
        sent.push([room, content.body]);
        return `$${sent.length}`;
      },
    },
    logger: createLogger({ level: "silent", pretty: false }),
    instance: "t",
    idleMs: 20,
    backoffBaseMs: 20,
    backoffMaxMs: 40,
  });
  try {
    for (const [room, body] of [["!approvals", "a1"], ["!status", "s1"], ["!approvals", "a2"], ["!status", "s2"], ["!status", "s3"]] as const) state.outbox.enqueue({ room, body, html: body, traceId: "t" });
    deliverer.start();
    const until = async (check: () => boolean) => {
      for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(check());
    };
    await until(() => sent.length === 3);
    assert.deepEqual(sent, [["!status", "s1"], ["!status", "s2"], ["!status", "s3"]], "the status room is told while the approvals room refuses");
    assert.ok(state.outbox.list().filter((m) => m.room === "!approvals" && !m.sentAt).every((m) => m.id > 0));
    assert.ok(state.outbox.list().find((m) => m.body === "a1")!.attempts >= 1, "the refused head was tried");
    kickedOut = false;
    await until(() => sent.length === 5);
    assert.deepEqual(sent.slice(3), [["!approvals", "a1"], ["!approvals", "a2"]], "then its messages, in order");
  } finally {
    await deliverer.stop();
    state.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
