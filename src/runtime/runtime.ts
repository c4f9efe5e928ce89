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
  /** The image reference of the spec, where the container was made from the image's id (a tag that has moved since). */
  image: "ruriko.dev/image",
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

/** The network mode a spec asks for (a spec recorded without one is bridge). */
export const networkModeOf = (spec: Pick<ContainerSpec, "network">): AgentNetworkMode => spec.network ?? "bridge";
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
  /**
   * When the image is pulled; absent means IfNotPresent. Not in the digest: it says how to get the image, not
   * what the container is, so changing it alone recreates nothing (it applies from the next create or check).
   */
  imagePullPolicy?: ImagePullPolicy;
}

/** As in Kubernetes: pull only when missing (the default), before every create, or never. */
export type ImagePullPolicy = "IfNotPresent" | "Always" | "Never";

/** What a registry is asked with for one pull. Never stored, logged or put into a container's configuration. */
export interface RegistryCredential {
  username: string;
  password: string;
}

/**
 * Where the credential for a registry host (`127.0.0.1:5000`, `ghcr.io`, `docker.io`) comes from: looked up
 * only when a pull is made. `from` says where it was looked for, in words an operator can act on
 * ("secret registry-5000.127.0.0.1"); it goes into errors, the credential never does. `problem`: one is stored
 * but cannot be used (malformed), said without any of its content.
 */
export type RegistryCredentialLookup = (registry: string) => { from: string; credential?: RegistryCredential; problem?: string };

/** Make an image present as its pull policy says (Runtime.ensureImage). */
export interface ImageRequest {
  /** The agent it is for (errors and log lines name it). */
  agent: string;
  /** The reference as the manifest gives it: `repo:tag`, `repo@sha256:…` or `repo:tag@sha256:…`. */
  image: string;
  policy: ImagePullPolicy;
  credentials?: RegistryCredentialLookup;
  /** Where progress goes (the reconcile's logger, with its trace id); default the runtime's own. */
  log?: RuntimeLog;
}

/** An image as the engine holds it. */
export interface ResolvedImage {
  /** The engine's content-addressed id of the image (`sha256:…`): what a moved tag changes. */
  id: string;
  /** `repository@sha256:…` for each registry the image was pulled from or pushed to; none for one built here. */
  repoDigests: string[];
}

export interface RuntimeLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
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
  /** The id of the image the container was created from (ResolvedImage.id): unchanged when its tag moves later. */
  imageId?: string;
}

/**
 * What the engine shows of a container's configuration, as the facts a ContainerSpec was turned into: what a
 * spec is read back from (Runtime.readBack; Docker: container-readback.ts, Kubernetes: kubernetes-readback.ts).
 */
