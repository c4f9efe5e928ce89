/**
 * serve's Matrix status room: the bot that reports, answers `/ruriko` queries, takes reactions on approval requests
 * and keeps agents' Matrix accounts. Wiring only: what it may read and whom it may hear, from serve's stores.
 */
import type { Controller } from "../controller/controller.ts";
import type { MatrixBot } from "../matrix/matrix-bot.ts";
import type { Logger } from "../observability/logger.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Vault } from "../secrets/vault.ts";
import type { StateStores } from "../store/state.ts";
import type { ServeSecrets } from "./environment.ts";

/** Secret-store name of Ruriko's own Matrix access token (when RURIKO_MATRIX_ACCESS_TOKEN[_FILE] is not set). */
export const MATRIX_TOKEN_SECRET = "matrix-access-token";
/** Secret-store name of Synapse's registration_shared_secret (when RURIKO_MATRIX_REGISTRATION_SECRET[_FILE] is not set). */
export const MATRIX_REGISTRATION_SECRET = "matrix-registration-secret";

/** serve's options as given: a status room needs all of homeserver, user and room; none of them, no room. */
export interface StatusRoomOptions {
  homeserver: string | undefined;
  userId: string | undefined;
  room: string | undefined;
  /** Matrix users allowed to ask `/ruriko` queries, besides the approvers named by policies. */
  operators: readonly string[];
  /** With --git: where the checkout is, for the history queries. */
  git: { workDir: string; path: string } | undefined;
}

export interface StatusRoomDeps {
  state: StateStores;
  vault: Vault;
  secrets: ServeSecrets;
  runtime: Runtime;
  logger: Logger;
  /** The bot starts before the controller exists (it must hear about the first snapshot), so it reads it late. */
  controller: () => Controller | undefined;
}

/** The bot, when the options ask for a status room; undefined when they do not. Some of the three but not all: an error. */
export async function startStatusRoom(opts: StatusRoomOptions, deps: StatusRoomDeps): Promise<MatrixBot | undefined> {
  if (!opts.homeserver && !opts.room && !opts.userId) return undefined;
  if (!opts.homeserver || !opts.room || !opts.userId) throw new Error("the status room needs all of --matrix-homeserver, --matrix-user and --status-room");
  const { state, vault, secrets, runtime, logger, controller } = deps;
  const accessToken = secrets.matrixAccessToken?.value || vault.secrets.reveal(MATRIX_TOKEN_SECRET)?.value.toString("utf8");
  if (!accessToken) throw new Error(`no Matrix access token: set RURIKO_MATRIX_ACCESS_TOKEN or RURIKO_MATRIX_ACCESS_TOKEN_FILE, or store it with \`ruriko secret set ${MATRIX_TOKEN_SECRET}\``);
  // Loaded only when Matrix is on: matrix-js-sdk alone is ~40 MB of an idle serve's memory.
  const [{ startMatrixBot }, { querySourcesFor }] = await Promise.all([import("../matrix/matrix-bot.ts"), import("../matrix/query-sources.ts")]);
  // Who may ask queries and where: the policies in force, never those a revision merely proposes.
  const policiesInForce = () => state.policies.manifests();
  const bot = startMatrixBot({
    homeserverUrl: opts.homeserver,
    userId: opts.userId,
    accessToken,
    room: opts.room,
    outbox: state.outbox,
    instance: state.instance,
    logger,
    seen: state.seenEvents,
    queries: {
      sources: querySourcesFor({ state, snapshot: () => controller()?.snapshot, runtime, ...(opts.git ? { git: opts.git } : {}) }),
      rooms: () => new Set(policiesInForce().map((p) => p.spec.room)),
      senders: () => new Set([...opts.operators, ...policiesInForce().flatMap((p) => p.spec.approvers)]),
    },
    approvals: { approvals: state.approvals, posts: state.approvalPosts, audit: state.audit, transaction: state.transaction },
    accounts: {
      // Read when needed: it may be stored after Ruriko started.
      registrationSecret: () => secrets.matrixRegistrationSecret?.value || vault.secrets.reveal(MATRIX_REGISTRATION_SECRET)?.value.toString("utf8"),
      accounts: state.matrixAccounts,
      secrets: vault.secrets,
      audit: state.audit,
      desired: () => controller()?.snapshot,
      appliedGosuto: (agent) => state.appliedConfig.get(agent).gosuto,
      runs: (agent) => state.inventory.get(agent) !== undefined,
      transaction: state.transaction,
      onAccountChanged: (agent, traceId) => controller()?.queue.add(agent, traceId, { urgent: true }),
    },
  });
  logger.info({ room: opts.room, userId: opts.userId }, "reporting to the Matrix status room");
  return bot;
}
