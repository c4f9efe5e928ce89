/**
 * The status room, wired: Ruriko's Matrix connection, the reporter that decides what to say, and the
 * deliverer that drains the outbox. Joining the room is retried in the background: a homeserver that is
 * away at start delays messages, never Ruriko.
 */
import type { SnapshotEvent } from "../controller/controller.ts";
import type { StatusTransition } from "../controller/reconciler.ts";
import type { Logger } from "../observability/logger.ts";
import type { OutboxStore } from "../store/outbox-store.ts";
import { MatrixConnection } from "./matrix-connection.ts";
import { OutboxDeliverer } from "./outbox-deliverer.ts";
import { describeSnapshot, describeTransition } from "./status-messages.ts";
import { StatusReporter } from "./status-reporter.ts";

export interface StatusRoomOptions {
  homeserverUrl: string;
  userId: string;
  accessToken: string;
  room: string;
  outbox: OutboxStore;
  instance: string;
  logger: Logger;
  coalesceMs?: number;
}

export interface StatusRoom {
  onSnapshot(event: SnapshotEvent): void;
  onTransition(transition: StatusTransition): void;
  stop(): Promise<void>;
}

export function startStatusRoom(opts: StatusRoomOptions): StatusRoom {
  const log = opts.logger.child({ component: "matrix" });
  const connection = new MatrixConnection({ homeserverUrl: opts.homeserverUrl, userId: opts.userId, accessToken: opts.accessToken });
  const deliverer = new OutboxDeliverer({ outbox: opts.outbox, connection, logger: log, instance: opts.instance });
  const reporter = new StatusReporter({ room: opts.room, outbox: opts.outbox, onEnqueued: () => deliverer.notify(), ...(opts.coalesceMs !== undefined ? { coalesceMs: opts.coalesceMs } : {}) });
  let stopped = false;

  const join = async (attempt: number): Promise<void> => {
    if (stopped) return;
    try {
      await connection.joinRoom(opts.room);
      log.info({ room: opts.room, userId: opts.userId }, "joined the status room");
      deliverer.start();
    } catch (error) {
      const delay = Math.min(1000 * 2 ** attempt, 60_000);
      if (attempt === 0) log.warn({ room: opts.room, err: (error as Error).message, retryInMs: delay }, "cannot join the status room yet; retrying with backoff");
      setTimeout(() => void join(attempt + 1), delay).unref();
    }
  };
  void join(0);

  return {
    onSnapshot: (event) => reporter.report(describeSnapshot(event)),
    onTransition: (t) => reporter.report(describeTransition(t)),
    async stop() {
      stopped = true;
      reporter.flush();
      await deliverer.stop();
      connection.stop();
    },
  };
}
