/**
 * Decides when the status room hears something: events that come in a burst (a revision touching many
 * agents) are coalesced into one message; the same failure repeated is said once per window, and a recovery
 * lets it be said again. Messages go to the outbox (durable) and the deliverer is nudged; nothing here waits
 * on the homeserver.
 */
import type { OutboxStore } from "../store/outbox-store.ts";
import type { StatusLine } from "./status-messages.ts";
import { composeMessage } from "./status-messages.ts";

export interface StatusReporterOptions {
  room: string;
  outbox: OutboxStore;
  /** Called after a message was enqueued. */
  onEnqueued?: () => void;
  /** How long after the first event of a burst the summary goes out. */
  coalesceMs?: number;
  /** A repeated failure is said again only after this long. */
  repeatAfterMs?: number;
  now?: () => number;
}

export class StatusReporter {
  private readonly o: Required<Omit<StatusReporterOptions, "onEnqueued">> & Pick<StatusReporterOptions, "onEnqueued">;
  private pending: StatusLine[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly lastSaid = new Map<string, number>();

  constructor(options: StatusReporterOptions) {
    this.o = { coalesceMs: 1500, repeatAfterMs: 10 * 60_000, now: () => Date.now(), ...options };
  }

  report(line: StatusLine | undefined): void {
    if (!line) return;
    if (line.clears) {
      for (const key of [...this.lastSaid.keys()]) if (key.startsWith(`${line.clears}|`)) this.lastSaid.delete(key);
    }
    if (line.key) {
      const last = this.lastSaid.get(line.key);
      if (last !== undefined && this.o.now() - last < this.o.repeatAfterMs) return;
      this.lastSaid.set(line.key, this.o.now());
    }
    this.pending.push(line);
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.o.coalesceMs);
      this.timer.unref();
    }
  }

  /** Writes what is pending to the outbox now (also on shutdown, so nothing said is lost). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    const message = composeMessage(lines);
    this.o.outbox.enqueue({ room: this.o.room, ...message });
    this.o.onEnqueued?.();
  }
}
