/**
 * ToolApprovals on its own: the approval room is a list of raw events handed in, posts are captured, and the
 * journal is a real file. What the journal says of each ending (who decided, why, never an approver's words),
 * and that once a vote decided, nothing after it changes the outcome.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { AcpEvent } from "../../../../src/api/generated/types.ts";
import { ToolApprovals, type ApprovalAsk, type ApprovalOutcome } from "../../../../src/gitai/approvals/tool-approvals.ts";
import { EventJournal } from "../../../../src/gitai/events/journal.ts";
import type { PostContent } from "../../../../src/gitai/approvals/request-post.ts";
import { createLogger } from "../../../../src/observability/logger.ts";

const ROOM = "!approvals:hs";
const SELF = "@agent:hs";
const BOB = "@bob:hs";
const ALICE = "@alice:hs";
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function setup(settings: { enabled: boolean } = { enabled: true }) {
  const dir = mkdtempSync(join(tmpdir(), "tool-approvals-"));
  dirs.push(dir);
  const events = new EventJournal({ file: join(dir, "events.jsonl") });
  const approvals = new ToolApprovals({ agent: "agent", file: join(dir, "pending.json"), events, secretValues: () => [], logger: createLogger({ level: "silent", pretty: false }) });
  const posts: Array<{ eventId: string; content: PostContent }> = [];
  if (settings.enabled) approvals.configure({ room: ROOM, approvers: [BOB, ALICE], ttlSeconds: 600, validForSeconds: 0 });
  const to = async (_room: string, content: PostContent) => {
    const eventId = `$post${posts.length + 1}`;
    posts.push({ eventId, content });
    return eventId;
  };
  approvals.connect({ self: SELF, roomId: ROOM, to });
  let n = 0;
  const say = (sender: string, type: string, content: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const eventId = `$e${++n}`;
    approvals.handleEvent(ROOM, { type, event_id: eventId, sender, content, ...extra });
    return eventId;
  };
  const journal = (): AcpEvent[] => events.after(0, 500).events;
  return { approvals, posts, say, journal };
}

const call: ApprovalAsk = { mcp: "wiki", tool: "create_page", rule: "post-to-wiki", args: { title: "Notes" }, askedBy: ALICE, room: "!chat:hs", traceId: "turn-1" };

/** Asks, and waits until the request is posted; the outcome and the request post's event id. */
async function asked(approvals: ToolApprovals, posts: Array<{ eventId: string }>) {
  let posted!: () => void;
  const waiting = new Promise<void>((r) => (posted = r));
  const outcome = approvals.ask({ ...call, onWaiting: () => posted() });
  await waiting;
  return { outcome, post: posts.at(-1)!.eventId };
}

describe("tool approvals: what the journal says, and what decides", () => {
  test("a deny reason is journalled as `denied` and its length; its words are in the outcome post only, not in the outcome", async () => {
    const { approvals, posts, say, journal } = setup();
    const { outcome, post } = await asked(approvals, posts);
    say(BOB, "m.room.message", { msgtype: "m.text", body: "deny not now, frozen", "m.relates_to": { "m.in_reply_to": { event_id: post } } });
    assert.deepEqual(await outcome, { decision: "denied", by: BOB, id: journal()[0]!.approval! } satisfies ApprovalOutcome);
    const rejected = journal().at(-1)!;
    assert.deepEqual([rejected.kind, rejected.sender, rejected.reason, rejected.size, rejected.traceId], ["tool.rejected", BOB, "denied", "not now, frozen".length, "turn-1"]);
    assert.ok(!JSON.stringify(journal()).includes("frozen"));
    await new Promise((r) => setImmediate(r));
    assert.ok(posts.some((p) => p.content.body.includes("(not now, frozen)")), "the approval room reads the reason");
  });

  test("the first vote decides: a ❌ and a redaction after a ✅ change nothing", async () => {
    const { approvals, posts, say, journal } = setup();
    const { outcome, post } = await asked(approvals, posts);
    const vote = say(BOB, "m.reaction", { "m.relates_to": { rel_type: "m.annotation", event_id: post, key: "✅" } });
    say(BOB, "m.room.redaction", { redacts: vote });
    say(ALICE, "m.reaction", { "m.relates_to": { rel_type: "m.annotation", event_id: post, key: "❌" } });
    assert.equal((await outcome).decision, "approved");
    assert.deepEqual(journal().map((e) => [e.kind, e.sender]), [["tool.waiting", ALICE], ["tool.approved", BOB]]);
    assert.deepEqual(approvals.pendingStates(), []);
  });

  test("`approve ID` replying to another event is no vote; `approve` replying to the request is", async () => {
    const { approvals, posts, say, journal } = setup();
    const { outcome, post } = await asked(approvals, posts);
    const id = journal()[0]!.approval!;
    const copy = say(ALICE, "m.room.message", { msgtype: "m.text", body: `Tool approval needed ${id}: …` });
    say(BOB, "m.room.message", { msgtype: "m.text", body: `approve ${id}`, "m.relates_to": { "m.in_reply_to": { event_id: copy } } });
    assert.equal(approvals.pendingStates().length, 1, "still waiting");
    say(BOB, "m.room.message", { msgtype: "m.text", body: `> <${SELF}> Tool approval needed ${id}\n\napprove`, "m.relates_to": { "m.in_reply_to": { event_id: post } } });
    assert.deepEqual(await outcome, { decision: "approved", by: BOB, id });
  });

  test("a call that cannot be asked about is rejected as unavailable, with nobody named as its decider", async () => {
    const { approvals, journal } = setup({ enabled: false });
    const outcome = await approvals.ask(call);
    assert.equal(outcome.decision, "unavailable");
    const [rejected] = journal();
    assert.deepEqual([rejected?.kind, rejected?.sender, rejected?.traceId], ["tool.rejected", undefined, "turn-1"]);
    assert.match(rejected!.reason!, /^unavailable: approvals are not enabled/);
  });
});
