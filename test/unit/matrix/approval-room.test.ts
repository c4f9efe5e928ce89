/** The approval room's rules about who decides, on a real state database: only the voter takes a vote back. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ApprovalRoom } from "../../../src/matrix/approval-room.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import { openState } from "../../../src/store/state.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const ROOM = "!approvals:hs";

function setup() {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-approval-room-"));
  dirs.push(dir);
  const state = openState(dir);
  const room = new ApprovalRoom({
    approvals: state.approvals,
    posts: state.approvalPosts,
    outbox: state.outbox,
    audit: state.audit,
    seen: state.seenEvents,
    transaction: state.transaction,
    ensureJoined: async (r) => r,
    onEnqueued: () => {},
    report: () => {},
    logger: createLogger({ level: "silent", pretty: false }),
  });
  const request = state.approvals.create({
    agent: "alpha",
    objectKey: "Agent/alpha",
    operation: "update",
    fromDigest: "a",
    toDigest: "b",
    revision: "r",
    summary: "Agent/alpha: image changed",
    policy: "default",
    room: ROOM,
    approvers: ["@alice:hs", "@bob:hs"],
    quorum: 2,
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    remindAt: null,
    traceId: "t",
  });
  const outboxId = state.outbox.enqueue({ room: ROOM, body: "Approval needed", html: "", traceId: "t" });
  state.outbox.markSent(outboxId, "$post");
  state.approvalPosts.record(request.id, ROOM, outboxId);
  return { state, room, request };
}

describe("approval room", () => {
  test("a vote is withdrawn only by its voter's redaction in the request's room", () => {
    const { state, room, request } = setup();
    room.handleReaction({ room: ROOM, eventId: "$alice-yes", sender: "@alice:hs", relatesTo: "$post", key: "✅" });
    assert.equal(state.approvals.votes(request.id).length, 1);
    room.handleRedaction({ room: ROOM, eventId: "$r1", sender: "@mallory:evil", redacts: "$alice-yes" });
    room.handleRedaction({ room: "!elsewhere:hs", eventId: "$r2", sender: "@alice:hs", redacts: "$alice-yes" });
    assert.equal(state.approvals.votes(request.id).length, 1, "a moderator's or a remote server's redaction withdraws nobody's vote");
    room.handleRedaction({ room: ROOM, eventId: "$r3", sender: "@alice:hs", redacts: "$alice-yes" });
    assert.equal(state.approvals.votes(request.id).length, 0);
    assert.ok(state.audit.forTarget(`approval/${request.id}`).some((e) => e.action === "approval.withdrawn" && e.actor === "@alice:hs"));
    state.close();
  });

  test("a text decision replying to anyone else's event never counts; naming the id replying to nothing does", () => {
    const { state, room, request } = setup();
    room.handleMessage({ room: ROOM, eventId: "$m1", sender: "@alice:hs", body: `approve ${request.id}`, inReplyTo: "$someone-elses-copy" });
    assert.equal(state.approvals.votes(request.id).length, 0);
    room.handleMessage({ room: ROOM, eventId: "$m2", sender: "@alice:hs", body: `approve ${request.id}` });
    room.handleMessage({ room: ROOM, eventId: "$m3", sender: "@bob:hs", body: "approve 0123456789ab", inReplyTo: "$post" });
    assert.deepEqual(state.approvals.votes(request.id).map((v) => v.approver), ["@alice:hs"], "a reply to the post that names another id counts for nothing");
    room.handleMessage({ room: ROOM, eventId: "$m4", sender: "@bob:hs", body: "approve", inReplyTo: "$post" });
    assert.equal(state.approvals.get(request.id)!.status, "approved");
    state.close();
  });
});
