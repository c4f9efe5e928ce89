/**
 * How something said in an approval room becomes a vote, for every approval whoever asks: Ruriko's gate for
 * parked changes (matrix/approval-room.ts) and Gitai's tool-call approvals (gitai/approvals/). Pure: each caller
 * looks its own request posts up, and judges the vote with approvals/votes.ts.
 *
 * - A reaction counts only on the asker's own request post, in the room it was posted to: ✅ 👍 approve, ❌ 👎 deny.
 * - A text decision is a reply to that post (`approve`, `deny REASON`), or `approve ID` / `deny ID REASON` replying
 *   to nothing. A reply to anyone else's event (a copy of a request, say) never decides, whatever id it names.
 * - A redaction withdraws a vote only when the voter redacts their own vote.
 */
import type { IncomingMessage, IncomingReaction, IncomingRedaction } from "../matrix/incoming-events.ts";
import type { Decision } from "./votes.ts";

/** A request as posted: which request, in which room, as which event. */
export interface RequestPost {
  requestId: string;
  room: string;
  eventId: string;
}

export interface RequestPosts {
  /** The request post that is this event, if any. */
  byEventId(eventId: string): RequestPost | undefined;
  /** The request an id (or an unambiguous prefix of one) names, if it was posted. */
  byRequestId(idOrPrefix: string): RequestPost | undefined;
}

export interface ChatVote {
  requestId: string;
  voter: string;
  decision: Decision;
  reason?: string;
  /** The event that carried the vote: a redaction of it withdraws the vote. */
  eventId: string;
  room: string;
}

/** ✅ 👍 approve, ❌ deny; compared by first code point, so 👍️ (with a variation selector) counts. */
export function decisionOfReaction(key: string): Decision | undefined {
  const first = String.fromCodePoint(key.codePointAt(0) ?? 0);
  if (first === "✅" || first === "👍" || first === "✔") return "approve";
  if (first === "❌" || first === "👎") return "deny";
  return undefined;
}

/**
 * `approve 3f2a…` / `deny 3f2a… too risky` → the decision. A reply to a request post (`repliedTo` is its
 * request id) may leave the id out: `approve`, `deny too risky`. Anything else → undefined.
 */
export function decisionOfReply(body: string, repliedTo?: string): { decision: Decision; id: string; reason?: string } | undefined {
  // A reply may quote the message it answers ("> <@ruriko…> …"): only the reply's own text counts.
  const text = body
    .split("\n")
    .filter((l) => !l.startsWith(">"))
    .join(" ")
    .trim();
  const match = /^(approve|deny)\b\s*(.*)$/is.exec(text);
  if (!match) return undefined;
  const decision = match[1]!.toLowerCase() as Decision;
  const words = match[2]!.trim();
  const [first = "", ...others] = words.split(/\s+/);
  const firstIsId = /^[0-9a-f]{4,32}$/i.test(first);
  if (repliedTo === undefined) return firstIsId ? { decision, id: first.toLowerCase(), ...(others.length > 0 ? { reason: others.join(" ") } : {}) } : undefined;
  // A reply to a request's post decides that request; naming another request's full id in it is a
  // contradiction, and nothing counts. A shorter hex-looking word that is not this id is part of the reason.
  const named = firstIsId && repliedTo.startsWith(first.toLowerCase());
  if (!named && /^[0-9a-f]{12}$/i.test(first)) return undefined;
  const reason = named ? others.join(" ") : words;
  return { decision, id: repliedTo, ...(reason ? { reason } : {}) };
}

export function voteOfReaction(reaction: IncomingReaction, posts: RequestPosts): ChatVote | undefined {
  const post = posts.byEventId(reaction.relatesTo);
  if (!post || post.room !== reaction.room) return undefined;
  const decision = decisionOfReaction(reaction.key);
  return decision ? { requestId: post.requestId, voter: reaction.sender, decision, eventId: reaction.eventId, room: reaction.room } : undefined;
}

export function voteOfMessage(message: IncomingMessage, posts: RequestPosts): ChatVote | undefined {
  const replied = message.inReplyTo ? posts.byEventId(message.inReplyTo) : undefined;
  if (message.inReplyTo && !replied) return undefined;
  const reply = decisionOfReply(message.body, replied?.requestId);
  const post = reply && posts.byRequestId(reply.id);
  if (!reply || !post || post.room !== message.room) return undefined;
  return { requestId: post.requestId, voter: message.sender, decision: reply.decision, ...(reply.reason ? { reason: reply.reason } : {}), eventId: message.eventId, room: message.room };
}

/** The vote a redaction withdraws: only the voter's own, in the room of its request. */
export function withdrawalOf(redaction: IncomingRedaction, voteByEvent: (eventId: string) => { voter: string; room: string } | undefined): string | undefined {
  const vote = voteByEvent(redaction.redacts);
  return vote && vote.voter === redaction.sender && vote.room === redaction.room ? redaction.redacts : undefined;
}
