/** The change feed on a real SQLite file: what any process commits is heard by serve at once, with no poll. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { createLogger } from "../../../src/observability/logger.ts";
import { generateMasterKeyText } from "../../../src/secrets/crypto.ts";
import { openVault } from "../../../src/secrets/vault.ts";
import type { StateChange } from "../../../src/store/change-feed.ts";
import { openState } from "../../../src/store/state.ts";
import { StateWatcher } from "../../../src/store/state-watcher.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const newDir = () => {
  const d = mkdtempSync(join(tmpdir(), "ruriko-feed-"));
  dirs.push(d);
  return d;
};

const request = {
  agent: "newsbot",
  objectKey: "Agent/newsbot",
  operation: "delete",
  fromDigest: "sha256:a",
  toDigest: "absent",
  revision: "r1",
  summary: "Agent/newsbot: remove",
  policy: null,
  room: null,
  approvers: [],
  quorum: 1,
  remindAt: null,
  traceId: "t1",
};

describe("state change feed", () => {
  test("triggers record requests made and decided, and secret writes; nothing else", () => {
    const dir = newDir();
    const s = openState(dir);
    const vault = openVault(s, { stateDir: dir, env: { RURIKO_MASTER_KEY: generateMasterKeyText() } });
    const start = s.feed.latest();
    const r = s.approvals.create({ ...request, expiresAt: new Date(Date.now() + 60_000).toISOString() });
    s.approvals.takeDueReminders();
    s.approvals.vote(r.id, { approver: "cli:x", decision: "approve", source: "cli", override: true });
    vault.secrets.set("k", Buffer.from("v1"));
    vault.secrets.set("k", Buffer.from("v2"), "rotate");
    vault.secrets.delete("k");
    assert.deepEqual(s.feed.since(start).map((c) => [c.topic, c.key]), [["approval", r.id], ["approval", r.id], ["secret", "k"], ["secret", "k"], ["secret", "k"]]);
    s.close();
  });

  test("a decision committed by another process reaches the watcher as an event, once", async () => {
    const dir = newDir();
    const serve = openState(dir);
    const cli = openState(dir);
    const r = serve.approvals.create({ ...request, expiresAt: new Date(Date.now() + 60_000).toISOString() });
    const heard: StateChange[] = [];
    let resolve!: () => void;
    const decided = new Promise<void>((res) => (resolve = res));
    // A fallback look far beyond the test's time: only the file event can deliver this in time.
    const watcher = new StateWatcher({ dir, feed: serve.feed, log: createLogger({ level: "silent", pretty: false }), fallbackMs: 3_600_000, onChanges: (c) => {
      heard.push(...c);
      if (c.some((x) => x.key === r.id)) resolve();
    } });
    watcher.start();
    try {
      cli.approvals.vote(r.id, { approver: "cli:x", decision: "approve", source: "cli", override: true });
      await decided;
      assert.deepEqual(heard.map((c) => [c.topic, c.key]), [["approval", r.id]]);
      assert.equal(serve.approvals.get(r.id)!.status, "approved");
      watcher.check();
      assert.equal(heard.length, 1, "each change is heard once");
    } finally {
      watcher.stop();
      cli.close();
      serve.close();
    }
  });

  test("a batch whose handling failed is read again, not lost", () => {
    const dir = newDir();
    const s = openState(dir);
    const r = s.approvals.create({ ...request, expiresAt: new Date(Date.now() + 60_000).toISOString() });
    let calls = 0;
    const heard: string[] = [];
    const watcher = new StateWatcher({ dir, feed: s.feed, log: createLogger({ level: "silent", pretty: false }), fallbackMs: 3_600_000, onChanges: (c) => {
      if (calls++ === 0) throw new Error("database is locked");
      heard.push(...c.map((x) => x.key));
    } });
    watcher.start();
    try {
      s.approvals.vote(r.id, { approver: "cli:x", decision: "approve", source: "cli", override: true });
      assert.throws(() => watcher.check(), /locked/);
      watcher.check();
      assert.deepEqual(heard, [r.id]);
    } finally {
      watcher.stop();
      s.close();
    }
  });
});
