/**
 * Delivers the outbox: per room, strictly in order, each message once. The outbox id is the transaction
 * id, so a message sent just before a crash and sent again after it is deduplicated by the homeserver.
 * A room that cannot be sent to (the homeserver away, Ruriko not in it) is retried with backoff, room by
 * room; the controller never waits on any of this.
 */
import type { Logger } from "../observability/logger.ts";
import type { OutboxStore } from "../store/outbox-store.ts";
import { BackoffTracker } from "../time/backoff.ts";
import type { MatrixConnection, NoticeContent } from "./matrix-connection.ts";

export interface OutboxDelivererOptions {
  outbox: OutboxStore;
  connection: Pick<MatrixConnection, "send">;
  logger: Logger;
  /** Identifies this installation in transaction ids (two installs may share an account). */
  instance: string;
  idleMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

export class OutboxDeliverer {
  private readonly o: Required<OutboxDelivererOptions>;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  /** Rooms whose head message failed: each waits out its own backoff while the other rooms go on. */
  private readonly failing: BackoffTracker<string>;
  private wake: (() => void) | undefined;

  constructor(options: OutboxDelivererOptions) {
    this.o = { idleMs: 1000, backoffBaseMs: 500, backoffMaxMs: 60_000, ...options };
    this.failing = new BackoffTracker({ baseMs: this.o.backoffBaseMs, maxMs: this.o.backoffMaxMs, jitter: 0.2 });
  }

  start(): void {
    void this.loop();
  }

  /** Something was enqueued: deliver now instead of at the next idle tick (a room in backoff still waits). */
  notify(): void {
    this.wake?.();
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
        const { sent, nextRetryAt } = await this.deliverOnce();
        if (sent) continue;
        const soonest = Math.min(nextRetryAt, Date.now() + this.o.idleMs);
        await this.sleep(Math.max(soonest - Date.now(), 10));
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * The head message of each room not in backoff: whether something was sent, and the soonest a room with
   * messages waiting may be tried again (Infinity when none is in backoff). A room that fails (Ruriko kicked
   * out of it, say) never holds up the others, and its messages keep their order.
   */
  private async deliverOnce(): Promise<{ sent: boolean; nextRetryAt: number }> {
    const heads = this.o.outbox.heads();
    let sentAny = false;
    for (const message of heads) {
      if (this.failing.waiting(message.room)) continue;
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
        const { failures } = this.failing.failed(message.room);
        // One warning when a room starts failing, not one per retry.
        if (failures === 1) this.o.logger.warn({ room: message.room, err: text, pending: this.o.outbox.unsentCount() }, "cannot deliver chat messages to a room; kept in the outbox, retrying with backoff");
      }
    }
    const nextRetryAt = Math.min(...heads.map((m) => this.failing.retryAt(m.room) ?? Number.POSITIVE_INFINITY));
    return { sent: sentAny, nextRetryAt };
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
