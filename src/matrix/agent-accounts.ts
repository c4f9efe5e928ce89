/**
 * Matrix accounts for agents that ask for one (`spec.matrix.provision: true`), kept level-triggered like
 * the controller but beside it, so that reconciling an agent never waits on the homeserver:
 *
 * - an agent Ruriko runs (its container exists: a creation parked for approval gets no account) and that
 *   wants an account gets one (shared-secret registration), its token and password sealed in the secret
 *   store, and is joined to the rooms its Gosuto trusts — and leaves those it no longer trusts, among those
 *   Ruriko joined it to;
 * - a token that stopped working is replaced by logging in again with the password;
 * - the account of an agent that is gone (removed from the manifests and, after approval, from Docker) is
 *   deactivated, and its credentials forgotten.
 *
 * Whenever an agent's token or account changes, its key is handed to the controller, which delivers the
 * identity over ACP. An unreachable or busy homeserver is retried with backoff and held against nobody; a
 * refusal (a room Ruriko cannot get the agent into, a user id taken) is recorded on the account, so the
 * agent's status says why.
 */
import { randomBytes } from "node:crypto";
import { parse } from "yaml";
import type { AgentManifest, GosutoManifest } from "../api/generated/types.ts";
import { objectKey } from "../api/kinds.ts";
import { objectsOfKind, type Snapshot } from "../api/snapshot.ts";
import { provisionedPasswordSecret, provisionedTokenSecret, agentRoomsOf } from "../controller/agent-config.ts";
import { newTraceId, type Logger } from "../observability/logger.ts";
import type { AppliedGosuto } from "../store/applied-config-store.ts";
import type { AuditLog } from "../store/audit-log.ts";
import type { MatrixAccount, MatrixAccountStore } from "../store/matrix-account-store.ts";
import type { SecretStore } from "../store/secret-store.ts";
import { BackoffTracker, type BackoffPolicy } from "../time/backoff.ts";
import { MatrixAccountError, type AccountHomeserver, type Session } from "./account-homeserver.ts";
import type { StatusLine } from "./status-messages.ts";

export interface AgentAccountsOptions {
  homeserver: AccountHomeserver;
  /** Synapse's registration_shared_secret, read when needed (it may be stored after Ruriko started). */
  registrationSecret: () => string | undefined;
  accounts: MatrixAccountStore;
  secrets: SecretStore;
  audit: AuditLog;
  /** Writes to several stores land together or not at all. */
  transaction: <T>(fn: () => T) => T;
  /** The snapshot in force. */
  desired: () => Snapshot | undefined;
  /** The Gosuto Ruriko applied to an agent: its trust decides the rooms the account is joined to. */
  appliedGosuto: (agent: string) => AppliedGosuto | null;
  /** True while Ruriko runs the agent (its container exists; a removal waiting for approval keeps it). */
  runs: (agent: string) => boolean;
  /** Ruriko's own rooms (status, approvals), by id: it never invites an agent into them. */
  isControlRoom: (roomId: string) => Promise<boolean>;
  /** Ruriko invites the agent to a room it cannot join by itself (Ruriko must be in that room). */
  invite: (roomId: string, userId: string) => Promise<void>;
  /** The agent's identity changed: reconcile it (deliver the token, or update its condition). */
  onAccountChanged: (agent: string, traceId: string) => void;
  /** Writes a status line to the outbox: called in the transaction that records what it tells of. */
  report: (line: StatusLine) => void;
  logger: Logger;
  /** How often every account is looked at even without a new snapshot. */
  intervalMs?: number;
  /** How often a token is checked against the homeserver. */
  verifyEveryMs?: number;
  now?: () => number;
}

/** What an agent's account should be, from the snapshot. */
interface WantedAccount {
  agent: string;
  displayName: string | null;
  rooms: string[];
}

/** A refusal by the homeserver, or missing configuration: recorded on the account and shown in the agent's status. */
class AccountProblem extends Error {}

/** Per agent: a homeserver back within seconds is noticed soon, one away for long is asked every few minutes. */
const RETRY: BackoffPolicy = { baseMs: 2000, maxMs: 5 * 60_000, jitter: 0.2 };

