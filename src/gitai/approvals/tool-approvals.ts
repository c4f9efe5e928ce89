/**
 * Tool calls that wait for a human. A call the policy allows only with `requireApproval` is posted to the
 * Gosuto's `approvals.room`; it runs once an approver approves it, and not at all if one denies it or nobody
 * decides within `approvals.ttlSeconds`. Votes are read as Ruriko's own approvals read them
 * (approvals/chat-decisions.ts) and judged by the same rules (approvals/votes.ts): only listed approvers count;
 * whoever asked cannot approve their own call (they may deny it); the first decision wins. One approval is enough,
 * so the first vote that counts decides at once and for good: no vote is ever left standing for a redaction to
 * withdraw, and redactions are not read at all.
 *
 * An approver's deny reason is free text said in the approval room: it is shown there, in the outcome post, and
 * nowhere else — the journal (and so Ruriko's audit log and status room) gets `denied` and its length, and the
 * model is told only who denied the call.
 *
 * Pending calls are written to the agent's data volume. A turn cannot be resumed in a new process (its model
 * conversation is gone), so after a restart each call that was waiting is cancelled with a clear message to the
 * asker and in the approval room — never silently lost. Approvals that cover later identical calls
 * (`validForSeconds`) are kept in memory only: the data volume is writable by the agent's own tool servers, and
 * nothing they write may ever grant a call.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { digestOf } from "../../api/digest.ts";
import { voteOfMessage, voteOfReaction, type ChatVote, type RequestPost, type RequestPosts } from "../../approvals/chat-decisions.ts";
import { judgeVote } from "../../approvals/votes.ts";
import { messageOf, reactionOf, type RawEvent } from "../../matrix/incoming-events.ts";
import type { Logger } from "../../observability/logger.ts";
import type { EventJournal } from "../events/journal.ts";
import { decidedPost, notice, outcomeText, requestPost, shownArguments, type PostContent, type ToolApprovalRequest, type ToolApprovalStatus } from "./request-post.ts";
import { writeFileAtomicSync } from "../../store/atomic-write.ts";

export interface ApprovalSettings {
  room: string;
  approvers: readonly string[];
  ttlSeconds: number;
  validForSeconds: number;
}

/** One call that needs a human, and where it comes from. */
export interface ApprovalAsk {
  mcp: string;
  tool: string;
  rule: string;
  args: Record<string, unknown>;
  askedBy: string;
  /** The conversation's room, and the message that asked (the cancellation after a restart replies to it). */
  room: string;
  askEventId?: string;
  traceId: string;
  /** Told once the request is posted: the asker hears that the call waits. */
  onWaiting?: (request: ToolApprovalRequest) => void;
}

export type ApprovalOutcome =
  | { decision: "approved"; by: string; id: string }
  /** An approver's words stay in the approval room: nothing said there reaches the model. */
  | { decision: "denied"; by: string; id: string }
  | { decision: "expired"; id: string }
  /** The request could not be made (approvals off, no Matrix, the room refused): the call does not run. */
  | { decision: "unavailable"; reason: string };

/** Sends a message to a room as the agent; returns its event id. */
export type SendToRoom = (room: string, content: PostContent) => Promise<string>;

interface Pending {
  request: ToolApprovalRequest;
  postRoom: string;
  postEventId: string;
  askEventId?: string;
  traceId: string;
  resolve: (outcome: ApprovalOutcome) => void;
  timer: NodeJS.Timeout;
}

/** What is written to the data volume for each waiting call: enough to cancel it clearly after a restart. */
interface PendingRecord {
  request: ToolApprovalRequest;
  postRoom: string;
  postEventId: string;
  askEventId?: string;
  traceId: string;
}

export interface ToolApprovalsOptions {
  agent: string;
  /** The pending-calls file in the agent's data volume. */
  file: string;
  events: EventJournal;
  /** Every secret value the agent holds, so that none is shown to approvers. */
  secretValues: () => string[];
  logger: Logger;
  now?: () => number;
}

