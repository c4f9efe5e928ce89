/**
 * Decides whether the status room hears a line, and writes it to the outbox at once: `report` is called in the
 * transaction that records the change the line tells of, so the line is exactly as durable as that change (a
 * kill -9 keeps both or neither). Nothing waits here in memory: bursts are joined into one message by the
 * deliverer when it sends them (outbox-deliverer.ts). The same failure repeated is said once per window and a
 * recovery lets it be said again, judged from what the outbox holds, so a restart neither forgets nor repeats.
 */
import type { OutboxStore } from "../store/outbox-store.ts";
import type { StatusLine } from "./status-messages.ts";
import { composeMessage } from "./status-messages.ts";

export interface StatusReporterOptions {
  room: string;
  outbox: OutboxStore;
  /** Called after a line was enqueued (to wake the deliverer; it reads the line once the transaction commits). */
  onEnqueued?: () => void;
  /** A repeated failure is said again only after this long. */
  repeatAfterMs?: number;
  now?: () => number;
}

export class StatusReporter {
  private readonly o: Required<Omit<StatusReporterOptions, "onEnqueued">> & Pick<StatusReporterOptions, "onEnqueued">;

  constructor(options: StatusReporterOptions) {
    this.o = { repeatAfterMs: 10 * 60_000, now: () => Date.now(), ...options };
  }

  /**
   * Writes the line to the outbox, unless it repeats a fact said within the window. Synchronous, on the state
   * database only: call it inside the transaction of the change it reports. Returns the outbox id, if said.
   */
  report(line: StatusLine | undefined): number | undefined {
    if (!line) return undefined;
    const now = this.o.now();
    if (line.key) {
      const last = this.o.outbox.lastSaid(line.key, scopeOf(line.key));
      if (last !== undefined && now - Date.parse(last) < this.o.repeatAfterMs) return undefined;
    }
    const alone = composeMessage([line]);
    const id = this.o.outbox.enqueueLine({ room: this.o.room, line, body: alone.body, html: alone.html, traceId: line.traceId }, new Date(now));
    this.o.onEnqueued?.();
    return id;
  }
}

/** A failure's key starts with the agent it is about: `newsbot|Stalled|…`; a recovery of newsbot clears it. */
const scopeOf = (key: string) => key.split("|", 1)[0]!;
