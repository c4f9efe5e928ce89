/**
 * Approvals over Matrix. Parked changes are posted to their policy's room; approvers decide with a reaction
 * on that post or by text, as approvals/chat-decisions.ts reads them (the rules Gitai's tool approvals share);
 * a redacted reaction withdraws its vote while the request is pending. Whose vote counts, and what it decides,
 * is approvals/votes.ts's judgement inside the store's compare-and-set, so the first decision wins and later
 * reactions change nothing. Outcomes, reminders, expiries
 * and supersessions are posted back to the room and told in the status room.
 */
import type { Logger } from "../observability/logger.ts";
import type { ApprovalPostStore } from "../store/approval-post-store.ts";
import type { ApprovalStore } from "../store/approval-store.ts";
import type { AuditLog } from "../store/audit-log.ts";
import type { OutboxStore } from "../store/outbox-store.ts";
import type { SeenEventsStore } from "../store/seen-events-store.ts";
import { voteOfMessage, voteOfReaction, withdrawalOf, type ChatVote, type RequestPost, type RequestPosts } from "../approvals/chat-decisions.ts";
import { annotatedRequest, outcomeMessage, outcomeReply, reminderMessage, requestMessage, type PostContent } from "./approval-messages.ts";
import { BackoffTracker } from "../time/backoff.ts";
import { messageOf, reactionOf, redactionOf, type IncomingMessage, type IncomingReaction, type IncomingRedaction, type RawEvent } from "./incoming-events.ts";
import { escapeHtml } from "./html.ts";
import type { StatusLine } from "./status-messages.ts";

/** How far back one catch-up reads per room. */
const CATCH_UP_LIMIT = 1000;
/** A policy room Ruriko cannot join is tried again after 5 s, then less and less often, up to every 10 minutes. */
const JOIN_RETRY = { baseMs: 5000, maxMs: 10 * 60_000, jitter: 0 };

export interface ApprovalRoomOptions {
  approvals: ApprovalStore;
  posts: ApprovalPostStore;
  outbox: OutboxStore;
  audit: AuditLog;
  seen: SeenEventsStore;
  /** Writes to several stores land together or not at all. */
  transaction: <T>(fn: () => T) => T;
  /** Ruriko must be in a room before it can post there; returns the room's id (the policy may name an alias). */
  ensureJoined: (room: string) => Promise<string>;
  onEnqueued: () => void;
  /** The status room hears about requests and outcomes too. */
  report: (line: StatusLine) => void;
  logger: Logger;
  now?: () => number;
}

export class ApprovalRoom {
  private readonly o: ApprovalRoomOptions;
  /** Policy rooms Ruriko could not join: when to try again, and how many times it failed. */
  private readonly joinFailures: BackoffTracker<string>;
  /** Ruriko's own request posts, delivered: the only events a vote can be on. */
  private readonly requestPosts: RequestPosts;

  constructor(options: ApprovalRoomOptions) {
    this.o = options;
    this.joinFailures = new BackoffTracker(JOIN_RETRY, options.now ? { now: options.now } : {});
    const delivered = (post: { requestId: string; room: string; eventId: string | null } | undefined): RequestPost | undefined =>
      post?.eventId ? { requestId: post.requestId, room: post.room, eventId: post.eventId } : undefined;
    this.requestPosts = {
      byEventId: (eventId) => delivered(options.posts.byEventId(eventId)),
      byRequestId: (id) => {
        const request = options.approvals.resolve(id);
        return request && delivered(options.posts.get(request.id));
      },
    };
  }

  /** Posts new requests, announces outcomes and sends due reminders. Idempotent; called on a timer. */
  async tick(): Promise<void> {
    const { approvals, posts } = this.o;
    for (const id of posts.unposted()) {
      const request = approvals.get(id);
      const roomId = request?.room ? await this.joined(request.room, request.traceId) : undefined;
      if (!request || !roomId) continue;
      // The post, the record of it and the status line together: a crash between them would post the request twice, or tell nobody.
      this.o.transaction(() => {
        posts.record(request.id, roomId, this.post(roomId, requestMessage(request), request.traceId));
        this.o.report({ text: `approval ${request.id} requested in ${request.room}: ${request.summary}`, traceId: request.traceId });
      });
    }
    for (const post of posts.unannounced()) {
      const request = approvals.get(post.requestId);
      const text = request && outcomeMessage(request);
      if (!request || !text || !post.eventId) continue;
      const eventId = post.eventId;
      this.o.transaction(() => {
        this.post(post.room, annotatedRequest(request, eventId, text), request.traceId);
        this.post(post.room, outcomeReply(request, eventId, text), request.traceId);
        posts.markAnnounced(request.id, request.status);
        this.o.report({ text, traceId: request.traceId });
      });
    }
    this.o.transaction(() => {
      // Only for requests already posted: a reminder of a post nobody saw is kept until it can be said.
      for (const request of approvals.takeDueReminders((r) => posts.get(r.id) !== undefined)) {
        this.say(posts.get(request.id)!.room, reminderMessage(request), request.traceId);
      }
    });
  }

