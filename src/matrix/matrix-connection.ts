/**
 * Ruriko's Matrix account, through matrix-js-sdk: the one place that talks to the homeserver for sending.
 * Thin: it sends what it is given with the transaction id it is given (so the homeserver deduplicates a
 * resend), and turns failures into MatrixSendError values naming the room. The access token never appears
 * in an error or a log line.
 */
import { ClientEvent, createClient, Method, RoomEvent, type MatrixClient } from "matrix-js-sdk";
import type { Logger as SdkLogger } from "matrix-js-sdk/lib/logger.js";

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
} & Record<`dev.ruriko.${string}`, unknown>;

export interface IncomingMessage {
  room: string;
  eventId: string;
  sender: string;
  body: string;
}

export class MatrixConnection {
  readonly userId: string;
  private readonly client: MatrixClient;
  private readonly timeoutMs: number;

  constructor(options: MatrixConnectionOptions) {
    this.userId = options.userId;
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.client = createClient({ baseUrl: options.homeserverUrl, accessToken: options.accessToken, userId: options.userId, localTimeoutMs: this.timeoutMs, logger: sdkLoggerFor(options.log) });
  }

  /** Sends a message event with a caller-chosen transaction id; returns the event id. */
  async send(room: string, content: NoticeContent, txnId: string): Promise<string> {
    const path = `/rooms/${encodeURIComponent(room)}/send/m.room.message/${encodeURIComponent(txnId)}`;
    try {
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
   * reach `handler`. The SDK's sync loop retries a homeserver that went away by itself.
   */
  onRoomMessage(handler: (message: IncomingMessage) => void): void {
    this.client.on(RoomEvent.Timeline, (event, room, toStartOfTimeline, _removed, data) => {
      if (toStartOfTimeline || !data?.liveEvent || !room) return;
      if (event.getType() !== "m.room.message" || event.getSender() === this.userId) return;
      const content = event.getContent() as { body?: unknown };
      const eventId = event.getId();
      if (typeof content.body !== "string" || !eventId) return;
      handler({ room: room.roomId, eventId, sender: event.getSender() ?? "", body: content.body });
    });
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

  async joinRoom(room: string): Promise<string> {
    const joined = await this.client.joinRoom(room);
    return joined.roomId;
  }

  stop(): void {
    this.client.stopClient();
  }
}
