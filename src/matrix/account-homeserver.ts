/**
 * The homeserver, as the agents' accounts see it: Synapse's shared-secret registration, then the plain
 * client-server API with each account's own token (matrix-js-sdk). Deactivation authenticates with the
 * account's password, so Ruriko needs no server-admin rights. Errors are MatrixAccountError values naming
 * the call and the account; they never carry a token, a password or the shared secret.
 */
import { createClient, type MatrixClient } from "matrix-js-sdk";
import { registerWithSharedSecret, type SynapseAdminError } from "./synapse-admin.ts";

export class MatrixAccountError extends Error {
  readonly call: string;
  readonly account: string;
  readonly errcode: string | undefined;
  readonly httpStatus: number | undefined;
  constructor(call: string, account: string, detail: string, extra: { errcode?: string | undefined; httpStatus?: number | undefined } = {}) {
    super(`${call} ${account}: ${detail}`);
    this.name = "MatrixAccountError";
    this.call = call;
    this.account = account;
    this.errcode = extra.errcode;
    this.httpStatus = extra.httpStatus;
  }

  /** The homeserver did not answer, or failed on its side: try again later; nothing is wrong with the account. */
  get unreachable(): boolean {
    return this.httpStatus === undefined || this.httpStatus >= 500;
  }
}

export interface Session {
  userId: string;
  accessToken: string;
}

const TIMEOUT_MS = 15_000;

/**
 * A timeout per request through fetch itself: the SDK's own (localTimeoutMs) leaves a timer behind for
 * every request, which would keep a process alive long after it is done.
 */
const fetchWithTimeout: typeof fetch = (input, init) =>
  fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(TIMEOUT_MS)]) : AbortSignal.timeout(TIMEOUT_MS) });

export class AccountHomeserver {
  private readonly baseUrl: string;

  constructor(baseUrl: string) {
    this.baseUrl = baseUrl;
  }

  async register(sharedSecret: string, localpart: string, password: string, displayName: string | null): Promise<Session> {
    try {
      const user = await registerWithSharedSecret(this.baseUrl, sharedSecret, { username: localpart, password, ...(displayName ? { displayname: displayName } : {}) });
      return { userId: user.userId, accessToken: user.accessToken };
    } catch (error) {
      const e = error as SynapseAdminError;
      throw new MatrixAccountError("register", localpart, e.message.replace(/^synapse admin /, ""), { errcode: e.errcode, httpStatus: e.status });
    }
  }

  /** A new access token for the account (a new device named after Ruriko). */
  async login(localpart: string, password: string): Promise<Session> {
    const answer = await this.call("log in", localpart, this.client(), (c) =>
      c.loginRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: localpart }, password, initial_device_display_name: "ruriko (provisioned agent)" }),
    );
    return { userId: answer.user_id, accessToken: answer.access_token };
  }

  /** Who the token belongs to; throws (M_UNKNOWN_TOKEN, 401) when the token no longer works. */
  async whoami(session: Session): Promise<string> {
    return (await this.call("check the token of", session.userId, this.client(session), (c) => c.whoami())).user_id;
  }

  async setDisplayName(session: Session, name: string): Promise<void> {
    await this.call("set the display name of", session.userId, this.client(session), (c) => c.setDisplayName(name));
  }

  async resolveAlias(session: Session, alias: string): Promise<string> {
    return (await this.call(`resolve ${alias} for`, session.userId, this.client(session), (c) => c.getRoomIdForAlias(alias))).room_id;
  }

  /** Joins the account to a room (by id or alias); returns the room id. */
  async join(session: Session, room: string): Promise<string> {
    return (await this.call(`join ${room} as`, session.userId, this.client(session), (c) => c.joinRoom(room))).roomId;
  }

  async leave(session: Session, roomId: string): Promise<void> {
    await this.call(`leave ${roomId} as`, session.userId, this.client(session), (c) => c.leave(roomId));
  }

  /** Deactivates the account for good, authenticating with its password (user-interactive auth in one step). */
  async deactivate(session: Session, password: string): Promise<void> {
    await this.call("deactivate", session.userId, this.client(session), (c) =>
      c.deactivateAccount({ type: "m.login.password", identifier: { type: "m.id.user", user: session.userId }, password }, false),
    );
  }

  private client(session?: Session): MatrixClient {
    return createClient({ baseUrl: this.baseUrl, fetchFn: fetchWithTimeout, ...(session ? { accessToken: session.accessToken, userId: session.userId } : {}) });
  }

  private async call<T>(what: string, account: string, client: MatrixClient, request: (c: MatrixClient) => Promise<T>): Promise<T> {
    try {
      return await request(client);
    } catch (error) {
      const e = error as { errcode?: string; httpStatus?: number; data?: { error?: string } };
      const detail = e.errcode ? `${e.errcode}${e.data?.error ? ` (${e.data.error})` : ""}` : e.httpStatus ? `HTTP ${e.httpStatus}` : "the homeserver does not answer";
      throw new MatrixAccountError(what, account, detail, { errcode: e.errcode, httpStatus: e.httpStatus });
    }
  }
}