/**
 * `newsbot` for the first account, `newsbot.2` after that one was deactivated (homeservers never reuse a
 * user id). Agent names are DNS labels, without dots, so no agent's first account can take that name.
 */
export const localpartFor = (agent: string, previousAccounts: number) => (previousAccounts === 0 ? agent : `${agent}.${previousAccounts + 1}`);

/**
 * The accounts the snapshot asks for. Their rooms come from the Gosuto Ruriko applied to each agent, never from
 * one still waiting for approval: a trust change that is parked joins nobody anywhere.
 */
export function wantedAccounts(snapshot: Snapshot, appliedGosuto: (agent: string) => AppliedGosuto | null): Map<string, WantedAccount> {
  const wanted = new Map<string, WantedAccount>();
  for (const { name, object } of objectsOfKind(snapshot, "Agent")) {
    const spec = (object as AgentManifest).spec;
    if (!spec.matrix?.provision) continue;
    const applied = appliedGosuto(name);
    const desired = snapshot.objects.get(objectKey("Gosuto", spec.gosuto));
    // Applied before Ruriko kept a Gosuto's text: its digest still says whether it is the desired one.
    const gosuto = applied?.yaml ? (parse(applied.yaml) as GosutoManifest) : applied && desired?.digest === applied.digest ? (desired.object as GosutoManifest) : undefined;
    wanted.set(name, { agent: name, displayName: spec.matrix.displayName ?? null, rooms: agentRoomsOf(gosuto) });
  }
  return wanted;
}

/** Worth trying again soon, holding nothing against the account: the homeserver away, busy, or a token to check again. */
const transient = (error: unknown) => error instanceof MatrixAccountError && (error.unreachable || error.httpStatus === 429 || error.httpStatus === 401);

export class AgentAccounts {
  private readonly o: Required<Omit<AgentAccountsOptions, "now">> & { now: () => number };
  private readonly verifiedAt = new Map<string, number>();
  private readonly retry: BackoffTracker<string>;
  /** The agents the last pass looked at: every agent the retry tracker can hold a backoff for. */
  private lookedAt = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(options: AgentAccountsOptions) {
    this.o = { intervalMs: 30_000, verifyEveryMs: 10 * 60_000, now: () => Date.now(), ...options };
    this.retry = new BackoffTracker(RETRY, { now: this.o.now });
  }

  start(): void {
    this.wake();
  }

  /** Look at every account soon (a new snapshot, a container created, the homeserver back). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.running = this.pass().finally(() => {
      this.running = undefined;
      if (this.stopped) return;
      if (this.again) {
        this.again = false;
        this.wake();
      } else {
        this.timer = setTimeout(() => this.wake(), this.nextWakeIn()).unref();
      }
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** One look at every account: each agent on its own, so one failing never holds up the others. */
  async pass(): Promise<void> {
    const snapshot = this.o.desired();
    if (!snapshot) return;
    const visited = new Set<string>();
    for (const want of wantedAccounts(snapshot, this.o.appliedGosuto).values()) {
      if (this.stopped) return;
      if (!this.o.runs(want.agent)) continue;
      visited.add(want.agent);
      await this.attempt(want.agent, () => this.ensure(want));
    }
    for (const account of this.o.accounts.list()) {
      if (this.stopped) return;
      if (!this.gone(account.agent)) continue;
      visited.add(account.agent);
      await this.attempt(account.agent, () => this.deactivate(account));
    }
    // A backoff belongs to work still to do: an agent no longer looked at (its removal waiting for approval) has none.
    for (const agent of this.lookedAt) if (!visited.has(agent)) this.retry.succeeded(agent);
    this.lookedAt = visited;
  }

  /** Gone from the manifests in force now and from Docker (a removal is carried out only after approval). */
  private gone(agent: string): boolean {
    return !this.o.desired()?.objects.has(objectKey("Agent", agent)) && !this.o.runs(agent);
  }

