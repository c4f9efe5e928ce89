/**
 * The agent on Matrix: it syncs as the identity Ruriko delivered and serves only its Gosuto's trusted rooms
 * (`trust.allowedRooms` and `trust.adminRoom`). A message reaches the model only when its room is served and its
 * sender is in `trust.allowedSenders`; everything else is counted and never answered. Answers are replies to the
 * message that asked, in the asking room, within `messaging.maxMessagesPerMinute` (beforeSend), with a typing
 * notice while a turn takes longer than a moment. One turn at a time per room, in order.
 *
 * The Gosuto's approval room, when it has one, is joined too but never served: its events go to the tool approvals
 * (votes on the agent's requests), never to the model. So are the rooms of `messaging.allowedTargets` that are not
 * trusted: the agent may post there (a schedule's result), and reads nothing said there.
 *
 * It has no end-to-end encryption: with `trust.requireE2EE` it serves no room and says why (fail closed), and an
 * encrypted room is never served (it could not read it). A homeserver that goes away is retried with backoff; a
 * refused token stops the loop until Ruriko delivers a new one (a new Conversation).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { GosutoManifest } from "../../api/generated/types.ts";
import type { Logger } from "../../observability/logger.ts";
import { messageOf } from "../../matrix/incoming-events.ts";
import { backoffDelay } from "../../time/backoff.ts";
import { MatrixApiError, MatrixClient, type MatrixIdentity, type RawEvent, type SyncResponse } from "./client.ts";

export type Trust = NonNullable<NonNullable<GosutoManifest["spec"]>["trust"]>;
export type Messaging = NonNullable<NonNullable<GosutoManifest["spec"]>["messaging"]>;

export interface IncomingChat {
  room: string;
  eventId: string;
  sender: string;
  body: string;
}

export type ConversationState = "connecting" | "connected" | "disconnected" | "refused";

export interface ConversationStatus {
  state: ConversationState;
  userId: string;
  /** Rooms served (by id). */
  rooms: string[];
  /** Rooms trusted but not served, and why. */
  refused: Array<{ room: string; reason: string }>;
  lastError: string | null;
}

export interface ConversationOptions {
  identity: MatrixIdentity;
  trust: Trust;
  messaging: Messaging | undefined;
  /** Answers a message (undefined: nothing to say). Called one at a time per room. */
  answer: (chat: IncomingChat) => Promise<string | undefined>;
  /** `unanswered`: allowed, but the agent had nothing to say (it has no model). */
  onIgnored: (why: "room" | "sender" | "encrypted" | "unanswered", chat: IncomingChat) => void;
  /** The approval room (as the Gosuto names it): joined, watched, never served. */
  approvalRoom?: string;
  /** The approval room was joined (its id), or left behind (undefined). */
  onApprovalRoom?: (roomId: string | undefined) => void;
  /** Each event said in the approval room. */
  onApprovalEvent?: (roomId: string, event: RawEvent) => void;
  onAnswered: () => void;
  /** The answer to `chat` is about to go out: when it may (messaging.maxMessagesPerMinute); undefined: now. */
  beforeSend: (chat: IncomingChat) => Promise<number | undefined>;
  logger: Logger;
  /** Long-poll length. */
  syncTimeoutMs?: number;
}

const RETRY = { baseMs: 1000, maxMs: 60_000, jitter: 0.2 };
const RETRY_JOIN_MS = 30_000;
const TYPING_AFTER_MS = 1000;
const TYPING_REFRESH_MS = 20_000;

export class Conversation {
  private readonly o: ConversationOptions;
  private readonly client: MatrixClient;
  private readonly abort = new AbortController();
  private readonly served = new Set<string>();
  /** Trusted rooms (as the Gosuto names them) not joined yet: tried again on an invite, and every RETRY_JOIN_MS. */
  private readonly unjoined = new Set<string>();
  private retryJoinAt = 0;
  /** Rooms the agent was seen in, served or not: a new one may be a trusted room someone joined it to. */
  private readonly seenJoined = new Set<string>();
  private readonly refused = new Map<string, string>();
  private approvalRoomId: string | undefined;
  /** Every room joined, as the Gosuto writes it (an id or an alias) → its id. */
  private readonly joinedAs = new Map<string, string>();
  private trusted = new Set<string>();
  private readonly encrypted = new Set<string>();
  private readonly queues = new Map<string, Promise<void>>();
  private state: ConversationState = "connecting";
  private lastError: string | null = null;
  private anyRoom = false;
  private stopped = false;

  constructor(options: ConversationOptions) {
    this.o = options;
    this.client = new MatrixClient(options.identity);
  }