export class ToolApprovals {
  private readonly o: ToolApprovalsOptions;
  private readonly now: () => number;
  private settings: ApprovalSettings | undefined;
  private send: { to: SendToRoom; self: string; roomId: string } | undefined;
  private readonly pending = new Map<string, Pending>();
  /** Approved (tool, arguments) → until when an identical call needs no new approval. Memory only. */
  private readonly grants = new Map<string, { until: number; id: string; by: string }>();
  private readonly posts: RequestPosts;

  constructor(options: ToolApprovalsOptions) {
    this.o = options;
    this.now = options.now ?? Date.now;
    const asPost = (p: Pending): RequestPost => ({ requestId: p.request.id, room: p.postRoom, eventId: p.postEventId });
    this.posts = {
      byEventId: (eventId) => {
        for (const p of this.pending.values()) if (p.postEventId === eventId) return asPost(p);
        return undefined;
      },
      byRequestId: (id) => {
        const found = [...this.pending.values()].filter((p) => p.request.id.startsWith(id.toLowerCase()));
        return found.length === 1 ? asPost(found[0]!) : undefined;
      },
    };
  }

  /** The Gosuto's approvals section (undefined: approvals are not enabled). */
  configure(settings: ApprovalSettings | undefined): void {
    // An approval covered later calls under the settings it was given in: other approvers, or a shorter window, end it.
    if (digestOf(settings ?? null) !== digestOf(this.settings ?? null)) this.grants.clear();
    this.settings = settings;
  }

  /** The way to the approval room, once the agent is on Matrix and has joined it (undefined: cut off). */
  connect(send: { to: SendToRoom; self: string; roomId: string } | undefined): void {
    this.send = send;
  }

  /** The room whose events decide requests (by id), while connected. */
  get watchedRoom(): string | undefined {
    return this.send?.roomId;
  }

  pendingStates(): Array<{ id: string; mcp: string; tool: string; rule: string; askedBy: string; room: string; expiresAt: string }> {
    return [...this.pending.values()].map(({ request: r }) => ({ id: r.id, mcp: r.mcp, tool: r.tool, rule: r.rule, askedBy: r.askedBy, room: r.room, expiresAt: r.expiresAt }));
  }

  /** Asks for a human's decision on one call, and waits for it (or for the request to expire). */
  async ask(call: ApprovalAsk): Promise<ApprovalOutcome> {
    const settings = this.settings;
    const argsDigest = digestOf(call.args);
    const recorded = { mcp: call.mcp, tool: call.tool, rule: call.rule, argsDigest, sender: call.askedBy, room: call.room, traceId: call.traceId };
    if (!settings) return this.unavailable(call, "approvals are not enabled in this agent's Gosuto (approvals.enabled, room, approvers)");
    const grantKey = `${call.mcp}\u0000${call.tool}\u0000${argsDigest}`;
    const grant = this.grants.get(grantKey);
    if (grant && grant.until > this.now()) {
      // The sender of a decision is who decided: the approver of the covering approval, not the asker.
      this.o.events.record({ kind: "tool.approved", ...recorded, sender: grant.by, approval: grant.id, reason: `covered by approval ${grant.id} until ${new Date(grant.until).toISOString()}` });
      return { decision: "approved", by: grant.by, id: grant.id };
    }
    const send = this.send;
    if (!send) return this.unavailable(call, "the agent is not connected to its approval room");
    const request: ToolApprovalRequest = {
      id: randomBytes(6).toString("hex"),
      agent: this.o.agent,
      mcp: call.mcp,
      tool: call.tool,
      rule: call.rule,
      argsShown: shownArguments(call.args, this.o.secretValues()),
      argsDigest,
      askedBy: call.askedBy,
      room: call.room,
      approvers: settings.approvers,
      expiresAt: new Date(this.now() + settings.ttlSeconds * 1000).toISOString(),
    };
    let postEventId: string;
    try {
      postEventId = await send.to(send.roomId, requestPost(request));
    } catch (error) {
      return this.unavailable(call, `the request could not be posted to ${settings.room}: ${(error as Error).message}`);
    }
    this.o.events.record({ kind: "tool.waiting", ...recorded, approval: request.id });
    this.o.logger.info({ traceId: call.traceId, approval: request.id, mcp: call.mcp, tool: call.tool, rule: call.rule }, "tool call waits for approval");
    const outcome = new Promise<ApprovalOutcome>((resolve) => {
      const timer = setTimeout(() => this.finish(request.id, "expired"), settings.ttlSeconds * 1000);
      timer.unref();
      this.pending.set(request.id, { request, postRoom: send.roomId, postEventId, ...(call.askEventId ? { askEventId: call.askEventId } : {}), traceId: call.traceId, resolve, timer });
    });
    this.persist();
    call.onWaiting?.(request);
    return outcome;
  }