  /**
   * Joins a policy room before posting there. A room Ruriko cannot join (not invited, say) is retried with
   * backoff, and the status room is told (rate-limited), while requests for other rooms go on.
   */
  private async joined(room: string, traceId: string): Promise<string | undefined> {
    if (this.joinFailures.waiting(room)) return undefined;
    try {
      const roomId = await this.o.ensureJoined(room);
      this.joinFailures.succeeded(room);
      return roomId;
    } catch (error) {
      const { failures } = this.joinFailures.failed(room);
      const reason = (error as Error).message;
      this.o.logger.warn({ room, failures, err: reason }, "cannot join an approval room; requests for it wait");
      this.o.report({ key: `approval-room|${room}`, text: `cannot post approval requests to ${room}: ${reason} (invite Ruriko to the room)`, traceId });
      return undefined;
    }
  }

  handleReaction(reaction: IncomingReaction): void {
    const vote = voteOfReaction(reaction, this.requestPosts);
    if (vote && this.o.seen.firstSighting(reaction.eventId)) this.decide(vote);
  }

  handleMessage(message: IncomingMessage): void {
    const vote = voteOfMessage(message, this.requestPosts);
    if (vote && this.o.seen.firstSighting(message.eventId)) this.decide(vote);
  }

  /**
   * A vote its voter redacted (a reaction taken back) no longer counts, while its request is pending. Someone
   * else's redaction — a moderator's, a remote server's — withdraws nobody's vote.
   */
  handleRedaction(redaction: IncomingRedaction): void {
    const source = `matrix:${redaction.redacts}`;
    const redacted = withdrawalOf(redaction, (eventId) => {
      const vote = this.o.approvals.pendingVoteBySource(`matrix:${eventId}`);
      const post = vote && this.o.posts.get(vote.requestId);
      return vote && post ? { voter: vote.approver, room: post.room } : undefined;
    });
    if (!redacted || !this.o.seen.firstSighting(redaction.eventId)) return;
    const withdrawn = this.o.approvals.withdrawVote(source, redaction.sender);
    if (!withdrawn) return;
    const { request, approver, approvals } = withdrawn;
    this.o.audit.append({
      traceId: request.traceId,
      actor: redaction.sender,
      action: "approval.withdrawn",
      target: `approval/${request.id}`,
      payload: { eventId: redaction.eventId, redacts: redaction.redacts, voter: approver, room: redaction.room },
      result: "ok",
    });
    this.o.logger.info({ traceId: request.traceId, requestId: request.id, approver, eventId: redaction.eventId }, "approval vote withdrawn in Matrix");
    this.say(redaction.room, `Approval ${request.id}: ${approver}'s vote was withdrawn (${approvals} of ${request.quorum}).`, request.traceId);
  }

  /**
   * Reads what was said in each room since its oldest pending request was posted: reactions and replies
   * made while Ruriko was stopped or cut off count too. Events already acted on are skipped (seen store).
   */
  async catchUp(eventsSince: (room: string, eventId: string, limit: number) => Promise<RawEvent[]>, self: string): Promise<number> {
    const oldest = new Map<string, string>();
    for (const post of this.o.posts.pendingDelivered()) if (!oldest.has(post.room)) oldest.set(post.room, post.eventId!);
    let handled = 0;
    for (const [room, eventId] of oldest) {
      for (const event of await eventsSince(room, eventId, CATCH_UP_LIMIT)) {
        const reaction = reactionOf(room, event, self);
        if (reaction) this.handleReaction(reaction);
        const message = messageOf(room, event, self);
        if (message) this.handleMessage(message);
        const redaction = redactionOf(room, event, self);
        if (redaction) this.handleRedaction(redaction);
        if (reaction || message || redaction) handled++;
      }
    }
    return handled;
  }

  private decide({ requestId, voter: approver, decision, eventId, room, reason }: ChatVote): void {
    const result = this.o.approvals.vote(requestId, { approver, decision, source: `matrix:${eventId}`, ...(reason ? { reason } : {}) });
    const request = result.request ?? this.o.approvals.get(requestId);
    const traceId = request?.traceId ?? "-";
    this.o.audit.append({
      traceId,
      actor: approver,
      action: `approval.${decision}`,
      target: `approval/${requestId}`,
      payload: { eventId, room, outcome: result.outcome, ...(result.outcome === "ignored" ? { ignored: result.reason } : {}), ...(reason ? { reason } : {}) },
      result: result.outcome === "ignored" ? "refused" : "ok",
    });
    this.o.logger.info({ traceId, requestId, approver, decision, eventId, outcome: result.outcome, ...(result.outcome === "ignored" ? { ignored: result.reason } : {}) }, "approval vote from Matrix");
    if (result.outcome === "recorded" && request) {
      this.say(room, `Approval ${requestId}: ${approver} approves (${result.approvals} of ${request.quorum}).`, traceId);
    } else if (result.outcome === "ignored" && result.reason === "self-approval") {
      this.say(room, `Approval ${requestId}: ${approver} wrote this change; their approval does not count (they may still deny it).`, traceId);
    }
  }

  private say(room: string, text: string, traceId: string): void {
    this.post(room, { body: text, html: escapeHtml(text), extra: {} }, traceId);
  }

  private post(room: string, content: PostContent, traceId: string): number {
    const id = this.o.outbox.enqueue({ room, ...content, traceId });
    this.o.onEnqueued();
    return id;
  }
}
