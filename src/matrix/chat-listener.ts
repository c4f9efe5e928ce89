/**
 * Answers `/ruriko …` queries in chat: only in the configured rooms, only for allowed senders, each event
 * once (its id is recorded before answering, so a restart never answers it again). Answers go through the
 * outbox like every other message. Read-only by construction: the queries see state, never change it.
 *
 * Everyone is rate-limited: a sender who may not ask gets one refusal per 10 minutes; one who may, up to
 * `queriesPerMinute` answers in any minute, then one notice saying when the next is answered, then silence
 * until there is room again — an operator's script in a loop cannot flood the room or the homeserver.
 */
import { newTraceId, type Logger } from "../observability/logger.ts";
import type { OutboxStore } from "../store/outbox-store.ts";
import type { SeenEventsStore } from "../store/seen-events-store.ts";
import { Fill, SlidingWindow } from "../time/sliding-window.ts";
import type { IncomingMessage } from "./incoming-events.ts";
import { answerQuery, parseQuery, type QuerySources } from "./queries.ts";

export interface ChatListenerOptions {
  sources: QuerySources;
  /** Ids of the rooms where queries are answered (re-read on every message: policies may name new rooms). */
  rooms: () => Promise<ReadonlySet<string>>;
  /** Who may ask. */
  senders: () => ReadonlySet<string>;
  outbox: OutboxStore;
  seen: SeenEventsStore;
  onEnqueued: () => void;
  logger: Logger;
  /** One refusal per sender per this long; anything more from them is ignored. */
  refusalEveryMs?: number;
  /** Answers per allowed sender in any minute. */
  queriesPerMinute?: number;
  now?: () => number;
}

export class ChatListener {
  private readonly o: Required<ChatListenerOptions>;
  private readonly refused = new Map<string, number>();
  private readonly answered = new Map<string, { window: SlidingWindow; fill: Fill }>();

  constructor(options: ChatListenerOptions) {
    this.o = { refusalEveryMs: 10 * 60_000, queriesPerMinute: 20, now: () => Date.now(), ...options };
  }

  async handle(message: IncomingMessage): Promise<void> {
    if (!parseQuery(message.body) || !(await this.o.rooms()).has(message.room)) return;
    if (!this.o.seen.firstSighting(message.eventId)) return;
    const traceId = newTraceId();
    const log = this.o.logger.child({ traceId, room: message.room, sender: message.sender, eventId: message.eventId });
    if (!this.o.senders().has(message.sender)) {
      const last = this.refused.get(message.sender);
      if (last !== undefined && this.o.now() - last < this.o.refusalEveryMs) return;
      this.refused.set(message.sender, this.o.now());
      log.info("query refused: sender not allowed");
      this.reply(message.room, { body: `${message.sender}: you are not allowed to query Ruriko here.`, html: `you are not allowed to query Ruriko here.` }, traceId);
      return;
    }
    if (!this.admitted(message.sender, message.room, traceId)) {
      log.info("query not answered: the sender's rate limit is reached");
      return;
    }
    const answer = await answerQuery(this.o.sources, message.body);
    if (!answer) return;
    log.info({ query: message.body.slice(0, 100) }, "query answered");
    this.reply(message.room, answer, traceId);
  }

  /** Whether this sender may have one more answer now; the first refusal of a full stretch says when. */
  private admitted(sender: string, room: string, traceId: string): boolean {
    const now = this.o.now();
    const cap = this.o.queriesPerMinute;
    let counted = this.answered.get(sender);
    if (!counted) this.answered.set(sender, (counted = { window: new SlidingWindow(), fill: new Fill() }));
    const at = counted.window.nextRoom(now, cap);
    if (at <= now) {
      counted.window.add(now, now);
      counted.fill.hasRoom();
      return true;
    }
    if (counted.fill.refused(now)) {
      const next = new Date(at).toISOString().slice(11, 19);
      this.reply(room, { body: `${sender}: at most ${cap} queries a minute; the next is answered from ${next} UTC.`, html: `at most ${cap} queries a minute; the next is answered from ${next} UTC.` }, traceId);
    }
    return false;
  }

  private reply(room: string, answer: { body: string; html: string }, traceId: string): void {
    this.o.outbox.enqueue({ room, body: answer.body, html: answer.html, traceId });
    this.o.onEnqueued();
  }
}
