import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decisionOfReaction, decisionOfReply } from "../../../src/approvals/chat-decisions.ts";
import { annotatedRequest, APPROVAL_KEY, outcomeReply, requestMessage } from "../../../src/matrix/approval-messages.ts";
import { messageOf, reactionOf, redactionOf } from "../../../src/matrix/incoming-events.ts";
import type { ApprovalRequest } from "../../../src/store/approval-store.ts";

const request: ApprovalRequest = {
  id: "3f2a9c01",
  agent: "alpha",
  objectKey: "Agent/alpha",
  operation: "update",
  fromDigest: "sha256:aa",
  toDigest: "sha256:bb",
  revision: "abc123",
  summary: "Agent/alpha: image changed a:1 → a:<2>",
  policy: "default",
  room: "!r:localhost",
  approvers: ["@alice:localhost", "@bob:localhost"],
  quorum: 2,
  status: "pending",
  createdAt: "2026-11-25T10:00:00.000Z",
  expiresAt: "2026-11-26T10:00:00.000Z",
  remindAt: null,
  decidedAt: null,
  decidedBy: null,
  reason: null,
  traceId: "t1",
  requirementDigest: "sha256:req",
  sourceDigest: "sha256:src",
  authors: [],
  excluded: [],
  retiredAt: null,
};

describe("approval messages", () => {
  test("a request says what changes, who decides, how many and until when, and carries the namespaced key", () => {
    const m = requestMessage(request);
    assert.match(m.body, /^Approval needed 3f2a9c01: Agent\/alpha: image changed a:1 → a:<2>$/m);
    assert.match(m.body, /Approvers: @alice:localhost, @bob:localhost; 2 needed; expires 2026-11-26T10:00:00.000Z/);
    assert.match(m.html, /a:&lt;2&gt;/, "HTML is escaped");
    assert.deepEqual(m.extra[APPROVAL_KEY], { id: "3f2a9c01", object: "Agent/alpha", operation: "update", from: "sha256:aa", to: "sha256:bb", revision: "abc123", status: "pending" });
  });

  test("the outcome edits the request post and replies to it", () => {
    const decided = { ...request, status: "denied" as const, decidedBy: "@bob:localhost", reason: "later" };
    const edit = annotatedRequest(decided, "$post", "Approval 3f2a9c01 denied by @bob:localhost (later)");
    assert.deepEqual(edit.extra["m.relates_to"], { rel_type: "m.replace", event_id: "$post" });
    const newContent = edit.extra["m.new_content"] as { body: string; [APPROVAL_KEY]: { status: string } };
    assert.match(newContent.body, /^\[DENIED\] Approval 3f2a9c01/);
    assert.equal(newContent[APPROVAL_KEY].status, "denied");
    assert.match(edit.body, /^\* \[DENIED\]/, "clients without edits see a starred fallback");
    assert.deepEqual(outcomeReply(decided, "$post", "x").extra["m.relates_to"], { "m.in_reply_to": { event_id: "$post" } });
  });

  test("reactions: ✅ 👍 ✔ (with or without variation selectors and skin tones) approve, ❌ 👎 deny, others nothing", () => {
    for (const key of ["✅", "👍", "👍️", "👍🏽", "✔️"]) assert.equal(decisionOfReaction(key), "approve", key);
    for (const key of ["❌", "👎", "👎🏻"]) assert.equal(decisionOfReaction(key), "deny", key);
    for (const key of ["", "🎉", "ok", "a✅"]) assert.equal(decisionOfReaction(key), undefined, key);
  });

  test("replies: with an id anywhere; without one only as a reply to the request post", () => {
    assert.deepEqual(decisionOfReply("approve 3f2a"), { decision: "approve", id: "3f2a" });
    assert.deepEqual(decisionOfReply("Deny 3F2A9C01 not on a Friday"), { decision: "deny", id: "3f2a9c01", reason: "not on a Friday" });
    assert.equal(decisionOfReply("approve"), undefined, "no id and not a reply");
    assert.equal(decisionOfReply("deny too risky"), undefined);
    assert.equal(decisionOfReply("I approve 3f2a"), undefined, "the verb comes first");
    assert.equal(decisionOfReply("approved 3f2a"), undefined);
    assert.deepEqual(decisionOfReply("approve", "3f2a9c01"), { decision: "approve", id: "3f2a9c01" });
    assert.deepEqual(decisionOfReply("deny dead code", "3f2a9c01"), { decision: "deny", id: "3f2a9c01", reason: "dead code" }, "a hex-looking word is a reason unless it is this request's id");
    assert.deepEqual(decisionOfReply("> <@ruriko:localhost> Approval needed 3f2a9c01\n\ndeny 3f2a too late", "3f2a9c01"), { decision: "deny", id: "3f2a9c01", reason: "too late" }, "the quoted fallback is ignored");
    assert.equal(decisionOfReply("approve 0123456789ab", "3f2a9c01d2e4"), undefined, "a reply to one request naming another's id decides nothing");
  });
});