  /** One event from the approval room (never shown to the model). */
  handleEvent(room: string, event: RawEvent): void {
    const self = this.send?.self;
    if (!self || room !== this.send?.roomId) return;
    const reaction = reactionOf(room, event, self);
    const message = messageOf(room, event, self);
    const vote = (reaction && voteOfReaction(reaction, this.posts)) ?? (message && voteOfMessage(message, this.posts));
    if (vote) this.vote(vote);
  }

  /**
   * Calls that were waiting when the process stopped: each is cancelled, in the approval room and to the asker,
   * and the file emptied. `tell` posts to a conversation room if the agent still serves it.
   */
  async cancelLeftovers(tell: (room: string, content: PostContent) => Promise<void>): Promise<number> {
    const records = this.readLeftovers();
    if (records.length === 0) return 0;
    const send = this.send;
    for (const r of records) {
      const reason = "the agent restarted while the call waited; ask again";
      const text = outcomeText(r.request, "cancelled", undefined, reason);
      // No sender: on a decision it names who decided, and nobody did (the asker is on the turn's tool.waiting).
      this.o.events.record({ kind: "tool.rejected", traceId: r.traceId, mcp: r.request.mcp, tool: r.request.tool, rule: r.request.rule, argsDigest: r.request.argsDigest, approval: r.request.id, room: r.request.room, reason: "lost" });
      if (send && r.postRoom === send.roomId) {
        await send.to(r.postRoom, decidedPost(r.request, r.postEventId, "cancelled", text)).catch(() => undefined);
      }
      await tell(r.request.room, notice(`The call to ${r.request.mcp}.${r.request.tool} that waited for approval ${r.request.id} was not run: I restarted while it waited. Please ask again.`, r.askEventId)).catch(() => undefined);
    }
    this.persist();
    return records.length;
  }

  /** Calls still waiting are ended as the process stops: they stay in the file, to be cancelled at the next start. */
  stop(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    for (const p of this.pending.values()) p.resolve({ decision: "unavailable", reason: "the agent is stopping" });
    this.pending.clear();
  }

  private vote(vote: ChatVote): void {
    const p = this.pending.get(vote.requestId);
    if (!p) return;
    // No earlier votes: with a quorum of one, the first vote that counts ends the request.
    const judged = judgeVote({ status: "pending", expiresAt: p.request.expiresAt, approvers: p.request.approvers, excluded: [p.request.askedBy], quorum: 1 }, [], { approver: vote.voter, decision: vote.decision }, this.now());
    this.o.logger.info({ traceId: p.traceId, approval: p.request.id, voter: vote.voter, decision: vote.decision, ...(judged.accepted ? { result: judged.result } : { refused: judged.reason }) }, "tool approval vote");
    if (!judged.accepted) {
      if (judged.reason === "self-approval" && this.send) {
        void this.send.to(p.postRoom, notice(`Tool approval ${p.request.id}: ${vote.voter} asked for this call; their approval does not count (they may still deny it).`, p.postEventId)).catch(() => undefined);
      }
      return;
    }
    if (judged.result === "approved") this.finish(p.request.id, "approved", vote.voter);
    else if (judged.result === "denied") this.finish(p.request.id, "denied", vote.voter, vote.reason);
  }