  private nextWakeIn(): number {
    const now = this.o.now();
    const due = [...this.lookedAt].map((agent) => this.retry.retryAt(agent) ?? 0).filter((at) => at > now);
    return Math.max(Math.min(...due, now + this.o.intervalMs) - now, 50);
  }

  private async attempt(agent: string, work: () => Promise<void>): Promise<void> {
    if (this.retry.waiting(agent)) return;
    try {
      await work();
      this.retry.succeeded(agent);
    } catch (error) {
      const { failures, delayMs } = this.retry.failed(agent);
      const message = error instanceof Error ? error.message : String(error);
      if (transient(error)) {
        // A token refused between two checks: check it again (and log in again if need be) next time.
        if ((error as MatrixAccountError).httpStatus === 401) this.verifiedAt.delete(agent);
        if (failures === 1) this.o.logger.warn({ agent, err: message, retryInMs: delayMs }, "agent Matrix account: the homeserver is away or busy; retrying with backoff");
        return;
      }
      const account = this.o.accounts.current(agent);
      if (!account || account.lastError === message) return;
      const traceId = newTraceId();
      this.o.transaction(() => {
        this.o.accounts.setError(account.localpart, message);
        this.o.audit.append({ traceId, actor: "controller", action: "matrix.account.failed", target: `Agent/${agent}`, payload: { localpart: account.localpart, error: message }, result: "error" });
        this.o.report({ key: `${agent}|matrix-account`, text: `${agent}: Matrix account problem: ${message}`, traceId });
      });
      this.o.logger.warn({ traceId, agent, err: message }, "agent Matrix account: refused");
      this.o.onAccountChanged(agent, traceId);
    }
  }

  /** Brings one agent's account to what the snapshot asks for. Idempotent. */
  private async ensure(want: WantedAccount): Promise<void> {
    const { accounts, secrets, audit } = this.o;
    const traceId = newTraceId();
    let changed = false;
    const account =
      accounts.current(want.agent) ??
      this.o.transaction(() => {
        // The password is sealed with the account's record: a crash right after registering can then log in.
        const localpart = localpartFor(want.agent, accounts.countFor(want.agent));
        secrets.set(provisionedPasswordSecret(localpart), Buffer.from(randomBytes(32).toString("base64url")));
        return accounts.beginRegistration(want.agent, localpart, want.displayName);
      });
    const password = this.password(account);
    let session: Session;
    if (account.state === "registering") {
      session = await this.register(account, password, want.displayName);
      this.verifiedAt.set(want.agent, this.o.now());
      this.o.transaction(() => {
        audit.append({ traceId, actor: "controller", action: "matrix.account.created", target: `Agent/${want.agent}`, payload: { userId: session.userId }, result: "ok" });
        this.o.report({ text: `Matrix account ${session.userId} created for ${want.agent}`, traceId });
      });
      changed = true;
    } else {
      const renewed = await this.workingSession(account, password);
      session = renewed.session;
      if (renewed.renewed) {
        audit.append({ traceId, actor: "controller", action: "matrix.account.token-renewed", target: `Agent/${want.agent}`, payload: { userId: session.userId }, result: "ok" });
        changed = true;
      }
      if (account.displayName !== want.displayName && want.displayName) {
        await this.o.homeserver.setDisplayName(session, want.displayName);
        accounts.setDisplayName(account.localpart, want.displayName);
      }
    }
    const problems = await this.ensureRooms(account.localpart, want, session, traceId);
    if (problems.length > 0) throw new AccountProblem(problems.join("; "));
    if (accounts.current(want.agent)?.lastError) {
      accounts.setError(account.localpart, null);
      changed = true;
    }
    if (changed) this.o.onAccountChanged(want.agent, traceId);
  }

  private password(account: MatrixAccount): string {
    const name = provisionedPasswordSecret(account.localpart);
    const stored = this.o.secrets.reveal(name);
    if (!stored) throw new AccountProblem(`the password of ${account.userId ?? account.localpart} is missing from the secret store (${name}); Ruriko cannot manage the account`);
    return stored.value.toString("utf8");
  }

