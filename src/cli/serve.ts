import type Docker from "dockerode";
import { hostname } from "node:os";
import { join } from "node:path";
import { Controller } from "../controller/controller.ts";
import { conditionCounts, phaseOf } from "../controller/conditions.ts";
import { agentHomeserverOf, DEFAULT_AGENT_NETWORK, namedNetworkCheck, networkNameOf, type NetworkMembers } from "../controller/agent-network.ts";
import { AGENT_NETWORK_META } from "../controller/container-spec.ts";
import { buildStatusReport } from "../controller/status-report.ts";
import { createLogger, type Logger } from "../observability/logger.ts";
import { ControllerMetrics } from "../observability/metrics.ts";
import { startHttpServer } from "../observability/http-server.ts";
import { readiness } from "../observability/readiness.ts";
import { openDockerClient } from "../runtime/docker-client.ts";
import { DockerRuntime } from "../runtime/docker-runtime.ts";
import type { AgentNetworkMode, Runtime } from "../runtime/runtime.ts";
import type { KubernetesServeOptions } from "./kubernetes-wiring.ts";
import { DirectorySource } from "../sources/directory-source.ts";
import type { Source } from "../sources/source.ts";
import type { Snapshot } from "../api/snapshot.ts";
import { openVault, type Vault } from "../secrets/vault.ts";
import { STATE_DB_FILE } from "../store/state.ts";
import { StorageHealth } from "../store/storage-health.ts";
import { masterKeyEnv, serveSecretsFromEnv } from "./environment.ts";
import { adoptIfPending, openServeState, type AgentEngine } from "./serve-state.ts";
import { startStatusRoom } from "./serve-status-room.ts";

export interface ServeOptions {
  manifests?: string;
  git?: string;
  branch: string;
  path: string;
  stateDir: string;
  http: string;
  concurrency: number;
  resyncSeconds: number;
  gitIntervalSeconds: number;
  /** How often each running agent is asked over ACP how it is doing. */
  agentPollSeconds?: number;
  /** How long an image pull may take before it fails as timed out (default 600). */
  imagePullTimeoutSeconds?: number;
  allowEmpty: boolean;
  logLevel: string;
  masterKeyFile?: string;
  /** Where --master-key-file came from ("cli", "env"): one on the command line wins over RURIKO_MASTER_KEY. */
  masterKeySource?: string;
  matrixHomeserver?: string;
  matrixUser?: string;
  statusRoom?: string;
  /** Matrix users allowed to ask `/ruriko` queries, besides the approvers named by policies. */
  matrixOperators?: string[];
  /** The homeserver URL as agents reach it (default: matrixHomeserver). */
  agentMatrixHomeserver?: string;
  /** How agents' containers are networked: bridge (default), host or network:NAME. */
  agentNetwork?: AgentNetworkMode;
  /** Take over the containers of the instance whose state database was lost (docs/operations.md#adopting-a-lost-instance). */
  adoptOrphans?: boolean;
  /** Where agents run (docs/kubernetes.md); docker when absent. */
  runtime?: "docker" | "kubernetes";
}

export type ServeRunOptions = ServeOptions & KubernetesServeOptions;

