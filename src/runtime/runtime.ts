/**
 * The Runtime port: everything the controller may ask of a container engine. The controller never
 * imports dockerode or a Kubernetes client; it sees only these types. Two implementations: docker-runtime.ts and
 * kubernetes-runtime.ts.
 */

/** Labels every object Ruriko creates carries (DESIGN.md §4). */
export const LABELS = {
  managedBy: "ruriko.dev/managed-by",
  instance: "ruriko.dev/instance",
  agent: "ruriko.dev/agent",
  specDigest: "ruriko.dev/spec-digest",
  revision: "ruriko.dev/revision",
  /** The 127.0.0.1 port a host-networked agent serves ACP on: no port binding shows it. */
  controlPort: "ruriko.dev/control-port",
} as const;

export const MANAGED_BY = "ruriko";

/**
 * How agents' containers are networked, chosen by the operator (`ruriko serve --agent-network`), never by a
 * manifest. bridge: the instance's bridge network, ACP published on a random 127.0.0.1 port. host: the host's
 * network namespace, Gitai listening on its own 127.0.0.1 port (for agents that must reach services on the
 * host's loopback, and for tests, which may only talk to loopback addresses). `network:NAME`: a Docker network
 * Ruriko itself is attached to (the compose setup), ACP reached at the container's name, nothing published.
 * The text is the flag's value as the operator wrote it: it is what the state database records and what a
 * change of mode is described with.
 */
export type AgentNetworkMode = "bridge" | "host" | NamedAgentNetwork;
export type NamedAgentNetwork = `network:${string}`;

/** What the controller wants a container to be. Built by the planner from an Agent object. */
export interface ContainerSpec {
  agent: string;
  image: string;
  /** Non-secret environment only: secrets never travel through container config (it shows in `docker inspect`). */
  env: Record<string, string>;
  /** Memory limit in bytes; undefined = no limit. */
  memoryBytes?: number;
  /** CPU limit in whole CPUs (0.5 = half a CPU); undefined = no limit. */
  cpus?: number;
  pidsLimit: number;
  /** Digest of the fields above: what drift and updates are judged against. */
  specDigest: string;
  /** Manifest revision the spec came from, for the label (informational). */
  revision: string;
  /**
   * Absent for bridge: specs recorded before the mode existed say nothing, and a bridge spec keeps the digest
   * it always had. "host" shares the host's network namespace (no port published, no instance network);
   * `network:NAME` attaches the container to the Docker network NAME only (no port published).
   */
  network?: AgentNetworkMode;
  /**
   * The agent's ACP port. bridge: the container port, published on a random 127.0.0.1 port. host: the port
   * Gitai listens on at 127.0.0.1, which is also where Ruriko reaches it. `network:NAME`: the container port,
   * reached at the container's name on that network.
   */
  controlPort?: number;
}

export type ContainerState = "created" | "running" | "paused" | "restarting" | "removing" | "exited" | "dead";

/** A container as the engine reports it; only containers owned by this Ruriko instance are ever listed. */
export interface ObservedContainer {
  id: string;
  name: string;
  agent: string;
  image: string;
  state: ContainerState;
  exitCode: number;
  oomKilled: boolean;
  specDigest: string;
  revision: string;
  startedAt?: string;
  finishedAt?: string;
  /**
   * The 127.0.0.1 port Ruriko reaches ACP at: where the control port is published (bridge, when running), or
   * the port a host-networked agent listens on (from its label).
   */
  controlHostPort?: number;
  /** Docker's network mode of the container: "host", or the name of the network it is attached to. */
  network?: string;
  /**
   * The base URL Ruriko reaches ACP at when it is not a 127.0.0.1 port: a Kubernetes pod's address
   * (`http://10.1.2.3:8765`). Set only while running.
   */
  controlAddress?: string;
}

/**
 * Docker's container events, plus `restart`: the engine started the agent again on its own (Kubernetes keeping
 * a pod alive, or replacing a deleted one), so the new process needs its configuration again. Docker never
 * restarts a container by itself (restart policy "no"): there Ruriko's start after a `die` does it.
 */
export type RuntimeEventAction = "start" | "die" | "oom" | "stop" | "destroy" | "kill" | "create" | "restart";

export interface RuntimeEvent {
  agent: string;
  containerId: string;
  action: RuntimeEventAction;
  exitCode?: number;
}

export interface EventSubscription {
  close(): void;
}

export interface Runtime {
  /** Idempotent: the network and anything else shared by all agents. */
  prepare(): Promise<void>;
  /** Containers owned by this instance (by label), running or not; only that agent's when `agent` is given. */
  list(agent?: string): Promise<ObservedContainer[]>;
  imageExists(image: string): Promise<boolean>;
  /** Creates (does not start) the agent's container with the hardened defaults; returns it as observed. */
  create(spec: ContainerSpec): Promise<ObservedContainer>;
  start(containerId: string): Promise<void>;
  /**
   * Writes a file into the agent's data volume (mounted at /data), readable only by the agent's user.
   * How secrets-bearing files reach an agent without passing through its configuration: unlike env
   * vars or labels, file contents never show in `docker inspect`. Works on created and running containers.
   */
  writeAgentFile(containerId: string, name: string, content: Buffer): Promise<void>;
  /** Graceful stop: SIGTERM, then SIGKILL after `timeoutSeconds`. A stopped container is not an error. */
  stop(containerId: string, timeoutSeconds?: number): Promise<void>;
  /** Force-removes the container. A missing container is not an error. */
  remove(containerId: string): Promise<void>;
  /** Removes the agent's named data volume (only when the agent itself is pruned). */
  removeAgentVolume(agent: string): Promise<void>;
  /**
   * Streams lifecycle events of owned containers. Reconnects with backoff when the stream drops;
   * `onReconnect` fires after a reconnect so the caller can resync what it may have missed.
   */
  subscribe(onEvent: (event: RuntimeEvent) => void, onReconnect?: () => void): EventSubscription;
  /** Cheap liveness probe of the engine. */
  ping(): Promise<boolean>;
}

export class RuntimeError extends Error {
  readonly action: string;
  readonly agent: string | undefined;
  readonly code: "image-missing" | "engine-unavailable" | "conflict" | "failed";
  constructor(action: string, agent: string | undefined, code: RuntimeError["code"], message: string, options?: { cause?: unknown }) {
    super(`${action}${agent ? ` ${agent}` : ""}: ${message}`, options);
    this.name = "RuntimeError";
    this.action = action;
    this.agent = agent;
    this.code = code;
  }
}