  private finish(id: string, status: "approved" | "denied" | "expired", by?: string, reason?: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(id);
    this.persist();
    const r = p.request;
    const kind = status === "approved" ? "tool.approved" : status === "denied" ? "tool.rejected" : "tool.expired";
    // A deny reason is an approver's free text: journalled as its length only (Ruriko copies the journal).
    const denied = status === "denied" ? { reason: "denied", ...(reason ? { size: reason.length } : {}) } : {};
    this.o.events.record({ kind, traceId: p.traceId, mcp: r.mcp, tool: r.tool, rule: r.rule, argsDigest: r.argsDigest, approval: r.id, room: r.room, ...(by ? { sender: by } : {}), ...denied });
    const validFor = this.settings?.validForSeconds ?? 0;
    if (status === "approved" && validFor > 0) this.grants.set(`${r.mcp}\u0000${r.tool}\u0000${r.argsDigest}`, { until: this.now() + validFor * 1000, id: r.id, by: by! });
    const text = outcomeText(r, status, by, reason);
    const send = this.send;
    if (send) {
      void send
        .to(p.postRoom, decidedPost(r, p.postEventId, status, text))
        .then(() => send.to(p.postRoom, notice(text, p.postEventId)))
        .catch((error: unknown) => this.o.logger.warn({ approval: id, err: (error as Error).message }, "could not post a tool approval's outcome"));
    }
    p.resolve(status === "approved" ? { decision: "approved", by: by!, id } : status === "denied" ? { decision: "denied", by: by!, id } : { decision: "expired", id });
  }

  private unavailable(call: ApprovalAsk, reason: string): ApprovalOutcome {
    // No sender, as for a lost call: nobody decided (the asker is on the turn's message.accepted).
    this.o.events.record({ kind: "tool.rejected", traceId: call.traceId, mcp: call.mcp, tool: call.tool, rule: call.rule, argsDigest: digestOf(call.args), room: call.room, reason: `unavailable: ${reason}` });
    this.o.logger.warn({ traceId: call.traceId, mcp: call.mcp, tool: call.tool, reason }, "a tool call needs approval, which cannot be asked for");
    return { decision: "unavailable", reason };
  }

  private persist(): void {
    const records: PendingRecord[] = [...this.pending.values()].map((p) => ({ request: p.request, postRoom: p.postRoom, postEventId: p.postEventId, ...(p.askEventId ? { askEventId: p.askEventId } : {}), traceId: p.traceId }));
    try {
      if (records.length === 0) {
        rmSync(this.o.file, { force: true });
        return;
      }
      writeFileAtomicSync(this.o.file, JSON.stringify({ pending: records }));
    } catch (error) {
      this.o.logger.error({ err: (error as Error).message }, "could not write the pending tool approvals to the data volume");
    }
  }

  /** What a previous process left waiting; anything unreadable is logged and dropped (it could grant nothing anyway). */
  private readLeftovers(): PendingRecord[] {
    let text: string;
    try {
      text = readFileSync(this.o.file, "utf8");
    } catch {
      return [];
    }
    try {
      const parsed = JSON.parse(text) as { pending?: unknown };
      return (Array.isArray(parsed.pending) ? parsed.pending : []).filter(isPendingRecord).filter((r) => !this.pending.has(r.request.id));
    } catch (error) {
      this.o.logger.warn({ err: (error as Error).message }, "the pending tool approvals file is unreadable; ignored");
      return [];
    }
  }
}

function isPendingRecord(value: unknown): value is PendingRecord {
  const r = value as PendingRecord | undefined;
  const q = r?.request;
  return (
    typeof r?.postRoom === "string" &&
    typeof r.postEventId === "string" &&
    typeof r.traceId === "string" &&
    typeof q?.id === "string" &&
    /^[0-9a-f]{12}$/.test(q.id) &&
    [q.mcp, q.tool, q.rule, q.room, q.askedBy, q.argsDigest].every((f) => typeof f === "string")
  );
}

export type { ToolApprovalStatus };