export function parseHostPort(text: string): { host: string; port: number } {
  const match = /^(.*):(\d+)$/.exec(text);
  if (!match) throw new Error(`--http must be HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: match[1]!.replace(/^\[|\]$/g, ""), port: Number(match[2]) };
}

/**
 * `--agent-network network:NAME`: the network must exist (Ruriko never creates it) and Ruriko should be on it. An
 * engine that does not answer is left to the reconciles, which retry.
 */
export async function checkNamedNetwork(docker: Docker, mode: AgentNetworkMode, logger: Logger): Promise<void> {
  const name = networkNameOf(mode);
  if (!name) return;
  let info: NetworkMembers | undefined;
  try {
    info = (await docker.getNetwork(name).inspect()) as NetworkMembers;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 404) return;
  }
  const check = namedNetworkCheck(name, info, hostname());
  if (check.error) throw new Error(check.error);
  if (check.warning) logger.warn({ network: name }, check.warning);
  else logger.info({ network: name }, `agents are attached to network ${name}; Ruriko reaches their ACP by container name`);
}

/** The engine agents run on, whose runtime serve then uses whole. */
interface ServeEngine extends AgentEngine {
  /** `metrics`: serve's, where the runtime counts its work (a runtime opened to adopt before then has none). */
  open(instance: string, metrics?: ControllerMetrics): { runtime: Runtime; where: string };
  /** What only this engine checks once it answers (Docker: the named agent network). */
  checkAnswering?(): Promise<void>;
}

/** Each engine's client is loaded only when it is the one chosen. */
async function engineFor(opts: ServeRunOptions, agentNetwork: AgentNetworkMode, logger: Logger): Promise<ServeEngine> {
  const log = logger.child({ component: "runtime" });
  if (opts.runtime === "kubernetes") {
    // Only here: with --runtime docker the Kubernetes client is never loaded.
    const { kubernetesRuntime } = await import("./kubernetes-wiring.ts");
    return {
      name: "the Kubernetes API server",
      open(instance, metrics) {
        const made = kubernetesRuntime(opts, instance, log, metrics?.kubernetesRequestCounter());
        return { runtime: made.runtime, where: `in namespace ${made.namespace} of the Kubernetes cluster ${made.server}` };
      },
    };
  }
  const docker = await openDockerClient();
  return {
    name: "the Docker engine",
    open: (instance) => ({
      runtime: new DockerRuntime({ docker, instance, log, ...(opts.imagePullTimeoutSeconds !== undefined ? { imagePullTimeoutMs: opts.imagePullTimeoutSeconds * 1000 } : {}) }),
      where: "on this Docker host",
    }),
    checkAnswering: () => checkNamedNetwork(docker, agentNetwork, logger),
  };
}

/** Wiring only: every part is built here and connected; the behaviour lives in the modules. */
export async function serve(opts: ServeRunOptions): Promise<void> {
  if (!opts.manifests === !opts.git) throw new Error("give exactly one of --manifests DIR or --git URL (or RURIKO_MANIFESTS, RURIKO_GIT)");
  const onKubernetes = opts.runtime === "kubernetes";
  if (onKubernetes && opts.agentNetwork && opts.agentNetwork !== DEFAULT_AGENT_NETWORK) {
    throw new Error(`--agent-network ${opts.agentNetwork} is a Docker mode: on Kubernetes agents are pods, reached as --kube-acp-access says`);
  }
  // Read before anything starts: a secret set twice or a file that cannot be read stops serve here, by name.
  const secrets = serveSecretsFromEnv(process.env);
  const keyEnv = masterKeyEnv(process.env, opts.masterKeySource);
  const agentNetwork = opts.agentNetwork ?? DEFAULT_AGENT_NETWORK;
  const agentHomeserver = opts.matrixHomeserver ? agentHomeserverOf(agentNetwork, opts) : undefined;
  const logger: Logger = createLogger({ level: opts.logLevel });
  const engine = await engineFor(opts, agentNetwork, logger);
  // The first storage failure is final: /healthz fails from that moment, and the process stops (below).
  const storage = new StorageHealth(join(opts.stateDir, STATE_DB_FILE));
  const state = await openServeState({ stateDir: opts.stateDir, adoptOrphans: opts.adoptOrphans ?? false, engine, health: storage });
  const running: { stop?: (reason: string, exitCode: number) => Promise<void> } = {};
  storage.onFailure(({ failure }) => {
    logger.fatal(
      { file: failure?.file, code: failure?.code, err: failure?.message },
      `the state database failed (${failure?.code}: ${failure?.message}); stopping so that a supervisor restarts Ruriko, whose start checks the database (docs/operations.md#failure-and-recovery)`,
    );
    if (running.stop) void running.stop(`storage failure ${failure?.code}`, 1);
    // Still starting: nothing to wind down. After the current turn, so that an error thrown by the start is printed.
    else setTimeout(() => process.exit(1), 0);
  });
  let firstSnapshotSeen = false;
  const metrics = new ControllerMetrics({
    collectAgents: () => conditionCounts(state.status.list()),
    collectPendingApprovals: () => state.approvals.list({ status: "pending", limit: 100_000 }).length,
  });

  let vault: Vault;
  let runtime: Runtime;
  try {
    vault = openVault(state, { stateDir: opts.stateDir, env: keyEnv, ...(opts.masterKeyFile ? { keyFile: opts.masterKeyFile } : {}) });
    logger.info({ instance: state.instance, origin: state.origin, stateDir: opts.stateDir, keyId: vault.key.id, keyFrom: vault.origin }, "ruriko starting");
    if (vault.generated) logger.warn(`generated a new master key in ${vault.origin.replace(/^key file /, "")}; keep it safe and off the state volume in production (see docs/secrets.md)`);
    const opened = engine.open(state.instance, metrics);
    runtime = opened.runtime;
    if (onKubernetes) logger.info({ acpAccess: opts.kubeAcpAccess ?? "pod-ip" }, `agents run on Kubernetes, ${opened.where}`);
    // Before anything plans, on either engine: a restored backup (or --adopt-orphans) takes over what the engine shows.
    const adopted = await adoptIfPending(state, engine, runtime, logger);
    if (opts.adoptOrphans && !adopted) logger.info({ instance: state.instance }, "--adopt-orphans: nothing to adopt, the state database knows its instance");
    if (!(await runtime.ping())) logger.warn(`${engine.name} does not answer${onKubernetes ? ` (or its namespace is not readable)` : ""}; reconciles will retry with backoff until it does`);
    else await engine.checkAnswering?.();
  } catch (error) {
    state.close();
    throw error;
  }

  const gitWorkDir = join(opts.stateDir, "sources", "git");
  const late: { controller?: Controller } = {};
  const statusRoom = await startStatusRoom(
    { homeserver: opts.matrixHomeserver, userId: opts.matrixUser, room: opts.statusRoom, operators: opts.matrixOperators ?? [], git: opts.git ? { workDir: gitWorkDir, path: opts.path } : undefined },
    { state, vault, secrets, runtime, logger, controller: () => late.controller },
  );

  if (opts.git) state.meta.set("source.git.path", opts.path);
  state.meta.set(AGENT_NETWORK_META, agentNetwork);
  if (agentNetwork === "host") logger.warn("agents run with host networking: each shares this host's network namespace and can reach anything on its loopback (see docs/operations.md)");
  if (agentHomeserver?.problem) logger.warn({ agentNetwork, homeserver: agentHomeserver.url }, `${agentHomeserver.problem} (see docs/operations.md#agent-networking)`);
  // The git source and its history reader (simple-git) are loaded only with --git.
  const git = opts.git ? { url: opts.git, ...(await import("../sources/git-source.ts")), ...(await import("../sources/change-authors.ts")) } : undefined;
  const controller = new Controller({
    runtime,
    stores: state,
    vault,
    stateDir: opts.stateDir,
    logger,
    ...(git
      ? {
          authors: git.gitChangeAuthors({
            workDir: gitWorkDir,
            path: opts.path,
            snapshot: () => late.controller?.snapshot,
            appliedRevisions: { agent: (name) => state.status.get(name)?.appliedRevision ?? null, policy: (name) => state.policies.get(name)?.revision ?? null },
          }),
        }
      : {}),
    concurrency: opts.concurrency,
    resyncIntervalMs: opts.resyncSeconds * 1000,
    ...(opts.agentPollSeconds !== undefined ? { agentPollMs: opts.agentPollSeconds * 1000 } : {}),
    ...(agentHomeserver ? { agentMatrixHomeserver: agentHomeserver.url } : {}),
    agentNetwork,
    allowEmpty: opts.allowEmpty,
    onReconcile: (_agent, result, ms) => metrics.reconciled(result, ms, controller.queue.depth),
    onSnapshot: (event) => {
      firstSnapshotSeen = true;
      metrics.snapshotTaken(event.outcome);
      statusRoom?.onSnapshot(event);
    },
    onChange: (c) => statusRoom?.onChange(c),
    onStateChanges: (changes) => {
      if (changes.some((c) => c.topic === "approval")) statusRoom?.approvalsChanged();
    },
    onTransition: (t) => {
      statusRoom?.onTransition(t);
      const level = t.condition.type === "Stalled" && t.condition.status === "True" ? "warn" : "info";
      logger[level]({ traceId: t.traceId, agent: t.agent, condition: t.condition }, `${t.agent}: ${t.condition.type}=${t.condition.status} (${t.condition.reason})${t.condition.message ? `: ${t.condition.message}` : ""}`);
    },
  });

  late.controller = controller;

  const source: Source = git
    ? new git.GitSource({
        url: git.url,
        branch: opts.branch,
        path: opts.path,
        workDir: gitWorkDir,
        intervalMs: opts.gitIntervalSeconds * 1000,
        log: logger.child({ component: "source" }),
      })
    : new DirectorySource({ root: opts.manifests!, log: logger.child({ component: "source" }) });

  const { host, port } = parseHostPort(opts.http);
  const webhookSecret = secrets.webhookSecret?.value;
  const http = await startHttpServer({
    host,
    port,
    logger: logger.child({ component: "http" }),
    metrics,
    status: () => buildStatusReport(state),
    live: () => {
      const { failure } = storage.state;
      return failure ? { ok: false, reason: `state database ${failure.file}: ${failure.code}` } : { ok: true };
    },
    ready: () => readiness({ storageOk: storage.state.ok, snapshotSeen: firstSnapshotSeen, revisionInForce: controller.snapshot !== undefined }),
    ...(opts.git && webhookSecret
      ? { webhook: { secret: webhookSecret, onPush: (info: { branch?: string }) => {
          if (!info.branch || info.branch === opts.branch) void source.refresh("webhook");
        } } }
      : {}),
  });
  logger.info({ url: http.url }, `HTTP on ${http.url} (/healthz /readyz /metrics /api/v1/status${opts.git && webhookSecret ? " /api/v1/webhooks/git" : ""})`);

  controller.start();
  let stopping = false;
  // A snapshot the state database could not take — a lock held beside serve for longer than the busy timeout
  // (SQLITE_BUSY) — is offered again unless a newer one came meanwhile: the source will not offer it twice.
  // A storage failure stops serve instead (storage.onFailure above).
  let latestSnapshot: Snapshot | undefined;
  const offer = (snapshot: Snapshot) => {
    latestSnapshot = snapshot;
    try {
      controller.offer(snapshot);
    } catch (error) {
      if (!storage.state.ok) return;
      logger.warn({ revision: snapshot.revision, err: (error as Error).message }, `taking revision ${snapshot.revision} failed (${(error as Error).message}); trying again in a second`);
      setTimeout(() => {
        if (latestSnapshot === snapshot && !stopping) offer(snapshot);
      }, 1000).unref();
    }
  };
  await source.start(offer);

  const shutdown = async (reason: string, exitCode: number) => {
    if (stopping) return;
    stopping = true;
    logger.info({ reason }, "shutting down");
    // Each step on its own: after a storage failure any of them may fail too, and the process must still exit.
    const step = async (what: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (error) {
        logger.warn({ err: (error as Error).message }, `shutting down: ${what} failed`);
      }
    };
    await step("stopping the source", () => source.stop());
    await step("stopping the controller", () => controller.stop());
    // What was said is in the outbox already; stopping only gives delivery a last chance.
    await step("stopping the Matrix bot", () => statusRoom?.stop());
    await step("closing the HTTP server", () => http.close());
    await step("the last status", () => {
      const summary = state.status.list().map((s) => `${s.agent}=${phaseOf(s.conditions)}`).join(" ");
      logger.info({ agents: summary }, "stopped");
    });
    await step("closing the state database", () => state.close());
    process.exit(exitCode);
  };
  process.on("SIGINT", () => void shutdown("SIGINT", 0));
  process.on("SIGTERM", () => void shutdown("SIGTERM", 0));
  running.stop = shutdown;
}
