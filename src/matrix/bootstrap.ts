/**
 * `ruriko bootstrap` (docs/matrix.md#bootstrap): Ruriko's own Matrix account, its status and approval rooms, and
 * the operators invited to them, made idempotently. Each step looks first and acts only on a difference, so a
 * second run changes nothing, and a run cut short is finished by the next.
 *
 * The account is registered with Synapse's shared secret, under a password derived from that secret: a later
 * run can log in again without anything stored (whoever holds the secret can create admin accounts anyway, so
 * the derivation gives nothing away). A token from an earlier run that still works is kept, so no device is
 * added either. Errors are BootstrapError values naming the step; they never carry a token, a password or the
 * shared secret.
 */
import { createHmac } from "node:crypto";
import { createClient, Preset, Visibility, type MatrixClient } from "matrix-js-sdk";
import type { Logger as SdkLogger } from "matrix-js-sdk/lib/logger.js";
import { registerWithSharedSecret, SynapseAdminError } from "./synapse-admin.ts";

export class BootstrapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BootstrapError";
  }
}

export interface Session {
  userId: string;
  accessToken: string;
}

export interface RoomRequest {
  role: "status" | "approvals";
  /** The alias's localpart: the room is `#<alias>:<server>`. */
  alias: string;
  name: string;
  topic: string;
}

/** What bootstrap needs of the homeserver; each call answers the expected "no" as a value, anything else throws. */
export interface BootstrapHomeserver {
  /** Whose token this is; undefined when it does not work (logged out, unknown). */
  whoami(accessToken: string): Promise<string | undefined>;
  register(sharedSecret: string, localpart: string, password: string, displayName: string): Promise<Session | "taken">;
  login(localpart: string, password: string): Promise<Session | "refused">;
  resolveAlias(alias: string): Promise<string | undefined>;
  joinedRooms(session: Session): Promise<string[]>;
  join(session: Session, roomId: string): Promise<void>;
  createRoom(session: Session, room: RoomRequest, invite: readonly string[]): Promise<string | "alias-taken">;
  /** The user's membership in the room ("join", "invite", "leave", "ban", …); undefined when never a member. */
  membership(session: Session, roomId: string, userId: string): Promise<string | undefined>;
  invite(session: Session, roomId: string, userId: string): Promise<void>;
}

export interface BootstrapInput {
  user: { localpart: string; server?: string };
  operators: readonly string[];
  rooms: readonly RoomRequest[];
  registrationSecret?: string;
  /** A token from an earlier run (the token file, RURIKO_MATRIX_ACCESS_TOKEN) and where it came from. */
  heldToken?: { value: string; origin: string };
  /** Told every change as it is made. */
  onChange: (what: string) => void;
  /** Told the session as soon as there is one, before the rooms: a new token is stored even if a room fails. */
  onSession: (session: Session, issued: boolean) => void;
}

export interface BootstrapResult {
  session: Session;
  /** A new access token was issued (registration or login): it must be stored. */
  tokenIssued: boolean;
  rooms: Array<{ role: RoomRequest["role"]; alias: string; roomId: string }>;
  changes: string[];
  /** What could not be done and needs a person (an operator banned from a room). */
  problems: string[];
}

const LOCALPART = /^[a-z0-9._=\-/+]+$/;

/** `ruriko` or `@ruriko:example.org`. */
export function parseBootstrapUser(text: string): { ok: true; value: { localpart: string; server?: string } } | { ok: false; problem: string } {
  const match = /^@([^:]+):(.+)$/.exec(text.trim());
  const localpart = match ? match[1]! : text.trim();
  if (!LOCALPART.test(localpart)) return { ok: false, problem: `${JSON.stringify(text)} is not a Matrix localpart or user id (lower-case letters, digits and ._=-/+)` };
  return { ok: true, value: { localpart, ...(match ? { server: match[2]! } : {}) } };
}

export const isUserId = (text: string): boolean => /^@[^:\s]+:[^\s]+$/.test(text);

/** The server part of a user id (`@ruriko:example.org:8448` → `example.org:8448`). */
export const serverNameOf = (userId: string): string => userId.slice(userId.indexOf(":") + 1);

/** The account's password: derived from the registration secret, so that no run needs to keep one. */
export function bootstrapPassword(sharedSecret: string, localpart: string): string {
  return createHmac("sha256", sharedSecret).update(`ruriko bootstrap password\0${localpart}`).digest("base64url");
}

const wanted = (user: BootstrapInput["user"]) => (user.server ? `@${user.localpart}:${user.server}` : `@${user.localpart}:…`);

function isWantedUser(user: BootstrapInput["user"], userId: string): boolean {
  const parsed = parseBootstrapUser(userId);
  return parsed.ok && parsed.value.localpart === user.localpart && (!user.server || parsed.value.server === user.server);
}

