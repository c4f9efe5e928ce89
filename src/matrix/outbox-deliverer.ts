/**
 * Delivers the outbox: per room, strictly in order, each message once. The outbox id is the transaction
 * id, so a message sent just before a crash and sent again after it is deduplicated by the homeserver.
 * A homeserver that is away is retried with backoff; the controller never waits on any of this.
 */
import type { Logger } from "../observability/logger.ts";
import type { OutboxStore } from "../store/outbox-store.ts";
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
  private failures = 0;
  private wake: (() => void) | undefined;

  constructor(options: OutboxDelivererOptions) {
    this.o = { idleMs: 1000, backoffBaseMs: 500, backoffMaxMs: 60_000, ...options };
  }

  start(): void {
    void this.loop();
  }

  /** Something was enqueued: deliver now instead of at the next idle tick. */
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
        const delivered = await this.deliverOnce();
        const wait = this.failures > 0 ? this.backoff() : delivered ? 0 : this.o.idleMs;
        if (wait > 0) await this.sleep(wait, this.failures === 0);
      }
    } finally {
      this.running = false;
    }
  }

  /** One message per room with something pending; false when there was nothing to send or a send failed. */
  private async deliverOnce(): Promise<boolean> {
    const heads = this.o.outbox.heads();
    if (heads.length === 0) return false;
    let sentAny = false;
    for (const message of heads) {
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
        if (this.failures > 0) this.o.logger.info({ room: message.room, pending: this.o.outbox.unsentCount() }, "homeserver reachable again; delivering the outbox");
        this.failures = 0;
      } catch (error) {
        const text = error instanceof Error ? error.message : String(error);
        this.o.outbox.markFailed(message.id, text);
        // One warning when an outage starts, not one per retry.
        if (this.failures === 0) this.o.logger.warn({ room: message.room, err: text, pending: this.o.outbox.unsentCount() }, "cannot deliver chat messages; kept in the outbox, retrying with backoff");
        this.failures++;
        return false;
      }
    }
    return sentAny;
  }

  private backoff(): number {
    const delay = Math.min(this.o.backoffBaseMs * 2 ** (this.failures - 1), this.o.backoffMaxMs);
    return delay * (0.8 + 0.4 * Math.random());
  }

  private sleep(ms: number, wakeable: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        if (this.timer) clearTimeout(this.timer);
        this.timer = undefined;
        this.wake = undefined;
        resolve();
      };
      this.timer = setTimeout(done, ms);
      this.timer.unref();
      // During backoff only stop() wakes the loop; a new message must not defeat the backoff.
      this.wake = wakeable ? done : () => (this.stopped ? done() : undefined);
    });
  }
}
