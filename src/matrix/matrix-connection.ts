/**
 * Ruriko's Matrix account, through matrix-js-sdk: the one place that talks to the homeserver for sending.
 * Thin: it sends what it is given with the transaction id it is given (so the homeserver deduplicates a
 * resend), and turns failures into MatrixSendError values naming the room. The access token never appears
 * in an error or a log line.
 */
import { ClientEvent, createClient, Direction, Method, RoomEvent, type MatrixClient } from "matrix-js-sdk";
import { logger as sdkRootLogger, type Logger as SdkLogger } from "matrix-js-sdk/lib/logger.js";
import { messageOf, reactionOf, redactionOf, type IncomingMessage, type IncomingReaction, type IncomingRedaction, type RawEvent } from "./incoming-events.ts";

export interface MatrixConnectionOptions {
  homeserverUrl: string;
  userId: string;
  accessToken: string;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** Where the SDK's own warnings go (at debug level: they are the SDK's, not Ruriko's). */
  log?: { debug(obj: object, msg?: string): void };
}

/** The SDK's logger, quieted: its chatter (sync details, unsupported endpoints) goes to our debug level. */
function sdkLoggerFor(log: MatrixConnectionOptions["log"], namespace = "matrix-js-sdk"): SdkLogger {
  const forward = (...msg: unknown[]) => log?.debug({ sdk: namespace }, msg.map((m) => (m instanceof Error ? m.message : String(m))).join(" ").slice(0, 500));
  const ignore = () => {};
  return { trace: ignore, debug: ignore, info: ignore, warn: forward, error: forward, getChild: (child: string) => sdkLoggerFor(log, `${namespace}:${child}`) };
}

/**
 * Parts of the SDK (MatrixRTC sessions, for one) log to its root logger, not to the client's, and that one
 * writes to the console, which would interleave with our JSON lines. Its children copy its method factory
 * when they are made, so replacing it once, at load, quiets them all; warnings go to the last connection's
 * debug log.
 */
let rootLogSink: MatrixConnectionOptions["log"];
const rootLogger = sdkRootLogger as unknown as { methodFactory: (method: string) => (...args: unknown[]) => void; rebuild(): void };
rootLogger.methodFactory = (method) => (...args) => {
  if (method === "warn" || method === "error") rootLogSink?.debug({ sdk: "matrix-js-sdk" }, args.map((a) => (a instanceof Error ? a.message : String(a))).join(" ").slice(0, 500));
};
rootLogger.rebuild();

export class MatrixSendError extends Error {
  readonly room: string;
  /** HTTP status, when the homeserver answered. */
  readonly httpStatus: number | undefined;
  constructor(room: string, message: string, httpStatus?: number) {
    super(`matrix send to ${room}: ${message}`);
    this.name = "MatrixSendError";
    this.room = room;
    this.httpStatus = httpStatus;
  }
}

/** Content of an m.room.message notice, with Ruriko's own keys namespaced. */
export type NoticeContent = {
  msgtype: "m.notice";
  body: string;
  format: "org.matrix.custom.html";
  formatted_body: string;
  /** Replies and edits (of Ruriko's own request posts). */
  "m.relates_to"?: Record<string, unknown>;
  "m.new_content"?: Record<string, unknown>;
} & Record<`dev.ruriko.${string}`, unknown>;

export class MatrixConnection {
  readonly userId: string;
  private readonly client: MatrixClient;
  private readonly timeoutMs: number;
  /** Room aliases (#…) resolved to room ids: the rooms may be configured either way. */
  private readonly roomIds = new Map<string, string>();

  constructor(options: MatrixConnectionOptions) {
    this.userId = options.userId;
    this.timeoutMs = options.timeoutMs ?? 15_000;
    if (options.log) rootLogSink = options.log;
    this.client = createClient({ baseUrl: options.homeserverUrl, accessToken: options.accessToken, userId: options.userId, localTimeoutMs: this.timeoutMs, logger: sdkLoggerFor(options.log) });
  }

  /** Sends a message event with a caller-chosen transaction id; returns the event id. `room` may be an alias. */
  async send(room: string, content: NoticeContent, txnId: string): Promise<string> {
    try {
      const path = `/rooms/${encodeURIComponent(await this.resolveRoom(room))}/send/m.room.message/${encodeURIComponent(txnId)}`;
      const answer = await this.client.http.authedRequest<{ event_id: string }>(Method.Put, path, undefined, content as unknown as Record<string, unknown>);
      return answer.event_id;
    } catch (error) {
      const e = error as { httpStatus?: number; errcode?: string; message?: string; name?: string };
      const detail = e.errcode ? `${e.errcode} (HTTP ${e.httpStatus})` : e.name === "ConnectionError" || !e.httpStatus ? "the homeserver does not answer" : `HTTP ${e.httpStatus}`;
      throw new MatrixSendError(room, detail, e.httpStatus);
    }
  }

