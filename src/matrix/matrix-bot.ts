/**
 * Ruriko in Matrix, wired: one connection, the status reporter that decides what to say, the deliverer
 * that drains the outbox, the chat listener that answers queries, the approval room, and agents' accounts. Joining rooms and syncing are retried
 * in the background: a homeserver that is away at start delays messages, never Ruriko.
 */
import type { SnapshotEvent } from "../controller/controller.ts";
import type { AppliedChange, StatusTransition } from "../controller/agent-reconciler.ts";
import type { Logger } from "../observability/logger.ts";
import type { OutboxStore } from "../store/outbox-store.ts";
import type { SeenEventsStore } from "../store/seen-events-store.ts";
import type { ApprovalPostStore } from "../store/approval-post-store.ts";
import type { ApprovalStore } from "../store/approval-store.ts";
import type { AuditLog } from "../store/audit-log.ts";
import { backoffDelay, type BackoffPolicy } from "../time/backoff.ts";
import { AccountHomeserver } from "./account-homeserver.ts";
import { AgentAccounts, type AgentAccountsOptions } from "./agent-accounts.ts";
import { ApprovalRoom } from "./approval-room.ts";
import { ChatListener } from "./chat-listener.ts";
import type { QuerySources } from "./queries.ts";
import { MatrixConnection } from "./matrix-connection.ts";
import { OutboxDeliverer } from "./outbox-deliverer.ts";
import { describeChange, describeSnapshot, describeTransition } from "./status-messages.ts";
import { StatusReporter } from "./status-reporter.ts";

/** How long an acted-on event is remembered. */
const SEEN_EVENTS_KEPT_MS = 90 * 24 * 3600_000;

/** Joining the status room: soon after a homeserver restart, about once a minute while it stays away. */
const JOIN_RETRY: BackoffPolicy = { baseMs: 1000, maxMs: 60_000, jitter: 0.2 };

export interface MatrixBotOptions {
  homeserverUrl: string;
  userId: string;
  accessToken: string;
  room: string;
  outbox: OutboxStore;
  instance: string;
  logger: Logger;
  /** How long a status line waits for the lines after it, to go out as one message (default 1.5 s). */
  coalesceMs?: number;
  /** Events acted on (queries, votes), so that none is acted on twice, across restarts too. */
  seen: SeenEventsStore;
  /** Answer `/ruriko` queries: in the status room and `rooms()`, from `senders()`. */
  queries?: {
    sources: QuerySources;
    rooms: () => ReadonlySet<string>;
    senders: () => ReadonlySet<string>;
  };
  /** Post parked changes to their policy rooms and take decisions by reaction or reply. */
  approvals?: {
    approvals: ApprovalStore;
    posts: ApprovalPostStore;
    audit: AuditLog;
    transaction: <T>(fn: () => T) => T;
    /** How often to look for new requests, outcomes and reminders. */
    pollMs?: number;
  };
  /** Create, keep and deactivate agents' own Matrix accounts (spec.matrix.provision). */
  accounts?: Omit<AgentAccountsOptions, "homeserver" | "invite" | "isControlRoom" | "report" | "logger">;
}

/**
 * onSnapshot, onTransition and onChange write the status line to the outbox at once: call them inside the
 * transaction that records what they report (the controller does), so the line is kept exactly when the change is.
 */
