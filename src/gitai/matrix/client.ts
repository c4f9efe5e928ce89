/**
 * The agent's Matrix client: the handful of Client-Server API calls an agent makes (sync, join, send, typing,
 * resolve an alias), over fetch. Not matrix-js-sdk, which Ruriko itself uses: every agent is a container, and
 * loading the SDK alone costs each agent about 30 MB more memory, before any sync state (docs/performance.md),
 * for features an agent that answers in a few rooms does not use. Errors are MatrixApiError values naming the call, never the token.
 */
import { randomBytes } from "node:crypto";

export interface MatrixIdentity {
  homeserver: string;
  userId: string;
  accessToken: string;
}

export class MatrixApiError extends Error {
  readonly call: string;
  /** Undefined when the homeserver did not answer. */
  readonly httpStatus: number | undefined;
  readonly errcode: string | undefined;
  constructor(call: string, message: string, httpStatus?: number, errcode?: string) {
    super(`${call}: ${message}`);
    this.name = "MatrixApiError";
    this.call = call;
    this.httpStatus = httpStatus;
    this.errcode = errcode;
  }

  /** The access token is no longer valid: only a new one helps. */
  get tokenRefused(): boolean {
    return this.httpStatus === 401;
  }
}

/** The parts of a /sync answer the agent reads. */
export interface SyncResponse {
  next_batch: string;
  rooms?: {
    join?: Record<string, { timeline?: { events?: RawEvent[] }; state?: { events?: RawEvent[] } }>;
    invite?: Record<string, unknown>;
  };
}

export interface RawEvent {
  type?: string;
  event_id?: string;
  sender?: string;
  state_key?: string;
  content?: Record<string, unknown>;
  /** The redacted event, in room versions before 11 (from 11 on it is in the content). */
  redacts?: string;
}

/**
 * Only what the agent acts on: messages, reactions and redactions (votes on its approval requests, and their
 * withdrawal), and whether a room is encrypted (it cannot read those). No presence,
 * no account data, no receipts: less for the homeserver to send and for the agent to parse.
 */
const syncFilter = (nonce: string) => JSON.stringify({
  // A no-op exclusion unique to this client: homeservers cache /sync answers by request (Synapse for 2 minutes),
  // and an agent restarted with the same token would otherwise be handed its previous process's first sync —
  // a stale position from which it would answer every message since then a second time.
  presence: { types: [], not_types: [`dev.ruriko.client.${nonce}`] },
  account_data: { types: [] },
  room: {
    timeline: { types: ["m.room.message", "m.reaction", "m.room.redaction", "m.room.encryption"], limit: 50 },
    state: { types: ["m.room.encryption"], lazy_load_members: true },
    ephemeral: { types: [] },
    account_data: { types: [] },
  },
});

export class MatrixClient {
  readonly userId: string;
  private readonly base: string;
  private readonly token: string;
  private txn = 0;
  private readonly filter = syncFilter(randomBytes(6).toString("hex"));

  constructor(identity: MatrixIdentity) {
    this.userId = identity.userId;
    this.base = identity.homeserver.replace(/\/+$/, "");
    this.token = identity.accessToken;
  }

  /** One long poll: new events since `since` (none: the current state, whose history the caller skips). */
  sync(since: string | undefined, timeoutMs: number, signal?: AbortSignal): Promise<SyncResponse> {
    const query = new URLSearchParams({ filter: this.filter, timeout: String(since ? timeoutMs : 0), ...(since ? { since } : {}) });
    return this.call<SyncResponse>("sync", "GET", `/sync?${query}`, undefined, { timeoutMs: timeoutMs + 15_000, ...(signal ? { signal } : {}) });
  }

  async join(room: string): Promise<string> {
    return (await this.call<{ room_id: string }>("join", "POST", `/join/${encodeURIComponent(room)}`, {})).room_id;
  }

  async resolveAlias(alias: string): Promise<string> {
    return (await this.call<{ room_id: string }>("resolve alias", "GET", `/directory/room/${encodeURIComponent(alias)}`)).room_id;
  }

  /** Sends a message; the transaction id makes a retried send one message, not two. */
  async send(room: string, content: Record<string, unknown>): Promise<string> {
    const txn = `gitai-${Date.now().toString(36)}-${(this.txn++).toString(36)}`;
    return (await this.call<{ event_id: string }>("send", "PUT", `/rooms/${encodeURIComponent(room)}/send/m.room.message/${txn}`, content)).event_id;
  }

  async typing(room: string, typing: boolean): Promise<void> {
    await this.call("typing", "PUT", `/rooms/${encodeURIComponent(room)}/typing/${encodeURIComponent(this.userId)}`, typing ? { typing, timeout: 30_000 } : { typing });
  }

  private async call<T>(name: string, method: string, path: string, body?: unknown, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    const signals = [AbortSignal.timeout(options.timeoutMs ?? 30_000), ...(options.signal ? [options.signal] : [])];
    let response: Response;
    try {
      response = await fetch(`${this.base}/_matrix/client/v3${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.any(signals),
      });
    } catch (error) {
      if ((error as Error).name === "TimeoutError") throw new MatrixApiError(name, "the homeserver did not answer in time");
      // fetch says "fetch failed"; its cause says why (ECONNREFUSED, ENOTFOUND, …). Never the URL's token: there is none in it.
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new MatrixApiError(name, `the homeserver does not answer (${cause?.code ?? cause?.message ?? (error as Error).message})`);
    }
    const text = await response.text();
    if (!response.ok) {
      const parsed = safeJson(text) as { errcode?: string; error?: string } | undefined;
      throw new MatrixApiError(name, `${parsed?.errcode ?? "HTTP"} ${response.status}${parsed?.error ? `: ${parsed.error.slice(0, 200)}` : ""}`, response.status, parsed?.errcode);
    }
    return (safeJson(text) ?? {}) as T;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