  /**
   * Live text messages from others, once syncing: events from before the start, and Ruriko's own, never
   * reach `handler` (see eventsSince for catching up). The SDK's sync loop retries a homeserver that went away.
   */
  onRoomMessage(handler: (message: IncomingMessage) => void): void {
    this.client.on(RoomEvent.Timeline, (event, room, toStartOfTimeline, _removed, data) => {
      if (toStartOfTimeline || !data?.liveEvent || !room) return;
      const message = messageOf(room.roomId, event.getEffectiveEvent() as RawEvent, this.userId);
      if (message) handler(message);
    });
  }

  /** Live reactions from others, once syncing (same rules as onRoomMessage). */
  onReaction(handler: (reaction: IncomingReaction) => void): void {
    this.client.on(RoomEvent.Timeline, (event, room, toStartOfTimeline, _removed, data) => {
      if (toStartOfTimeline || !data?.liveEvent || !room) return;
      const reaction = reactionOf(room.roomId, event.getEffectiveEvent() as RawEvent, this.userId);
      if (reaction) handler(reaction);
    });
  }

  /** Live redactions by others, once syncing (same rules as onRoomMessage). */
  onRedaction(handler: (redaction: IncomingRedaction) => void): void {
    this.client.on(RoomEvent.Timeline, (event, room, toStartOfTimeline, _removed, data) => {
      if (toStartOfTimeline || !data?.liveEvent || !room) return;
      const redaction = redactionOf(room.roomId, event.getEffectiveEvent() as RawEvent, this.userId);
      if (redaction) handler(redaction);
    });
  }

  /** Called when sync resumes after the homeserver was unreachable (events in the gap may have been skipped). */
  onResumed(handler: () => void): void {
    this.client.on(ClientEvent.Sync, (state, previous) => {
      if (state === "SYNCING" && (previous === "ERROR" || previous === "RECONNECTING")) handler();
    });
  }

  /**
   * The room's events after `eventId`, oldest first, at most `limit`: to catch up on what was said while
   * Ruriko was away. Raw events; the caller parses them.
   */
  async eventsSince(room: string, eventId: string, limit: number): Promise<RawEvent[]> {
    const path = `/rooms/${encodeURIComponent(room)}/context/${encodeURIComponent(eventId)}`;
    const context = await this.client.http.authedRequest<{ end?: string }>(Method.Get, path, { limit: "0" });
    const events: RawEvent[] = [];
    let from = context.end ?? null;
    while (from && events.length < limit) {
      const page = await this.client.createMessagesRequest(room, from, Math.min(100, limit - events.length), Direction.Forward);
      events.push(...(page.chunk as RawEvent[]));
      if (page.chunk.length === 0 || !page.end || page.end === from) break;
      from = page.end;
    }
    return events;
  }

  /** Starts syncing; resolves once the first sync is done (or failed, and retries go on). */
  async startSync(): Promise<void> {
    const ready = new Promise<void>((resolve) => {
      const onSync = (state: string) => {
        if (state === "PREPARED" || state === "SYNCING" || state === "ERROR") {
          this.client.off(ClientEvent.Sync, onSync);
          resolve();
        }
      };
      this.client.on(ClientEvent.Sync, onSync);
    });
    await this.client.startClient({ initialSyncLimit: 0, lazyLoadMembers: true });
    await ready;
  }

  /** Joins a room by id or alias; returns its id. */
  async joinRoom(room: string): Promise<string> {
    const joined = await this.client.joinRoom(room);
    if (room.startsWith("#")) this.roomIds.set(room, joined.roomId);
    return joined.roomId;
  }

  /** The id of a room given by id or alias (an alias is looked up once, then remembered). */
  async resolveRoom(room: string): Promise<string> {
    if (!room.startsWith("#")) return room;
    let id = this.roomIds.get(room);
    if (!id) {
      id = (await this.client.getRoomIdForAlias(room)).room_id;
      this.roomIds.set(room, id);
    }
    return id;
  }


  /** Invites a user to a room Ruriko is in (an agent that may not join by itself). */
  async invite(roomId: string, userId: string): Promise<void> {
    await this.client.invite(roomId, userId);
  }

  stop(): void {
    this.client.stopClient();
  }
}