/** The account and a working token: the held one if it still works, else registered, else logged in. */
async function ensureSession(hs: BootstrapHomeserver, input: BootstrapInput, changes: string[]): Promise<{ session: Session; issued: boolean }> {
  const { user, heldToken } = input;
  if (heldToken) {
    const owner = await hs.whoami(heldToken.value);
    if (owner && !isWantedUser(user, owner)) throw new BootstrapError(`the token in ${heldToken.origin} belongs to ${owner}, not ${wanted(user)}`);
    if (owner) return { session: { userId: owner, accessToken: heldToken.value }, issued: false };
    changes.push(`the token in ${heldToken.origin} no longer works`);
  }
  const secret = input.registrationSecret;
  if (!secret) {
    throw new BootstrapError(`no working token for ${wanted(user)} and no registration secret: set RURIKO_MATRIX_REGISTRATION_SECRET or RURIKO_MATRIX_REGISTRATION_SECRET_FILE (Synapse's registration_shared_secret)`);
  }
  const password = bootstrapPassword(secret, user.localpart);
  const registered = await hs.register(secret, user.localpart, password, "Ruriko");
  let session: Session;
  if (registered !== "taken") {
    session = registered;
    changes.push(`created account ${session.userId}`);
  } else {
    const login = await hs.login(user.localpart, password);
    if (login === "refused") {
      throw new BootstrapError(
        `${wanted(user)} exists, and its password is not the one bootstrap derives from the registration secret (made another way, or the secret changed): give a token for it in --token-file or RURIKO_MATRIX_ACCESS_TOKEN, or choose another --matrix-user`,
      );
    }
    session = login;
    changes.push(`logged in as ${session.userId} (a new access token)`);
  }
  if (!isWantedUser(user, session.userId)) throw new BootstrapError(`the homeserver made ${session.userId}, not ${wanted(user)}: check --matrix-user against the homeserver's server_name`);
  return { session, issued: true };
}

/** Runs every step; see the module comment. */
export async function bootstrapMatrix(hs: BootstrapHomeserver, input: BootstrapInput): Promise<BootstrapResult> {
  const changes: string[] = [];
  const problems: string[] = [];
  const changed = (what: string) => {
    changes.push(what);
    input.onChange(what);
  };
  const sessionChanges: string[] = [];
  const { session, issued } = await ensureSession(hs, input, sessionChanges);
  sessionChanges.forEach(changed);
  input.onSession(session, issued);

  const server = serverNameOf(session.userId);
  const joined = new Set(await hs.joinedRooms(session));
  const rooms: BootstrapResult["rooms"] = [];
  for (const room of input.rooms) {
    const alias = `#${room.alias}:${server}`;
    let roomId = await hs.resolveAlias(alias);
    let invited = new Set<string>();
    if (!roomId) {
      const created = await hs.createRoom(session, room, input.operators);
      // Taken between the look and the create (another run): use that room.
      roomId = created === "alias-taken" ? await hs.resolveAlias(alias) : created;
      if (!roomId) throw new BootstrapError(`${alias}: the alias is taken, yet does not resolve`);
      if (created !== "alias-taken") {
        changed(`created room ${alias} (${roomId})${input.operators.length > 0 ? `, inviting ${input.operators.join(", ")}` : ""}`);
        invited = new Set(input.operators);
        joined.add(roomId);
      }
    }
    if (!joined.has(roomId)) {
      await hs.join(session, roomId).catch((error: unknown) => {
        throw new BootstrapError(`${alias} exists and ${session.userId} cannot join it (${(error as Error).message}): invite ${session.userId} to it, or choose another alias`);
      });
      changed(`joined ${alias} (${roomId})`);
    }
    for (const operator of input.operators) {
      if (invited.has(operator)) continue;
      const membership = await hs.membership(session, roomId, operator);
      if (membership === "join" || membership === "invite") continue;
      if (membership === "ban") {
        problems.push(`${operator} is banned from ${alias}: not invited (unban them in the room)`);
        continue;
      }
      await hs.invite(session, roomId, operator);
      changed(`invited ${operator} to ${alias}`);
    }
    rooms.push({ role: room.role, alias, roomId });
  }
  return { session, tokenIssued: issued, rooms, changes, problems };
}

const TIMEOUT_MS = 15_000;
const fetchWithTimeout: typeof fetch = (input, init) =>
  fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(TIMEOUT_MS)]) : AbortSignal.timeout(TIMEOUT_MS) });

type SdkError = { errcode?: string; httpStatus?: number; data?: { error?: string } };

