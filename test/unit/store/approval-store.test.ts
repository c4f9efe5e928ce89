import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { MIGRATIONS } from "../../../src/store/migrations.ts";
import { openState, type StateStores } from "../../../src/store/state.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function freshState(): StateStores {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-state-"));
  dirs.push(dir);
  return openState(dir);
}

const base = {
  agent: "newsbot",
  objectKey: "Agent/newsbot",
  operation: "delete",
  fromDigest: "sha256:a",
  toDigest: "absent",
  revision: "r1",
  summary: "Agent/newsbot: not in desired state: remove",
  policy: "default",
  room: "!r:localhost",
  approvers: ["@alice:localhost", "@bob:localhost"],
  quorum: 2,
  remindAt: null,
  traceId: "t1",
};

describe("approval store (real SQLite file)", () => {
  test("an agent's open requests come oldest first, those made in the same instant in the order they were made", () => {
    const s = freshState();
    const later = new Date(Date.now() + 60_000).toISOString();
    const t0 = new Date("2026-01-01T00:00:00.000Z");
    const second = s.approvals.create({ ...base, operation: "update", toDigest: "sha256:b", expiresAt: later }, new Date(t0.getTime() + 1000));
    const first = s.approvals.create({ ...base, expiresAt: later }, t0);
    const third = s.approvals.create({ ...base, operation: "update", toDigest: "sha256:c", expiresAt: later }, new Date(t0.getTime() + 1000));
    assert.deepEqual(s.approvals.openIn({ agent: "newsbot" }).map((r) => r.id), [first.id, second.id, third.id]);
    assert.deepEqual(s.approvals.openIn({ agent: "other" }), []);
    s.close();
  });

  test("a change's requests come newest first, those made in the same instant the last made first", () => {
    const s = freshState();
    const later = new Date(Date.now() + 60_000).toISOString();
    const t0 = new Date("2026-01-01T00:00:00.000Z");
    const change = { ...base, operation: "update", toDigest: "sha256:b" };
    // One live request per change at a time: the earlier ones were denied, and still bind it.
    const deny = (id: string) => s.approvals.vote(id, { approver: "@bob:localhost", decision: "deny", source: "m" });
    const middle = s.approvals.create({ ...change, expiresAt: later }, new Date(t0.getTime() + 1000));
    deny(middle.id);
    const oldest = s.approvals.create({ ...change, expiresAt: later }, t0);
    deny(oldest.id);
    const newest = s.approvals.create({ ...change, expiresAt: later }, new Date(t0.getTime() + 1000));
    s.approvals.create({ ...base, expiresAt: later }, new Date(t0.getTime() + 2000));
    const binding = { agent: change.agent, objectKey: change.objectKey, operation: change.operation, fromDigest: change.fromDigest, toDigest: change.toDigest };
    assert.deepEqual(s.approvals.forChange(binding).map((r) => r.id), [newest.id, middle.id, oldest.id]);
    s.close();
  });

  test("a quorum of distinct listed approvers decides; duplicates and outsiders do not count", () => {
    const s = freshState();
    const r = s.approvals.create({ ...base, expiresAt: new Date(Date.now() + 60_000).toISOString() });
    assert.equal(s.approvals.vote(r.id, { approver: "@eve:localhost", decision: "approve", source: "m" }).outcome, "ignored");
    assert.equal(s.approvals.vote(r.id, { approver: "@alice:localhost", decision: "approve", source: "m" }).outcome, "recorded");
    const dup = s.approvals.vote(r.id, { approver: "@alice:localhost", decision: "approve", source: "m" });
    assert.deepEqual(dup.outcome === "ignored" && dup.reason, "duplicate");
    assert.equal(s.approvals.get(r.id)!.status, "pending");
    const decided = s.approvals.vote(r.id, { approver: "@bob:localhost", decision: "approve", source: "m" });
    assert.equal(decided.outcome, "decided");
    assert.equal(s.approvals.get(r.id)!.status, "approved");
    assert.equal(s.approvals.get(r.id)!.decidedBy, "@alice:localhost,@bob:localhost");
    // The first decision wins: a later deny changes nothing.
    const late = s.approvals.vote(r.id, { approver: "@bob:localhost", decision: "deny", source: "m" });
    assert.deepEqual(late.outcome === "ignored" && late.reason, "not-pending");
    assert.equal(s.approvals.get(r.id)!.status, "approved");
    assert.equal(s.approvals.markApplied(r.id), true);
    assert.equal(s.approvals.markApplied(r.id), false);
    s.close();
  });

  test("one deny decides at once", () => {
    const s = freshState();
    const r = s.approvals.create({ ...base, expiresAt: new Date(Date.now() + 60_000).toISOString() });
    assert.equal(s.approvals.vote(r.id, { approver: "@bob:localhost", decision: "deny", source: "m" }).outcome, "decided");
    assert.equal(s.approvals.get(r.id)!.status, "denied");
    s.close();
  });

  test("requests expire on their own, and a vote after expiry is refused", () => {
    const s = freshState();
    const r = s.approvals.create({ ...base, expiresAt: new Date(Date.now() - 1).toISOString() });
    const expired = s.approvals.expireDue();
    assert.deepEqual(expired.map((e) => e.id), [r.id]);
    assert.equal(s.approvals.get(r.id)!.status, "expired");
    assert.equal(s.approvals.vote(r.id, { approver: "@alice:localhost", decision: "approve", source: "m" }).outcome, "ignored");
    s.close();
  });

  test("retiring supersedes live requests and unblocks decided ones; nothing else moves", () => {
    const s = freshState();
    const later = new Date(Date.now() + 60_000).toISOString();
    const keep = s.approvals.create({ ...base, expiresAt: later });
    const pending = s.approvals.create({ ...base, operation: "update", toDigest: "sha256:b", expiresAt: later });
    const denied = s.approvals.create({ ...base, operation: "update", toDigest: "sha256:c", expiresAt: later });
    s.approvals.vote(denied.id, { approver: "@bob:localhost", decision: "deny", source: "m" });
    const moved = s.approvals.retire([pending.id, denied.id], "moved on");
    assert.deepEqual(moved.map((m) => m.id), [pending.id], "only a live request changes status");
    assert.equal(s.approvals.get(keep.id)!.status, "pending");
    assert.equal(s.approvals.get(pending.id)!.status, "superseded");
    assert.equal(s.approvals.get(denied.id)!.status, "denied", "a denial stays a denial");
    assert.ok(s.approvals.get(denied.id)!.retiredAt, "but it no longer blocks its change");
    assert.deepEqual(s.approvals.openIn({ agent: "newsbot" }).map((r) => r.id), [keep.id]);
    s.close();
  });

  test("a withdrawn vote no longer counts and may be cast again; after the decision nothing is withdrawn", () => {
    const s = freshState();
    const r = s.approvals.create({ ...base, expiresAt: new Date(Date.now() + 60_000).toISOString() });
    s.approvals.vote(r.id, { approver: "@alice:localhost", decision: "approve", source: "matrix:$a1" });
    assert.equal(s.approvals.withdrawVote("matrix:$other", "@alice:localhost"), undefined);
    assert.equal(s.approvals.withdrawVote("matrix:$a1", "@mallory:localhost"), undefined, "only the voter takes a vote back");
    const withdrawn = s.approvals.withdrawVote("matrix:$a1", "@alice:localhost")!;
    assert.deepEqual([withdrawn.approver, withdrawn.approvals, withdrawn.request.id], ["@alice:localhost", 0, r.id]);
    assert.equal(s.approvals.vote(r.id, { approver: "@bob:localhost", decision: "approve", source: "matrix:$b1" }).outcome, "recorded", "one of two");
    assert.equal(s.approvals.vote(r.id, { approver: "@alice:localhost", decision: "approve", source: "matrix:$a2" }).outcome, "decided");
    assert.equal(s.approvals.withdrawVote("matrix:$a2", "@alice:localhost"), undefined, "decided: the first decision stands");
    assert.equal(s.approvals.get(r.id)!.status, "approved");
    s.close();
  });

  test("an author's approval is refused; an approval gives the change its TTL again to be carried out, then it expires", () => {
    const s = freshState();
    const created = new Date("2026-01-01T00:00:00.000Z");
    const r = s.approvals.create({ ...base, quorum: 1, excluded: ["@alice:localhost"], authors: [{ name: "Alice", email: "alice@example.org" }], expiresAt: "2026-01-01T01:00:00.000Z" }, created);
    const own = s.approvals.vote(r.id, { approver: "@alice:localhost", decision: "approve", source: "m" }, new Date("2026-01-01T00:10:00.000Z"));
    assert.deepEqual(own.outcome === "ignored" && own.reason, "self-approval");
    s.approvals.vote(r.id, { approver: "@bob:localhost", decision: "approve", source: "m" }, new Date("2026-01-01T00:50:00.000Z"));
    assert.equal(s.approvals.get(r.id)!.expiresAt, "2026-01-01T01:50:00.000Z");
    assert.equal(s.approvals.nextDeadline(), Date.parse("2026-01-01T01:50:00.000Z"));
    assert.deepEqual(s.approvals.expireDue(new Date("2026-01-01T01:49:59.000Z")), []);
    const [expired] = s.approvals.expireDue(new Date("2026-01-01T01:50:00.000Z"));
    assert.deepEqual([expired!.status, expired!.decidedBy], ["expired", "@bob:localhost"]);
    assert.match(expired!.reason!, /not carried out/);
    assert.equal(s.approvals.markApplied(r.id), false, "an expired approval is never applied");
    assert.equal(s.approvals.nextDeadline(), undefined);
    s.close();
  });

  test("requests of a change exclude retired ones; open policy requests are found by kind", () => {
    const s = freshState();
    const later = new Date(Date.now() + 60_000).toISOString();
    const policy = { ...base, agent: "", objectKey: "ApprovalPolicy/yolo", operation: "create", fromDigest: "absent", toDigest: "p1" };
    const r = s.approvals.create({ ...policy, expiresAt: later });
    assert.deepEqual(s.approvals.forChange(policy).map((x) => x.id), [r.id]);
    assert.deepEqual(s.approvals.openObjectNames("ApprovalPolicy"), ["yolo"]);
    assert.deepEqual(s.approvals.openIn({ objectKey: "ApprovalPolicy/yolo" }).map((x) => x.id), [r.id]);
    s.approvals.retire([r.id], "gone");
    assert.deepEqual(s.approvals.forChange(policy), []);
    assert.deepEqual(s.approvals.openObjectNames("ApprovalPolicy"), []);
    s.close();
  });

  test("the local operator's override decides alone; ids resolve by unique prefix", () => {
    const s = freshState();
    const r = s.approvals.create({ ...base, expiresAt: new Date(Date.now() + 60_000).toISOString() });
    assert.equal(s.approvals.resolve(r.id.slice(0, 6))!.id, r.id);
    assert.equal(s.approvals.vote(r.id, { approver: "cli:root", decision: "approve", source: "cli", override: true }).outcome, "decided");
    assert.equal(s.approvals.get(r.id)!.status, "approved");
    s.close();
  });
});

describe("audit log", () => {
  test("is append-only", () => {
    const s = freshState();
    s.audit.append({ traceId: "t", actor: "controller", action: "x", target: "Agent/a", payload: {}, result: "ok" });
    assert.throws(() => s.db.prepare("UPDATE audit_log SET actor = 'mallory'").run(), /append-only/);
    assert.throws(() => s.db.prepare("DELETE FROM audit_log").run(), /append-only/);
    assert.equal(s.audit.byTrace("t").length, 1);
    s.close();
  });

  test("migrations run once; reopening keeps the instance id", () => {
    const dir = mkdtempSync(join(tmpdir(), "ruriko-state-"));
    dirs.push(dir);
    const a = openState(dir);
    const id = a.instance;
    a.close();
    const b = openState(dir);
    assert.equal(b.instance, id);
    assert.equal((b.db.prepare("SELECT COUNT(*) n FROM schema_migrations").get() as { n: number }).n, MIGRATIONS.length);
    assert.equal(b.db.pragma("journal_mode", { simple: true }), "wal");
    b.close();
  });
});