export interface MatrixBot {
  onSnapshot(event: SnapshotEvent): void;
  /** A request was made or decided (by any process): post it, or its outcome, now. */
  approvalsChanged(): void;
  onTransition(transition: StatusTransition): void;
  onChange(change: AppliedChange): void;
  /**
   * Once the status room is joined, sends everything in the outbox now: status lines without waiting out their
   * window, rooms in backoff tried again. An explicit trigger (tests) instead of timing.
   */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export function startMatrixBot(opts: MatrixBotOptions): MatrixBot {
  const log = opts.logger.child({ component: "matrix" });
  const connection = new MatrixConnection({ homeserverUrl: opts.homeserverUrl, userId: opts.userId, accessToken: opts.accessToken, log });
  const deliverer = new OutboxDeliverer({ outbox: opts.outbox, connection, logger: log, instance: opts.instance, ...(opts.coalesceMs !== undefined ? { coalesceMs: opts.coalesceMs } : {}) });
  const reporter = new StatusReporter({ room: opts.room, outbox: opts.outbox, onEnqueued: () => deliverer.notify() });
  let stopped = false;
  let markJoined: () => void = () => {};
  const joined = new Promise<void>((resolve) => (markJoined = resolve));

  const queries = opts.queries;
  if (queries) {
    const listener = new ChatListener({
      sources: queries.sources,
      // Messages carry room ids; the rooms may be configured as aliases (each resolved once, then remembered).
      rooms: async () => new Set(await Promise.all([opts.room, ...queries.rooms()].map((r) => connection.resolveRoom(r).catch(() => r)))),
      senders: queries.senders,
      outbox: opts.outbox,
      seen: opts.seen,
      onEnqueued: () => deliverer.notify(),
      logger: log,
    });
    connection.onRoomMessage((message) => {
      listener.handle(message).catch((error: unknown) => log.warn({ err: (error as Error).message, eventId: message.eventId }, "query failed"));
    });
  }

  const accounts =
    opts.accounts &&
    new AgentAccounts({
      ...opts.accounts,
      homeserver: new AccountHomeserver(opts.homeserverUrl),
      invite: (roomId, userId) => connection.invite(roomId, userId),
      isControlRoom: async (roomId) => {
        const controlRooms = [opts.room, ...(opts.queries?.rooms() ?? [])];
        const ids = await Promise.all(controlRooms.map((r) => connection.resolveRoom(r).catch(() => r)));
        return ids.includes(roomId);
      },
      report: (line) => reporter.report(line),
      logger: log,
    });
  // Apart from the status room: an agent's account does not wait for Ruriko to be in any room.
  accounts?.start();
  // Called from inside the controller's transactions: the accounts' own work (and its own transactions) starts
  // once that transaction has committed.
  const wakeAccounts = () => {
    if (accounts) queueMicrotask(() => accounts.wake());
  };

  let approvalRoom: ApprovalRoom | undefined;
  let approvalTimer: NodeJS.Timeout | undefined;
  if (opts.approvals) {
    const joined = new Map<string, string>();
    approvalRoom = new ApprovalRoom({
      ...opts.approvals,
      seen: opts.seen,
      outbox: opts.outbox,
      ensureJoined: async (room) => {
        let roomId = joined.get(room);
        if (!roomId) {
          roomId = await connection.joinRoom(room);
          joined.set(room, roomId);
        }
        return roomId;
      },
      onEnqueued: () => deliverer.notify(),
      report: (line) => reporter.report(line),
      logger: log,
    });
    const room = approvalRoom;
    connection.onReaction((reaction) => room.handleReaction(reaction));
    connection.onRoomMessage((message) => room.handleMessage(message));
    connection.onRedaction((redaction) => room.handleRedaction(redaction));
    connection.onResumed(() => void catchUpApprovals("the homeserver is reachable again"));
  }
  if (accounts) connection.onResumed(() => accounts.wake());
  const catchUpApprovals = async (why: string) => {
    if (stopped || !approvalRoom) return;
    try {
      const handled = await approvalRoom.catchUp((room, eventId, limit) => connection.eventsSince(room, eventId, limit), opts.userId);
      log.debug({ handled, why }, "caught up on approval rooms");
    } catch (error) {
      log.warn({ err: (error as Error).message, why }, "could not catch up on approval rooms; live events still count");
    }
  };
  // Ticks on a timer, and at once when a request is made or decided (approvalsChanged); one at a time.
  let ticking = false;
  let tickAgain = false;
  let ticksStarted = false;
  const tickApprovals = () => {
    if (stopped || !approvalRoom || !ticksStarted) return;
    if (ticking) {
      tickAgain = true;
      return;
    }
    if (approvalTimer) clearTimeout(approvalTimer);
    ticking = true;
    approvalRoom
      .tick()
      .catch((error: unknown) => log.warn({ err: (error as Error).message }, "approval posting failed; retrying"))
      .finally(() => {
        ticking = false;
        if (stopped) return;
        if (tickAgain) {
          tickAgain = false;
          tickApprovals();
        } else approvalTimer = setTimeout(tickApprovals, opts.approvals?.pollMs ?? 1000).unref();
      });
  };

  // Old sightings are forgotten so the table does not grow forever. An event read again after that (a catch-up
  // over a very old pending request) still cannot count twice: votes are unique per request and approver.
  const pruneSeen = () => {
    try {
      const pruned = opts.seen.prune(new Date(Date.now() - SEEN_EVENTS_KEPT_MS));
      if (pruned > 0) log.debug({ pruned }, "forgot old event sightings");
    } catch (error) {
      log.warn({ err: (error as Error).message }, "could not prune event sightings");
    }
  };
  pruneSeen();
  const pruneTimer = setInterval(pruneSeen, 24 * 3600_000).unref();

  const join = async (attempt: number): Promise<void> => {
    if (stopped) return;
    try {
      await connection.joinRoom(opts.room);
      log.info({ room: opts.room, userId: opts.userId }, "joined the status room");
      deliverer.start();
      markJoined();
      if (queries || approvalRoom) await connection.startSync();
      await catchUpApprovals("start");
      ticksStarted = true;
      tickApprovals();
    } catch (error) {
      const delay = backoffDelay(attempt + 1, JOIN_RETRY);
      if (attempt === 0) log.warn({ room: opts.room, err: (error as Error).message, retryInMs: delay }, "cannot join the status room yet; retrying with backoff");
      setTimeout(() => void join(attempt + 1), delay).unref();
    }
  };
  void join(0);

  return {
    approvalsChanged: () => tickApprovals(),
    onSnapshot: (event) => {
      reporter.report(describeSnapshot(event));
      if (event.outcome === "applied") wakeAccounts();
    },
    onTransition: (t) => reporter.report(describeTransition(t)),
    onChange: (c) => {
      reporter.report(describeChange(c));
      // A new container may be an agent waiting for its account (none is made before its container is); a Gosuto
      // applied may trust other rooms (an account joins only the rooms of the Gosuto in force).
      if ((c.what === "container" && (c.action === "create" || c.action === "recreate")) || c.what === "gosuto") wakeAccounts();
    },
    async flush() {
      await joined;
      await deliverer.flush({ closeWindows: true, retryNow: true });
    },
    async stop() {
      stopped = true;
      if (approvalTimer) clearTimeout(approvalTimer);
      clearInterval(pruneTimer);
      await accounts?.stop();
      // Nothing to write: every line is in the outbox already, and is delivered at the next start if not now.
      await deliverer.stop();
      connection.stop();
    },
  };
}