/** The SDK logs every request to the console by default: stdout carries the configuration, and errors speak for themselves. */
const quiet: SdkLogger = { trace: () => {}, debug: () => {}, info: () => {}, warn: () => {}, error: () => {}, getChild: () => quiet };

/** The homeserver through matrix-js-sdk and Synapse's admin registration: a thin adapter, errors named by step. */
export class SynapseBootstrapHomeserver implements BootstrapHomeserver {
  private readonly baseUrl: string;

  constructor(baseUrl: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
  }

  async whoami(accessToken: string): Promise<string | undefined> {
    try {
      return (await this.client({ accessToken }).whoami()).user_id;
    } catch (error) {
      const e = error as SdkError;
      if (e.errcode === "M_UNKNOWN_TOKEN" || e.httpStatus === 401) return undefined;
      throw this.fail("check the held token", error);
    }
  }

  async register(sharedSecret: string, localpart: string, password: string, displayName: string): Promise<Session | "taken"> {
    try {
      const user = await registerWithSharedSecret(this.baseUrl, sharedSecret, { username: localpart, password, displayname: displayName });
      return { userId: user.userId, accessToken: user.accessToken };
    } catch (error) {
      if (error instanceof SynapseAdminError && error.errcode === "M_USER_IN_USE") return "taken";
      throw new BootstrapError(`register ${localpart}: ${(error as Error).message.replace(/^synapse admin /, "")}`);
    }
  }

  async login(localpart: string, password: string): Promise<Session | "refused"> {
    try {
      const answer = await this.client().loginRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: localpart }, password, initial_device_display_name: "ruriko" });
      return { userId: answer.user_id, accessToken: answer.access_token };
    } catch (error) {
      if ((error as SdkError).errcode === "M_FORBIDDEN") return "refused";
      throw this.fail(`log in as ${localpart}`, error);
    }
  }

  async resolveAlias(alias: string): Promise<string | undefined> {
    try {
      return (await this.client().getRoomIdForAlias(alias)).room_id;
    } catch (error) {
      if ((error as SdkError).errcode === "M_NOT_FOUND" || (error as SdkError).httpStatus === 404) return undefined;
      throw this.fail(`resolve ${alias}`, error);
    }
  }

  async joinedRooms(session: Session): Promise<string[]> {
    try {
      return (await this.client(session).getJoinedRooms()).joined_rooms;
    } catch (error) {
      throw this.fail("list joined rooms", error);
    }
  }

  async join(session: Session, roomId: string): Promise<void> {
    try {
      await this.client(session).joinRoom(roomId);
    } catch (error) {
      throw this.fail(`join ${roomId}`, error);
    }
  }

  async createRoom(session: Session, room: RoomRequest, invite: readonly string[]): Promise<string | "alias-taken"> {
    try {
      const created = await this.client(session).createRoom({
        room_alias_name: room.alias,
        name: room.name,
        topic: room.topic,
        // Invite-only and out of the directory. Power levels are the preset's (Ruriko, the creator, administers):
        // an override of `users` would replace the creator's level in older room versions, and is refused for the
        // creator in room version 12.
        preset: Preset.PrivateChat,
        visibility: Visibility.Private,
        invite: [...invite],
      });
      return created.room_id;
    } catch (error) {
      if ((error as SdkError).errcode === "M_ROOM_IN_USE") return "alias-taken";
      throw this.fail(`create room #${room.alias}`, error);
    }
  }

  async membership(session: Session, roomId: string, userId: string): Promise<string | undefined> {
    try {
      return ((await this.client(session).getStateEvent(roomId, "m.room.member", userId)) as { membership?: string }).membership;
    } catch (error) {
      if ((error as SdkError).errcode === "M_NOT_FOUND" || (error as SdkError).httpStatus === 404) return undefined;
      throw this.fail(`read the membership of ${userId} in ${roomId}`, error);
    }
  }

  async invite(session: Session, roomId: string, userId: string): Promise<void> {
    try {
      await this.client(session).invite(roomId, userId);
    } catch (error) {
      throw this.fail(`invite ${userId} to ${roomId}`, error);
    }
  }

  private client(session?: Pick<Session, "accessToken"> & Partial<Session>): MatrixClient {
    return createClient({ baseUrl: this.baseUrl, fetchFn: fetchWithTimeout, logger: quiet, ...(session ? { accessToken: session.accessToken, ...(session.userId ? { userId: session.userId } : {}) } : {}) });
  }

  private fail(step: string, error: unknown): BootstrapError {
    const e = error as SdkError;
    const detail = e.errcode ? `${e.errcode}${e.data?.error ? ` (${e.data.error})` : ""}` : e.httpStatus ? `HTTP ${e.httpStatus}` : `the homeserver at ${this.baseUrl} does not answer`;
    return new BootstrapError(`${step}: ${detail}`);
  }
}