describe("incoming events", () => {
  const self = "@ruriko:localhost";
  test("messages: own events, edits and non-text skipped; replies keep what they answer", () => {
    const base = { type: "m.room.message", event_id: "$1", sender: "@alice:localhost" };
    assert.deepEqual(messageOf("!r", { ...base, content: { msgtype: "m.text", body: "hi" } }, self), { room: "!r", eventId: "$1", sender: "@alice:localhost", body: "hi" });
    assert.equal(messageOf("!r", { ...base, sender: self, content: { body: "hi" } }, self), undefined);
    assert.equal(messageOf("!r", { ...base, content: { body: "* approve", "m.relates_to": { rel_type: "m.replace", event_id: "$0" } } }, self), undefined);
    assert.equal(messageOf("!r", { ...base, content: { msgtype: "m.image" } }, self), undefined);
    assert.equal(messageOf("!r", { ...base, content: { body: "approve", "m.relates_to": { "m.in_reply_to": { event_id: "$post" } } } }, self)?.inReplyTo, "$post");
  });

  test("reactions: only annotations, not own", () => {
    const e = { type: "m.reaction", event_id: "$2", sender: "@bob:localhost", content: { "m.relates_to": { rel_type: "m.annotation", event_id: "$post", key: "✅" } } };
    assert.deepEqual(reactionOf("!r", e, self), { room: "!r", eventId: "$2", sender: "@bob:localhost", relatesTo: "$post", key: "✅" });
    assert.equal(reactionOf("!r", { ...e, sender: self }, self), undefined);
    assert.equal(reactionOf("!r", { ...e, content: { "m.relates_to": { rel_type: "m.reference", event_id: "$post", key: "✅" } } }, self), undefined);
    assert.equal(reactionOf("!r", { ...e, type: "m.room.message" }, self), undefined);
  });
});

describe("redactions", () => {
  test("a redaction names the event it takes back, in any room version; Ruriko's own are skipped", () => {
    assert.deepEqual(redactionOf("!r", { type: "m.room.redaction", event_id: "$x", sender: "@a:hs", redacts: "$vote" }, "@ruriko:hs"), { room: "!r", eventId: "$x", sender: "@a:hs", redacts: "$vote" });
    assert.deepEqual(redactionOf("!r", { type: "m.room.redaction", event_id: "$y", sender: "@a:hs", content: { redacts: "$vote" } }, "@ruriko:hs")?.redacts, "$vote", "room version 11 puts it in the content");
    assert.equal(redactionOf("!r", { type: "m.room.redaction", event_id: "$z", sender: "@ruriko:hs", redacts: "$v" }, "@ruriko:hs"), undefined);
    assert.equal(redactionOf("!r", { type: "m.reaction", event_id: "$w", sender: "@a:hs" }, "@ruriko:hs"), undefined);
  });
});
