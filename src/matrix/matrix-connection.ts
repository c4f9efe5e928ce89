/**
 * Ruriko's Matrix account, through matrix-js-sdk: the one place that talks to the homeserver for sending.
 * Thin: it sends what it is given with the transaction id it is given (so the homeserver deduplicates a
 * resend), and turns failures into MatrixSendError values naming the room. The access token never appears
 * in an error or a log line.
 */
import { createClient, Method, type MatrixClient } from "matrix-js-sdk";
import { logger as sdkLogger } from "matrix-js-sdk/lib/logger.js";

export interface MatrixConnectionOptions {
  homeserverUrl: string;
  userId: string;
  accessToken: string;
  /** Per-request timeout. */
  timeoutMs?: number;
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

let sdkQuiet = false;

export class MatrixConnection {
  readonly userId: string;
  private readonly client: MatrixClient;
  private readonly timeoutMs: number;

  constructor(options: MatrixConnectionOptions) {
    if (!sdkQuiet) {
      // The SDK logs at debug to the console by default; Ruriko logs through pino.
      (sdkLogger as unknown as { setLevel(level: string): void }).setLevel("warn");
      sdkQuiet = true;
    }
    this.userId = options.userId;
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.client = createClient({ baseUrl: options.homeserverUrl, accessToken: options.accessToken, userId: options.userId, localTimeoutMs: this.timeoutMs });
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

  async joinRoom(room: string): Promise<string> {
    const joined = await this.client.joinRoom(room);
    return joined.roomId;
  }

  stop(): void {
    this.client.stopClient();
  }
}
