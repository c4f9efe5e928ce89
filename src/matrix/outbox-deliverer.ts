/**
 * Delivers the outbox: per room, strictly in order, each message once. The outbox id is the transaction
 * id, so a message sent just before a crash and sent again after it is deduplicated by the homeserver.
 * A room that cannot be sent to (the homeserver away, Ruriko not in it) is retried with backoff, room by
 * room; the controller never waits on any of this.
 *
 * Status lines are coalesced here, at delivery, not by holding them in memory: each line is its own row,
 * written with the change it reports, and the lines waiting at the head of a room go out as one message. A
 * line waits at most `coalesceMs` for the lines after it (a revision touching many agents is one message);
 * anything else queued behind it (an answer, an approval post) ends the wait. What a message says is fixed
 * in the outbox before its first send, so a resend after a crash is the same message under the same id.
 */
import type { Logger } from "../observability/logger.ts";
import type { OutboxMessage, OutboxStore } from "../store/outbox-store.ts";
import { BackoffTracker } from "../time/backoff.ts";
import type { MatrixConnection, NoticeContent } from "./matrix-connection.ts";
import { composeMessage } from "./status-messages.ts";

export interface OutboxDelivererOptions {
  outbox: OutboxStore;
  connection: Pick<MatrixConnection, "send">;
  logger: Logger;
  /** Identifies this installation in transaction ids (two installs may share an account). */
  instance: string;
  idleMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** How long a status line waits for the lines after it before its message goes. */
  coalesceMs?: number;
  /** The most lines one message lists; a longer burst is told in several messages. */
  maxLines?: number;
  now?: () => number;
}

export interface FlushOptions {
  /** Send status lines without waiting out their coalescing window. */
  closeWindows?: boolean;
  /** Try rooms in backoff too. */
  retryNow?: boolean;
}

/**
 * Which status lines go out together, and when: the open lines at the head of a room's queue (at most
 * `maxLines`; `queue` holds up to one more). They are due when the first has waited `coalesceMs`, or at
 * once when anything else waits behind them or the message is full.
 */
export function lineBatch(queue: readonly OutboxMessage[], o: { coalesceMs: number; maxLines: number }): { lines: OutboxMessage[]; dueAt: number } {
  const lines: OutboxMessage[] = [];
  for (const m of queue) {
    if (m.fixed || !m.line || lines.length === o.maxLines) break;
    lines.push(m);
  }
  const closed = queue.length > lines.length;
  return { lines, dueAt: closed ? Number.NEGATIVE_INFINITY : Date.parse(lines[0]!.createdAt) + o.coalesceMs };
}

/** One line as itself, several as a counted list (status-messages.ts), from the rows that hold them. */
export function messageOf(lines: readonly OutboxMessage[]): { body: string; html: string } {
  const { body, html } = composeMessage(lines.map((m) => ({ text: m.line!.text, traceId: m.traceId, ...(m.line!.ownTrace ? { ownTrace: true } : {}) })));
  return { body, html };
}

export class OutboxDeliverer {
  private readonly o: Required<OutboxDelivererOptions>;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  /** Rooms whose head message failed: each waits out its own backoff while the other rooms go on. */
  private readonly failing: BackoffTracker<string>;
  private wake: (() => void) | undefined;
  /** One pass at a time, the loop's or an explicit flush: a head is never sent twice at once. */
  private passes: Promise<unknown> = Promise.resolve();

  constructor(options: OutboxDelivererOptions) {
    this.o = { idleMs: 1000, backoffBaseMs: 500, backoffMaxMs: 60_000, coalesceMs: 1500, maxLines: 50, now: () => Date.now(), ...options };
    this.failing = new BackoffTracker({ baseMs: this.o.backoffBaseMs, maxMs: this.o.backoffMaxMs, jitter: 0.2 }, { now: this.o.now });
  }

  start(): void {
    void this.loop();
  }

