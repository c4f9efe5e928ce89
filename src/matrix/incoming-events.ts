/**
 * What Ruriko reads from rooms, parsed from raw events: text messages (queries, approval replies),
 * reactions and redactions (a vote withdrawn). Pure, so live sync events and events fetched to catch up after a restart go through the same rules.
 */

export interface IncomingMessage {
  room: string;
  eventId: string;
  sender: string;
  body: string;
  /** The event this message replies to, if it is a reply. */
  inReplyTo?: string;
}

/** An m.annotation reaction: `key` (an emoji) on the event `relatesTo`. */
export interface IncomingReaction {
  room: string;
  eventId: string;
  sender: string;
  relatesTo: string;
  key: string;
}

/** A redaction of event `redacts` (a withdrawn reaction, say). */
export interface IncomingRedaction {
  room: string;
  eventId: string;
  sender: string;
  redacts: string;
}

/** The fields of a client-server event Ruriko looks at. */
export interface RawEvent {
  type?: string;
  event_id?: string;
  sender?: string;
  content?: Record<string, unknown>;
  /** The redacted event, in room versions before 11 (from 11 on it is in the content). */
  redacts?: string;
}

interface Relation {
  rel_type?: unknown;
  event_id?: unknown;
  key?: unknown;
  "m.in_reply_to"?: { event_id?: unknown };
}

/** A text message from someone other than `self`; edits are not new messages and are skipped. */
export function messageOf(room: string, event: RawEvent, self: string): IncomingMessage | undefined {
  if (event.type !== "m.room.message" || !event.sender || event.sender === self || !event.event_id) return undefined;
  const content = event.content ?? {};
  const relation = content["m.relates_to"] as Relation | undefined;
  if (typeof content.body !== "string" || relation?.rel_type === "m.replace") return undefined;
  const inReplyTo = relation?.["m.in_reply_to"]?.event_id;
  return { room, eventId: event.event_id, sender: event.sender, body: content.body, ...(typeof inReplyTo === "string" ? { inReplyTo } : {}) };
}

export function reactionOf(room: string, event: RawEvent, self: string): IncomingReaction | undefined {
  if (event.type !== "m.reaction" || !event.sender || event.sender === self || !event.event_id) return undefined;
  const relation = event.content?.["m.relates_to"] as Relation | undefined;
  if (relation?.rel_type !== "m.annotation" || typeof relation.event_id !== "string" || typeof relation.key !== "string") return undefined;
  return { room, eventId: event.event_id, sender: event.sender, relatesTo: relation.event_id, key: relation.key };
}

export function redactionOf(room: string, event: RawEvent, self: string): IncomingRedaction | undefined {
  if (event.type !== "m.room.redaction" || !event.sender || event.sender === self || !event.event_id) return undefined;
  const redacts = typeof event.content?.redacts === "string" ? event.content.redacts : event.redacts;
  return typeof redacts === "string" ? { room, eventId: event.event_id, sender: event.sender, redacts } : undefined;
}
