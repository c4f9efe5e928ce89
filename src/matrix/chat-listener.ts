/**
 * Answers `/ruriko …` queries in chat: only in the configured rooms, only for allowed senders, each event
 * once (its id is recorded before answering, so a restart never answers it again). Answers go through the
 * outbox like every other message. Read-only by construction: the queries see state, never change it.
 */
import { newTraceId, type Logger } from "../observability/logger.ts";
import type { OutboxStore } from "../store/outbox-store.ts";
import type { SeenEventsStore } from "../store/seen-events-store.ts";
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
  now?: () => number;
}

export class ChatListener {
  private readonly o: Required<ChatListenerOptions>;
  private readonly refused = new Map<string, number>();

  constructor(options: ChatListenerOptions) {
    this.o = { refusalEveryMs: 10 * 60_000, now: () => Date.now(), ...options };
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
    const answer = await answerQuery(this.o.sources, message.body);
    if (!answer) return;
    log.info({ query: message.body.slice(0, 100) }, "query answered");
    this.reply(message.room, answer, traceId);
  }

  private reply(room: string, answer: { body: string; html: string }, traceId: string): void {
    this.o.outbox.enqueue({ room, body: answer.body, html: answer.html, traceId });
    this.o.onEnqueued();
  }
}