  /** Something was enqueued: deliver now instead of at the next idle tick (a room in backoff still waits). */
  notify(): void {
    this.wake?.();
  }

  /**
   * Delivers what can go now, pass after pass until nothing more does: an explicit trigger (a test, say)
   * instead of the loop's timing. Returns when done; the loop need not be running.
   */
  async flush(options: FlushOptions = {}): Promise<void> {
    for (;;) {
      const { sent } = await this.pass(options);
      if (!sent) return;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.notify();
    while (this.running) await new Promise((r) => setTimeout(r, 10));
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (!this.stopped) {
        const { sent, wakeAt } = await this.pass({});
        if (sent) continue;
        await this.sleep(Math.min(Math.max(wakeAt - this.o.now(), 10), this.o.idleMs));
      }
    } finally {
      this.running = false;
    }
  }

  private pass(options: FlushOptions): Promise<{ sent: boolean; wakeAt: number }> {
    const run = this.passes.then(() => this.deliverOnce(options));
    this.passes = run.catch(() => {});
    return run;
  }

  /**
   * The head message of each room not in backoff (status lines whose window is still open wait): whether
   * something was sent, and the soonest a room with messages waiting may go (Infinity when none waits). A room
   * that fails (Ruriko kicked out of it, say) never holds up the others, and its messages keep their order.
   */
  private async deliverOnce(options: FlushOptions): Promise<{ sent: boolean; wakeAt: number }> {
    const heads = this.o.outbox.heads();
    let sentAny = false;
    let wakeAt = Number.POSITIVE_INFINITY;
    for (const head of heads) {
      if (!options.retryNow && this.failing.waiting(head.room)) {
        wakeAt = Math.min(wakeAt, this.failing.retryAt(head.room) ?? 0);
        continue;
      }
      let message = head;
      if (!head.fixed) {
        const batch = lineBatch(this.o.outbox.pending(head.room, head.id, this.o.maxLines + 1), this.o);
        if (!options.closeWindows && batch.dueAt > this.o.now()) {
          wakeAt = Math.min(wakeAt, batch.dueAt);
          continue;
        }
        message = this.o.outbox.fix(head.id, batch.lines.slice(1).map((m) => m.id), batch.lines.length > 1 ? messageOf(batch.lines) : head);
      }
      const content: NoticeContent = {
        ...(message.extra as Partial<NoticeContent> | null),
        msgtype: "m.notice",
        body: message.body,
        format: "org.matrix.custom.html",
        formatted_body: message.html,
        "dev.ruriko.trace_id": message.traceId,
        "dev.ruriko.outbox_id": message.id,
      };
      try {
        const eventId = await this.o.connection.send(message.room, content, `ruriko-${this.o.instance}-${message.id}`);
        this.o.outbox.markSent(message.id, eventId);
        sentAny = true;
        const wasFailing = this.failing.failures(message.room) > 0;
        this.failing.succeeded(message.room);
        if (wasFailing) this.o.logger.info({ room: message.room, pending: this.o.outbox.unsentCount() }, "room reachable again; delivering its messages");
      } catch (error) {
        const text = error instanceof Error ? error.message : String(error);
        this.o.outbox.markFailed(message.id, text);
        const { failures, retryAt } = this.failing.failed(message.room);
        wakeAt = Math.min(wakeAt, retryAt);
        // One warning when a room starts failing, not one per retry.
        if (failures === 1) this.o.logger.warn({ room: message.room, err: text, pending: this.o.outbox.unsentCount() }, "cannot deliver chat messages to a room; kept in the outbox, retrying with backoff");
      }
    }
    return { sent: sentAny, wakeAt };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        if (this.timer) clearTimeout(this.timer);
        this.timer = undefined;
        this.wake = undefined;
        resolve();
      };
      this.timer = setTimeout(done, ms);
      this.timer.unref();
      this.wake = done;
    });
  }
}
