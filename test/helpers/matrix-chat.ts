/**
 * A person on Matrix, as the agent tests and benchmarks see one: raw Client-Server API calls (what is said in a
 * room, and what was said there, replies marked), and for the benchmarks an Asker — one /sync long poll
 * (timeout=30000) that notes when each reply arrives, so a turn is timed from just before the PUT that asks to
 * the moment the asker's own client is told the answer.
 */
import { createServer, type Server } from "node:http";

export interface MatrixUser {
  userId: string;
  accessToken: string;
}

/** Only messages: no presence, receipts or typing notices to wake the long poll between a question and its answer. */
const FILTER = JSON.stringify({
  presence: { types: [] },
  account_data: { types: [] },
  room: { timeline: { types: ["m.room.message"], limit: 50 }, state: { types: [] }, ephemeral: { types: [] }, account_data: { types: [] } },
});

interface SyncBody {
  next_batch: string;
  rooms?: { join?: Record<string, { timeline?: { events?: Array<{ type?: string; sender?: string; content?: Record<string, unknown> }> } }> };
}

export async function matrixApi(baseUrl: string, token: string, method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Record<string, unknown>> {
  const r = await fetch(`${baseUrl}/_matrix/client/v3${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    ...(signal ? { signal } : {}),
  });
  const json = (await r.json()) as Record<string, unknown>;
  if (!r.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json)}`);
  return json;
}

/** A message in a room's timeline. */
export interface Chat {
  eventId: string;
  sender: string;
  body: string;
  inReplyTo?: string;
}

/** Says `body` in `room`; the event id. */
export async function say(baseUrl: string, user: MatrixUser, room: string, body: string): Promise<string> {
  const txn = `t${Date.now()}${Math.random().toString(36).slice(2)}`;
  return (await matrixApi(baseUrl, user.accessToken, "PUT", `/rooms/${encodeURIComponent(room)}/send/m.room.message/${txn}`, { msgtype: "m.text", body })).event_id as string;
}

/** The last messages of `room` as `reader` sees them, oldest first. */
export async function timeline(baseUrl: string, reader: MatrixUser, room: string, limit = 200): Promise<Chat[]> {
  const page = await matrixApi(baseUrl, reader.accessToken, "GET", `/rooms/${encodeURIComponent(room)}/messages?dir=b&limit=${limit}`);
  return (page.chunk as Array<{ type: string; event_id: string; sender: string; content: Record<string, unknown> }>)
    .filter((e) => e.type === "m.room.message")
    .map((e) => {
      const replyTo = inReplyTo(e.content);
      return { eventId: e.event_id, sender: e.sender, body: String(e.content.body), ...(replyTo ? { inReplyTo: replyTo } : {}) };
    })
    .reverse();
}

/** A loopback HTTP server the agent's tools read: `pages` by path, anything else "other"; every path asked is noted. */
export async function startPageServer(pages: Record<string, string>): Promise<{ url: string; hits: string[]; server: Server }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? "");
    res.end(pages[req.url ?? ""] ?? "other");
  }).listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, hits, server };
}

/** The event a message answers (`m.relates_to.m.in_reply_to`), if it is a reply. */
export function inReplyTo(content: Record<string, unknown> | undefined): string | undefined {
  const relation = content?.["m.relates_to"] as { "m.in_reply_to"?: { event_id?: unknown } } | undefined;
  const id = relation?.["m.in_reply_to"]?.event_id;
  return typeof id === "string" ? id : undefined;
}

/** One room-independent asker: sends questions and is told, by its own long poll, when each one is answered. */
export class Asker {
  private readonly baseUrl: string;
  private readonly user: MatrixUser;
  private readonly abort = new AbortController();
  /** Asked event id → performance.now() when this client's sync delivered a reply to it. */
  private readonly answered = new Map<string, number>();
  private readonly waiters = new Map<string, { resolve: () => void; reject: (error: Error) => void }>();
  /** Why the long poll stopped, if it failed: every wait fails with it rather than timing out. */
  private failed: Error | undefined;
  private txn = 0;
  private loop: Promise<void> | undefined;

  constructor(baseUrl: string, user: MatrixUser) {
    this.baseUrl = baseUrl;
    this.user = user;
  }

  /** Starts listening from now on (the first sync only sets the starting point). */
  async start(): Promise<void> {
    const first = await this.sync(undefined);
    this.loop = this.poll(first.next_batch);
  }

  /** Sends `body` in `room`; `sentAt` is taken just before the PUT. */
  async ask(room: string, body: string): Promise<{ eventId: string; sentAt: number }> {
    const sentAt = performance.now();
    const path = `/rooms/${encodeURIComponent(room)}/send/m.room.message/bench-${Date.now().toString(36)}-${this.txn++}`;
    const { event_id } = await matrixApi(this.baseUrl, this.user.accessToken, "PUT", path, { msgtype: "m.text", body });
    return { eventId: event_id as string, sentAt };
  }

  /** When the reply to `eventId` reached this client (performance.now()). */
  async answeredAt(eventId: string, timeoutMs = 60_000): Promise<number> {
    if (this.failed) throw this.failed;
    if (!this.answered.has(eventId)) {
      // Woken by the sync loop rather than polled: no timers of ours compete with what is measured.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve, reject) => this.waiters.set(eventId, { resolve, reject })),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no reply to ${eventId} within ${timeoutMs} ms`)), timeoutMs))),
      ]).finally(() => {
        clearTimeout(timer);
        this.waiters.delete(eventId);
      });
    }
    return this.answered.get(eventId)!;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private sync(since: string | undefined): Promise<SyncBody> {
    const query = new URLSearchParams({ filter: FILTER, timeout: since ? "30000" : "0", ...(since ? { since } : {}) });
    return matrixApi(this.baseUrl, this.user.accessToken, "GET", `/sync?${query}`, undefined, this.abort.signal) as Promise<unknown> as Promise<SyncBody>;
  }

  private async poll(since: string): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        const body = await this.sync(since);
        const at = performance.now();
        for (const joined of Object.values(body.rooms?.join ?? {})) {
          for (const e of joined.timeline?.events ?? []) {
            const asked = e.type === "m.room.message" && e.sender !== this.user.userId ? inReplyTo(e.content) : undefined;
            if (asked && !this.answered.has(asked)) {
              this.answered.set(asked, at);
              this.waiters.get(asked)?.resolve();
            }
          }
        }
        since = body.next_batch;
      } catch (error) {
        if (this.abort.signal.aborted) return;
        // Not thrown from here: nobody awaits the loop until stop(), and the bench must still clean up.
        this.failed = new Error(`alice's /sync failed: ${(error as Error).message}`);
        for (const w of this.waiters.values()) w.reject(this.failed);
        return;
      }
    }
  }
}