  start(): void {
    if (this.o.trust.requireE2EE) {
      this.state = "refused";
      this.lastError = "trust.requireE2EE is set and this agent has no end-to-end encryption: it serves no room";
      this.o.logger.warn({ userId: this.client.userId }, this.lastError);
      return;
    }
    void this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.approvalRoomId) this.o.onApprovalRoom?.(undefined);
    await Promise.allSettled([...this.queues.values()]);
  }

  /**
   * Posts as the agent, outside the answer queue and its rate cap: approval requests and their outcomes, and
   * notices to an asker (a call waits for approval, a limit was reached). Each such notice is bounded by its cause.
   */
  async post(room: string, content: Record<string, unknown>): Promise<string> {
    return this.client.send(room, content);
  }

  /** The room id of one of `messaging.allowedTargets` (as the Gosuto writes it), once joined; undefined otherwise. */
  targetRoom(target: string): string | undefined {
    const entry = (this.o.messaging?.allowedTargets ?? []).find((t) => t.roomId === target || t.alias === target);
    const joinedAs = entry?.roomId ?? entry?.alias;
    return joinedAs ? this.joinedAs.get(joinedAs) : undefined;
  }

  /** Whether the agent serves this room (by id): where it may tell an asker something. */
  serves(room: string): boolean {
    return room !== this.approvalRoomId && !this.encrypted.has(room) && (this.anyRoom || this.served.has(room));
  }

  status(): ConversationStatus {
    return {
      state: this.state,
      userId: this.client.userId,
      rooms: [...this.served].filter((r) => !this.encrypted.has(r)).sort(),
      refused: [...this.refused].map(([room, reason]) => ({ room, reason })).sort((a, b) => a.room.localeCompare(b.room)),
      lastError: this.lastError,
    };
  }

  private async run(): Promise<void> {
    const trusted = [...(this.o.trust.allowedRooms ?? []), ...(this.o.trust.adminRoom ? [this.o.trust.adminRoom] : [])];
    this.anyRoom = trusted.includes("*");
    this.trusted = new Set(trusted.filter((r) => r !== "*"));
    for (const room of this.trusted) this.unjoined.add(room);
    if (this.o.approvalRoom) this.unjoined.add(this.o.approvalRoom);
    for (const room of targetsOf(this.o.messaging)) this.unjoined.add(room);
    await this.joinTrustedRooms();
    let since: string | undefined;
    let failures = 0;
    while (!this.stopped) {
      try {
        const response = await this.client.sync(since, this.o.syncTimeoutMs ?? 30_000, this.abort.signal);
        // The first answer is the rooms as they are: their history was said to someone else, before this agent listened.
        if (since !== undefined) this.handle(response);
        else this.noteEncryption(response);
        await this.joinInvitedRooms(response);
        since = response.next_batch;
        failures = 0;
        this.set("connected", null);
      } catch (error) {
        if (this.stopped) return;
        const reason = error instanceof MatrixApiError ? error.message : String(error);
        if (error instanceof MatrixApiError && error.tokenRefused) {
          this.set("disconnected", "the access token was refused; waiting for Ruriko to deliver a new one");
          this.o.logger.warn({ userId: this.client.userId }, "Matrix token refused: the agent stops listening until a new one arrives");
          return;
        }
        failures++;
        this.set("disconnected", reason);
        if (failures === 1) this.o.logger.warn({ err: reason }, "the homeserver does not answer; retrying with backoff");
        await new Promise((r) => setTimeout(r, backoffDelay(failures, RETRY)));
      }
    }
  }

  /**
   * Joins the trusted rooms not joined yet (an alias is resolved when joined); `*` serves any room the agent is
   * in. One it cannot join yet (not invited yet, say) is said in the status and tried again later.
   */
  private async joinTrustedRooms(): Promise<void> {
    this.retryJoinAt = Date.now() + RETRY_JOIN_MS;
    for (const room of [...this.unjoined]) {
      try {
        const id = await this.client.join(room.startsWith("#") ? await this.client.resolveAlias(room) : room);
        this.joinedAs.set(room, id);
        if (this.trusted.has(room)) this.served.add(id);
        if (room === this.o.approvalRoom) {
          this.approvalRoomId = id;
          this.o.onApprovalRoom?.(id);
        }
        this.unjoined.delete(room);
        this.refused.delete(room);
      } catch (error) {
        if (this.stopped) return;
        if (this.refused.get(room) === undefined) this.o.logger.warn({ room, err: (error as Error).message }, "cannot join a trusted room yet; trying again on an invite and periodically");
        this.refused.set(room, `cannot join: ${(error as Error).message}`);
      }
    }
  }

  /** An invite to a trusted room, or a join made for the agent, is what a room waited for: join (or note) it now. */
  private async joinInvitedRooms(response: SyncResponse): Promise<void> {
    const invited = Object.keys(response.rooms?.invite ?? {});
    if (this.anyRoom) {
      for (const room of invited) {
        try {
          const id = await this.client.join(room);
          if (id !== this.approvalRoomId) this.served.add(id);
        } catch (error) {
          this.refused.set(room, `cannot join: ${(error as Error).message}`);
        }
      }
    }
    // Joined by someone else (Ruriko joins the accounts it provisions): a room not served yet may be one it waited for.
    let joinedElsewhere = false;
    for (const room of Object.keys(response.rooms?.join ?? {})) {
      if (this.served.has(room) || this.seenJoined.has(room)) continue;
      this.seenJoined.add(room);
      joinedElsewhere = true;
    }
    if (this.unjoined.size > 0 && (invited.length > 0 || joinedElsewhere || Date.now() >= this.retryJoinAt)) await this.joinTrustedRooms();
  }

  private noteEncryption(response: SyncResponse): void {
    for (const [room, joined] of Object.entries(response.rooms?.join ?? {})) {
      if (this.anyRoom && room !== this.approvalRoomId) this.served.add(room);
      const events = [...(joined.state?.events ?? []), ...(joined.timeline?.events ?? [])];
      if (events.some((e) => e.type === "m.room.encryption")) this.markEncrypted(room);
    }
  }

  private markEncrypted(room: string): void {
    if (this.encrypted.has(room)) return;
    this.encrypted.add(room);
    this.refused.set(room, "end-to-end encrypted: this agent cannot read it");
  }

  private handle(response: SyncResponse): void {
    this.noteEncryption(response);
    for (const [room, joined] of Object.entries(response.rooms?.join ?? {})) {
      if (room === this.approvalRoomId) {
        // Decisions on the agent's requests; nothing said here reaches the model.
        for (const event of joined.timeline?.events ?? []) this.o.onApprovalEvent?.(room, event);
        continue;
      }
      for (const event of joined.timeline?.events ?? []) {
        const chat = chatOf(room, event, this.client.userId);
        if (!chat) continue;
        if (this.encrypted.has(room)) this.o.onIgnored("encrypted", chat);
        else if (!this.anyRoom && !this.served.has(room)) this.o.onIgnored("room", chat);
        else if (!senderAllowed(this.o.trust.allowedSenders ?? [], chat.sender)) this.o.onIgnored("sender", chat);
        else this.enqueue(chat);
      }
    }
  }

  private enqueue(chat: IncomingChat): void {
    const previous = this.queues.get(chat.room) ?? Promise.resolve();
    const next = previous.then(() => this.serve(chat)).catch((error: unknown) => this.o.logger.warn({ room: chat.room, err: (error as Error).message }, "could not answer a message"));
    this.queues.set(chat.room, next);
  }

  private async serve(chat: IncomingChat): Promise<void> {
    if (this.stopped) return;
    const typing = this.typingNotice(chat.room);
    try {
      // Said no more once the answer is ready, even while it waits for a slot under the message cap.
      const answer = await this.o.answer(chat).finally(() => typing.stopRefreshing());
      if (this.stopped) return;
      if (!answer) return this.o.onIgnored("unanswered", chat);
      const at = await this.o.beforeSend(chat);
      if (at !== undefined) await sleep(Math.max(0, at - Date.now()), undefined, { signal: this.abort.signal }).catch(() => undefined);
      if (this.stopped) return;
      await this.client.send(chat.room, { msgtype: "m.text", body: answer, "m.relates_to": { "m.in_reply_to": { event_id: chat.eventId } } });
      this.o.onAnswered();
    } finally {
      typing.withdraw();
    }
  }

  /**
   * "Typing…" while a turn goes on, once it has taken TYPING_AFTER_MS: an answer quicker than that needs no notice,
   * and every notice wakes the sync of every member of the room at the homeserver, which then has that to do just
   * as the answer is on its way. Never waited for: the answer does not wait on it. A notice lasts 30 s, so it is
   * said again while a long turn (slow model, slow tools) goes on, and withdrawn once the answer is out.
   */
  private typingNotice(room: string): { stopRefreshing(): void; withdraw(): void } {
    const say = (typing: boolean) => void this.client.typing(room, typing).catch(() => {});
    let said = false;
    let timer: NodeJS.Timeout | undefined;
    const sayAgain = () => {
      said = true;
      say(true);
      timer = setTimeout(sayAgain, TYPING_REFRESH_MS);
    };
    timer = setTimeout(sayAgain, TYPING_AFTER_MS);
    return {
      stopRefreshing: () => clearTimeout(timer),
      withdraw: () => {
        clearTimeout(timer);
        if (said) say(false);
      },
    };
  }

  private set(state: ConversationState, lastError: string | null): void {
    this.state = state;
    this.lastError = lastError;
  }
}

/** The rooms the agent may post to besides where it is asked, as written: each target's id, or else its alias. */
const targetsOf = (messaging: Messaging | undefined): string[] => (messaging?.allowedTargets ?? []).flatMap((t) => (t.roomId ? [t.roomId] : t.alias ? [t.alias] : []));

export const senderAllowed = (allowed: readonly string[], sender: string) => allowed.includes("*") || allowed.includes(sender);

/** A text message from someone else (edits are not new messages), as the agent is asked it. */
export function chatOf(room: string, event: RawEvent, self: string): IncomingChat | undefined {
  const message = messageOf(room, event, self);
  if (!message) return undefined;
  // A reply carries a quote of what it answers ("> <@x> …"): the question is the reply's own text.
  const body = message.inReplyTo ? message.body.split("\n").filter((l) => !l.startsWith(">")).join("\n").trim() : message.body;
  return { room, eventId: message.eventId, sender: message.sender, body };
}