  private async register(account: MatrixAccount, password: string, displayName: string | null): Promise<Session> {
    const sharedSecret = this.o.registrationSecret();
    if (!sharedSecret) throw new AccountProblem("no registration shared secret: set RURIKO_MATRIX_REGISTRATION_SECRET or store it with `ruriko secret set matrix-registration-secret`");
    let session: Session;
    try {
      session = await this.o.homeserver.register(sharedSecret, account.localpart, password, displayName);
    } catch (error) {
      if (!(error instanceof MatrixAccountError && error.errcode === "M_USER_IN_USE")) throw error;
      // Registered before a crash, or someone else's account: only the password Ruriko generated tells them apart.
      session = await this.o.homeserver.login(account.localpart, password).catch((loginError: unknown) => {
        if (transient(loginError)) throw loginError;
        throw new AccountProblem(`the user id ${account.localpart} is taken by an account Ruriko did not create: rename the agent, or use spec.matrix.userId to give it that account`);
      });
    }
    this.o.transaction(() => {
      this.o.secrets.set(provisionedTokenSecret(account.localpart), Buffer.from(session.accessToken));
      this.o.accounts.activate(account.localpart, session.userId);
    });
    return session;
  }

  /** The account's stored token if it works (checked every verifyEveryMs), or a new one from logging in again. */
  private async workingSession(account: MatrixAccount, password: string): Promise<{ session: Session; renewed: boolean }> {
    const userId = account.userId!;
    const stored = this.o.secrets.reveal(provisionedTokenSecret(account.localpart));
    if (stored) {
      const session = { userId, accessToken: stored.value.toString("utf8") };
      const checked = this.verifiedAt.get(account.agent);
      if (checked !== undefined && this.o.now() - checked < this.o.verifyEveryMs) return { session, renewed: false };
      try {
        const owner = await this.o.homeserver.whoami(session);
        if (owner !== userId) throw new AccountProblem(`the stored token of ${userId} belongs to ${owner}`);
        this.verifiedAt.set(account.agent, this.o.now());
        return { session, renewed: false };
      } catch (error) {
        if (!(error instanceof MatrixAccountError && error.httpStatus === 401)) throw error;
        this.o.logger.warn({ agent: account.agent, userId }, "agent Matrix account: the token no longer works; logging in again");
      }
    }
    const session = await this.o.homeserver.login(account.localpart, password);
    this.o.secrets.set(provisionedTokenSecret(account.localpart), Buffer.from(session.accessToken));
    this.verifiedAt.set(account.agent, this.o.now());
    return { session, renewed: true };
  }

  /**
   * Joins the trusted rooms the account is not in yet (asking Ruriko to invite it where it cannot join by
   * itself) and leaves the rooms it was joined to that are no longer trusted — compared by room id, so a
   * room named by alias in one revision and by id in the next is the same room. Returns what could not be done.
   */
  private async ensureRooms(localpart: string, want: WantedAccount, session: Session, traceId: string): Promise<string[]> {
    const rooms = { ...(this.o.accounts.current(want.agent)?.rooms ?? {}) };
    const problems: string[] = [];
    /** Records the rooms; audits a real join or leave (not a room renamed from alias to id). */
    const save = (action: "joined" | "left" | null, room: string, roomId: string) => {
      this.o.accounts.setRooms(localpart, rooms);
      if (action) this.o.audit.append({ traceId, actor: "controller", action: `matrix.account.${action}`, target: `Agent/${want.agent}`, payload: { userId: session.userId, room, roomId }, result: "ok" });
    };
    const joinedIds = new Set(Object.values(rooms));
    for (const room of want.rooms) {
      if (rooms[room]) continue;
      try {
        const roomId = await this.joinOrBeInvited(session, room);
        rooms[room] = roomId;
        save(joinedIds.has(roomId) ? null : "joined", room, roomId);
        joinedIds.add(roomId);
      } catch (error) {
        if (transient(error)) throw error;
        problems.push((error as Error).message);
      }
    }
    const trustedIds = new Set(want.rooms.map((r) => rooms[r]).filter((id): id is string => id !== undefined));
    for (const [room, roomId] of Object.entries(rooms)) {
      if (want.rooms.includes(room)) continue;
      if (!trustedIds.has(roomId)) {
        try {
          await this.o.homeserver.leave(session, roomId);
        } catch (error) {
          // Not in the room any more (kicked, the room gone): nothing left to leave. Anything else: try again.
          if (!(error instanceof MatrixAccountError && (error.httpStatus === 403 || error.httpStatus === 404))) {
            if (transient(error)) throw error;
            problems.push((error as Error).message);
            continue;
          }
        }
      }
      delete rooms[room];
      save(trustedIds.has(roomId) ? null : "left", room, roomId);
    }
    return problems;
  }