export interface ContainerFacts {
  id: string;
  /** The image reference the container was created with, as a spec names it. */
  image: string;
  /** The container's environment, KEY → value, including what its image sets. */
  env: Record<string, string>;
  /** What the image itself sets (empty when the image is gone). */
  imageEnv: Record<string, string>;
  /** HostConfig values; 0 or null when unset. */
  memoryBytes: number;
  nanoCpus: number;
  pidsLimit: number | null;
  networkMode: string;
  exposedPorts: string[];
  labels: Record<string, string>;
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

export interface CreateOptions {
  replacing?: string;
  image?: string;
  running?: { files: Record<string, Buffer> };
}

export interface Runtime {
  /**
   * Whether writeAgentFile reaches a running agent as it is. Docker: yes (the file is written into the running
   * container's volume). Kubernetes: no (the file travels in a Secret that an init container copies at the pod's
   * start, so a running pod must be replaced to take it). The executor hands a new agent its files after the
   * start where it can (off the path to a running agent) and before it where it cannot (no second start).
   */
  readonly agentFilesWhileRunning: boolean;
  /**
   * Idempotent: what agents networked as `spec` is share (Docker: the instance's bridge network, made only in
   * bridge mode, so host and named-network agents leave no unused network and address pool behind).
   */
  prepare(spec: ContainerSpec): Promise<void>;
  /** Containers owned by this instance (by label), running or not; only that agent's when `agent` is given. */
  list(agent?: string): Promise<ObservedContainer[]>;
  imageExists(image: string): Promise<boolean>;
  /**
   * Makes the image present as the policy says, before a container is created from it: IfNotPresent pulls only
   * when the reference is not on the engine, Always pulls, Never only checks. Throws ImagePullError (a classified
   * reason) when a pull fails, RuntimeError "image-missing" when Never finds nothing. An engine that pulls as it
   * starts containers (the kubelet honours imagePullPolicy itself) may do nothing here. Returns the image the
   * reference now names, or undefined where the engine cannot tell.
   */
  ensureImage(request: ImageRequest): Promise<ResolvedImage | undefined>;
  /**
   * The image a reference (or an image id) resolves to on the engine now, without pulling; undefined when it is
   * not there (or the engine cannot tell). How a moved tag is seen: compared with ObservedContainer.imageId.
   */
  resolveImage(image: string): Promise<ResolvedImage | undefined>;
  /**
   * Creates (does not start) the agent's container with the hardened defaults; returns it as observed.
   * `replacing`: the agent's current container, which the new one will replace. It keeps running (the caller
   * stops and removes it), but gives up whatever the new one needs to be created beside it (its name).
   * `image`: an image id (ResolvedImage.id) to create it from instead of the spec's reference: the image the agent
   * is approved to run when its tag names another image now. Given only by an engine's own resolveImage answers.
   * `running`: created started, with these files in its data directory from its first start (as writeAgentFile
   * puts them; `replacing` is stopped before it starts), returning once it runs, as start does. Where files cannot
   * reach a running agent (agentFilesWhileRunning false), this saves the engine a second write to act on.
   */
  create(spec: ContainerSpec, options?: CreateOptions): Promise<ObservedContainer>;
  start(containerId: string): Promise<void>;
  /**
   * Writes a file into the agent's data volume (mounted at /data), readable only by the agent's user.
   * How secrets-bearing files reach an agent without passing through its configuration: unlike env
   * vars or labels, file contents never show in `docker inspect`. Works on created and running containers.
   */
  writeAgentFile(containerId: string, name: string, content: Buffer): Promise<void>;
  /** Graceful stop: SIGTERM, then SIGKILL after `timeoutSeconds`. A stopped container is not an error. */
  stop(containerId: string, timeoutSeconds?: number): Promise<void>;
  /**
   * What the engine shows of a container's configuration, from which the spec that made it is read back when a
   * lost state database takes over what the engine runs (controller/engine-adoption.ts). Absent where it cannot.
   */
  readBack?(containerId: string): Promise<ContainerFacts>;
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
  /**
   * Serve is stopping: every long wait on the engine (Kubernetes: a pod to run, a pod to go; Docker: an image
   * pull) ends now with RuntimeError "interrupted", and so does any begun after. Those waits last up to the start
   * timeout or the pull timeout, and a stop would otherwise wait for them; what the interrupted reconcile did is
   * recorded, and the next start goes on.
   */
  stopWaiting?(): void;
}

export class RuntimeError extends Error {
  readonly action: string;
  readonly agent: string | undefined;
  readonly code: "image-missing" | "image-pull-failed" | "engine-unavailable" | "conflict" | "interrupted" | "failed";
  constructor(action: string, agent: string | undefined, code: RuntimeError["code"], message: string, options?: { cause?: unknown }) {
    super(`${action}${agent ? ` ${agent}` : ""}: ${message}`, options);
    this.name = "RuntimeError";
    this.action = action;
    this.agent = agent;
    this.code = code;
  }
}

/**
 * Why a pull failed, in a few words (ImagePullError.reason): what the registry or the way to it said, never the
 * engine's whole message. `definitive`: the registry answered and said no (the tag or repository does not exist,
 * the credential is missing or refused, the host does not exist): asking again soon cannot help.
 */
export interface PullFailure {
  reason: string;
  definitive: boolean;
}

/** A pull that failed, with its classified reason. Its message starts `ImagePullFailed: <reason>:`. */
export class ImagePullError extends RuntimeError {
  readonly image: string;
  readonly failure: PullFailure;
  constructor(agent: string, image: string, failure: PullFailure, detail: string, options?: { cause?: unknown }) {
    super("pull", agent, "image-pull-failed", detail, options);
    this.name = "ImagePullError";
    this.image = image;
    this.failure = failure;
    // The condition message people read: the reason first, then what was pulled and what would fix it.
    this.message = `ImagePullFailed: ${failure.reason}: ${detail}`;
  }
}