  private async joinOrBeInvited(session: Session, room: string): Promise<string> {
    try {
      return await this.o.homeserver.join(session, room);
    } catch (error) {
      if (!(error instanceof MatrixAccountError && error.httpStatus === 403)) throw error;
      const roomId = room.startsWith("#") ? await this.o.homeserver.resolveAlias(session, room) : room;
      // Ruriko's own rooms are its control surface: an agent gets in only if the room lets anyone in.
      if (await this.o.isControlRoom(roomId)) throw new AccountProblem(`${room} is one of Ruriko's own rooms (status or approvals): Ruriko does not invite agents into them`);
      try {
        await this.o.invite(roomId, session.userId);
      } catch (inviteError) {
        throw new AccountProblem(`cannot get ${session.userId} into ${room}: it may not join by itself, and Ruriko cannot invite it (${(inviteError as Error).message}); invite Ruriko to the room, or invite the agent`);
      }
      return await this.o.homeserver.join(session, roomId);
    }
  }

  /** Deactivates the account of an agent that is gone, then forgets its credentials. */
  private async deactivate(account: MatrixAccount): Promise<void> {
    const { accounts, secrets, audit } = this.o;
    const traceId = newTraceId();
    const tokenName = provisionedTokenSecret(account.localpart);
    const passwordName = provisionedPasswordSecret(account.localpart);
    const stored = secrets.reveal(passwordName);
    if (!stored && account.state === "active") {
      throw new AccountProblem(`cannot deactivate ${account.userId}: its password is missing from the secret store (${passwordName}); deactivate it on the homeserver by hand`);
    }
    if (stored) {
      const password = stored.value.toString("utf8");
      try {
        const token = secrets.reveal(tokenName);
        let session = token && account.userId ? { userId: account.userId, accessToken: token.value.toString("utf8") } : await this.o.homeserver.login(account.localpart, password);
        // The snapshot may have moved on while this pass talked to the homeserver: deactivating is for good.
        if (!this.gone(account.agent)) return;
        try {
          await this.o.homeserver.deactivate(session, password);
        } catch (error) {
          if (!(error instanceof MatrixAccountError && error.errcode === "M_UNKNOWN_TOKEN")) throw error;
          session = await this.o.homeserver.login(account.localpart, password);
          await this.o.homeserver.deactivate(session, password);
        }
      } catch (error) {
        // Deactivated already (a crash after deactivating, before recording it), or never registered: done.
        const settled = error instanceof MatrixAccountError && (error.errcode === "M_USER_DEACTIVATED" || (account.state === "registering" && error.httpStatus === 403));
        if (!settled) throw error;
      }
    }
    const userId = account.userId ?? account.localpart;
    this.o.transaction(() => {
      accounts.markDeactivated(account.localpart);
      secrets.delete(tokenName);
      secrets.delete(passwordName);
      audit.append({ traceId, actor: "controller", action: "matrix.account.deactivated", target: `Agent/${account.agent}`, payload: { userId }, result: "ok" });
      this.o.report({ text: `Matrix account ${userId} of removed agent ${account.agent} deactivated`, traceId });
    });
    this.verifiedAt.delete(account.agent);
    this.o.logger.info({ traceId, agent: account.agent, userId }, "agent Matrix account deactivated: the agent is gone");
  }
}
