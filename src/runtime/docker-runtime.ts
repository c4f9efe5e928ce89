/**
 * The Runtime port on a local Docker engine, through dockerode. Thin: it translates, labels and hardens;
 * every decision is the controller's. Only objects carrying this installation's labels are ever listed
 * or changed.
 */
import type Docker from "dockerode";
import { pack } from "tar-stream";
import { backoffDelay, type BackoffPolicy } from "../time/backoff.ts";
import { readContainerFacts } from "./container-readback.ts";
import { DockerImagePuller } from "./docker-image-pull.ts";
import {
  LABELS,
  MANAGED_BY,
  networkModeOf,
  RuntimeError,
  type ContainerFacts,
  type ContainerSpec,
  type ContainerState,
  type CreateOptions,
  type EventSubscription,
  type ImageRequest,
  type ResolvedImage,
  type ObservedContainer,
  type Runtime,
  type RuntimeEvent,
  type RuntimeEventAction,
} from "./runtime.ts";

interface Log {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface DockerRuntimeOptions {
  docker: Docker;
  /** This installation's id: goes into every label and name. */
  instance: string;
  /** Bridge network for agents; default `ruriko-<instance>`. */
  network?: string;
  log?: Log;
  /** A pull still running after this long is abandoned as failed (`serve --image-pull-timeout`); default 10 minutes. */
  imagePullTimeoutMs?: number;
}

export const DEFAULT_IMAGE_PULL_TIMEOUT_MS = 10 * 60_000;

/** A local engine restarts in seconds: a short cap notices it soon after it is back. */
const EVENT_RECONNECT: BackoffPolicy = { baseMs: 500, maxMs: 5_000, jitter: 0.2 };

const EVENT_ACTIONS: ReadonlySet<string> = new Set<RuntimeEventAction>(["start", "die", "oom", "stop", "destroy", "kill", "create"]);
const APP_UID = 65532;
const APP_USER = `${APP_UID}:${APP_UID}`;
const DATA_DIR = "/data";

function statusCode(error: unknown): number | undefined {
  return (error as { statusCode?: number } | undefined)?.statusCode;
}

function isEngineDown(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ECONNREFUSED" || code === "ENOENT" || code === "ECONNRESET" || code === "EPIPE";
}

/** Docker error messages, without anything the request carried (env values could be sensitive one day). */
function engineMessage(error: unknown): string {
  const json = (error as { json?: { message?: string } } | undefined)?.json;
  if (json?.message) return json.message;
  return error instanceof Error ? error.message.replace(/^\(HTTP code \d+\)\s*/, "") : String(error);
}

/**
 * The parts of a container's config that depend on its network mode. bridge: the control port exposed, and
 * Gitai's default command (it listens on 8765 on every interface of its own namespace). host: Gitai told to
 * listen on 127.0.0.1:<port> only (appended to the image's `gitai serve` entry point), and the port in a label,
 * since no port binding shows it. `network:NAME`: as bridge, but on NAME, where Ruriko reaches it by name.
 */
function networkConfig(spec: ContainerSpec, labels: Record<string, string>): Pick<Docker.ContainerCreateOptions, "Labels" | "Cmd" | "ExposedPorts" | "NetworkingConfig"> {
  if (spec.network === "host") {
    if (!spec.controlPort) throw new RuntimeError("create", spec.agent, "failed", "a host-networked agent needs its control port in the spec");
    return { Labels: { ...labels, [LABELS.controlPort]: String(spec.controlPort) }, Cmd: ["--host", "127.0.0.1", "--port", String(spec.controlPort)] };
  }
  const named = namedNetworkOf(spec);
  return {
    Labels: labels,
    ...(spec.controlPort ? { ExposedPorts: { [`${spec.controlPort}/tcp`]: {} } } : {}),
    // Attached to that network only; its name is the address, so no alias is needed (and none could clash).
    ...(named ? { NetworkingConfig: { EndpointsConfig: { [named]: {} } } } : {}),
  };
}

/**
 * bridge: the instance's network, the control port published on a random 127.0.0.1 port. host: the host's
 * namespace. `network:NAME`: that network, nothing published (Ruriko is on the network too).
 */
function networkHostConfig(spec: ContainerSpec, network: string): Pick<Docker.HostConfig, "NetworkMode" | "PortBindings"> {
  if (spec.network === "host") return { NetworkMode: "host" };
  const named = namedNetworkOf(spec);
  if (named) return { NetworkMode: named };
  return { NetworkMode: network, ...(spec.controlPort ? { PortBindings: { [`${spec.controlPort}/tcp`]: [{ HostIp: "127.0.0.1", HostPort: "" }] } } : {}) };
}

const namedNetworkOf = (spec: ContainerSpec): string | undefined => (spec.network?.startsWith("network:") ? spec.network.slice("network:".length) : undefined);

/** Names and labels a container is created with: the caller (DockerRuntime) derives them from the instance. */
export interface CreateContext {
  name: string;
  volume: string;
  /** Labels the volume gets if this create makes it (the agent's first container). */
  volumeLabels: Record<string, string>;
  labels: Record<string, string>;
  /** The instance's bridge network (bridge mode). */
  bridgeNetwork: string;
  /** An image id to create from instead of the spec's reference (Runtime.create's `image`). */
  image?: string;
}

/** The engine's create request for a spec: hardened the same in every network mode. Pure, for the unit tests. */
export function containerCreateOptions(spec: ContainerSpec, ctx: CreateContext): Docker.ContainerCreateOptions {
  return {
    name: ctx.name,
    Image: ctx.image ?? spec.image,
    Env: [...Object.entries(spec.env).map(([k, v]) => `${k}=${v}`), `RURIKO_AGENT=${spec.agent}`],
    User: APP_USER,
    ...networkConfig(spec, ctx.labels),
    HostConfig: {
      ReadonlyRootfs: true,
      Tmpfs: { "/tmp": "rw,noexec,nosuid,size=64m" },
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      PidsLimit: spec.pidsLimit,
      ...(spec.memoryBytes !== undefined ? { Memory: spec.memoryBytes } : {}),
      ...(spec.cpus !== undefined ? { NanoCpus: Math.round(spec.cpus * 1e9) } : {}),
      Mounts: [{ Type: "volume", Source: ctx.volume, Target: DATA_DIR, VolumeOptions: { NoCopy: false, Labels: ctx.volumeLabels, DriverConfig: { Name: "local", Options: {} } } }],
      RestartPolicy: { Name: "no" },
      ...networkHostConfig(spec, ctx.bridgeNetwork),
    },
  };
}

/** Where Ruriko reaches a listed container's ACP: its port published on 127.0.0.1, else the port its label names (host mode). */
function controlHostPortOf(info: Docker.ContainerInfo): number | undefined {
  const published = info.Ports?.find((p) => p.IP === "127.0.0.1" && p.PublicPort);
  if (published) return published.PublicPort;
  const labelled = Number(info.Labels?.[LABELS.controlPort]);
  return Number.isInteger(labelled) && labelled > 0 && labelled < 65536 ? labelled : undefined;
}

export class DockerRuntime implements Runtime {
  /** putArchive writes into a running container's data volume as into a created one. */
  readonly agentFilesWhileRunning = true;
  private readonly docker: Docker;
  private readonly instance: string;
  private readonly network: string;
  private readonly log: Log | undefined;
  private readonly puller: DockerImagePuller;

  constructor(options: DockerRuntimeOptions) {
    this.docker = options.docker;
    this.instance = options.instance;
    this.network = options.network ?? `ruriko-${options.instance}`;
    this.log = options.log;
    this.puller = new DockerImagePuller({ docker: options.docker, timeoutMs: options.imagePullTimeoutMs ?? DEFAULT_IMAGE_PULL_TIMEOUT_MS, ...(options.log ? { log: options.log } : {}) });
  }

  containerName(agent: string): string {
    return `ruriko-${this.instance}-${agent}`;
  }

  volumeName(agent: string): string {
    return `ruriko-${this.instance}-${agent}-data`;
  }

  private ownerLabels(agent?: string): Record<string, string> {
    return { [LABELS.managedBy]: MANAGED_BY, [LABELS.instance]: this.instance, ...(agent ? { [LABELS.agent]: agent } : {}) };
  }

  private ownerFilter(agent?: string): string {
    return JSON.stringify({ label: [`${LABELS.managedBy}=${MANAGED_BY}`, `${LABELS.instance}=${this.instance}`, ...(agent ? [`${LABELS.agent}=${agent}`] : [])] });
  }

  private fail(action: string, agent: string | undefined, error: unknown): RuntimeError {
    if (error instanceof RuntimeError) return error;
    if (isEngineDown(error)) return new RuntimeError(action, agent, "engine-unavailable", "the Docker engine does not answer", { cause: error });
    if (statusCode(error) === 409) return new RuntimeError(action, agent, "conflict", engineMessage(error), { cause: error });
    return new RuntimeError(action, agent, "failed", engineMessage(error), { cause: error });
  }

  /** The one long wait on the engine is a pull (up to --image-pull-timeout): abandoned now. */
  stopWaiting(): void {
    this.puller.stop();
  }

  async ping(): Promise<boolean> {
    try {
      await this.docker.ping();
      return true;
    } catch {
      return false;
    }
  }

  private preparing: Promise<void> | undefined;

  /** Idempotent, and one at a time: Docker's duplicate-name check does not hold under concurrent creates. */
  prepare(spec: ContainerSpec): Promise<void> {
    if (networkModeOf(spec) !== "bridge") return Promise.resolve();
    this.preparing ??= this.ensureNetwork().finally(() => {
      this.preparing = undefined;
    });
    return this.preparing;
  }

  private async ensureNetwork(): Promise<void> {
    try {
      const existing = await this.docker.listNetworks({ filters: JSON.stringify({ name: [this.network] }) });
      if (existing.some((n) => n.Name === this.network)) return;
      await this.docker.createNetwork({ Name: this.network, Driver: "bridge", CheckDuplicate: true, Labels: this.ownerLabels() });
    } catch (error) {
      if (statusCode(error) === 409) return;
      throw this.fail("prepare network", undefined, error);
    }
  }

  async list(agent?: string): Promise<ObservedContainer[]> {
    let infos: Docker.ContainerInfo[];
    try {
      // Per agent when reconciling one: the engine filters, and only that agent's stopped containers get inspected.
      infos = await this.docker.listContainers({ all: true, filters: this.ownerFilter(agent) });
    } catch (error) {
      throw this.fail("list", undefined, error);
    }
    const out: ObservedContainer[] = [];
    for (const info of infos) {
      const labels = info.Labels ?? {};
      const agent = labels[LABELS.agent];
      if (!agent) continue;
      const observed: ObservedContainer = {
        id: info.Id,
        name: (info.Names?.[0] ?? "").replace(/^\//, ""),
        agent,
        image: labels[LABELS.image] ?? info.Image,
        state: info.State as ContainerState,
        exitCode: 0,
        oomKilled: false,
        specDigest: labels[LABELS.specDigest] ?? "",
        revision: labels[LABELS.revision] ?? "",
      };
      const controlHostPort = controlHostPortOf(info);
      if (controlHostPort !== undefined) observed.controlHostPort = controlHostPort;
      if (info.HostConfig?.NetworkMode) observed.network = info.HostConfig.NetworkMode;
      if (info.ImageID) observed.imageId = info.ImageID;
      if (info.State !== "running") {
        // Exit code, OOM kill and times are only in inspect; look only where they matter.
        try {
          const detail = await this.docker.getContainer(info.Id).inspect();
          observed.exitCode = detail.State.ExitCode;
          observed.oomKilled = detail.State.OOMKilled;
          observed.startedAt = detail.State.StartedAt;
          observed.finishedAt = detail.State.FinishedAt;
        } catch (error) {
          if (statusCode(error) === 404) continue; // removed between list and inspect
          throw this.fail("inspect", agent, error);
        }
      } else {
        observed.startedAt = new Date(info.Created * 1000).toISOString();
      }
      out.push(observed);
    }
    return out;
  }

  async imageExists(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (error) {
      if (statusCode(error) === 404) return false;
      throw this.fail("inspect image", undefined, error);
    }
  }

  /** One inspect when the policy lets a present image be used (the converge path's only image call); a pull otherwise. */
  async ensureImage(request: ImageRequest): Promise<ResolvedImage | undefined> {
    if (request.policy !== "Always") {
      const present = await this.resolveImage(request.image);
      if (present) return present;
    }
    if (request.policy === "Never") {
      throw new RuntimeError("create", request.agent, "image-missing", `image ${request.image} is not present on this host and its imagePullPolicy is Never: load it onto the host (docker load, docker pull), or let Ruriko pull it (imagePullPolicy: IfNotPresent)`);
    }
    try {
      await this.puller.pull({ agent: request.agent, image: request.image, absent: request.policy !== "Always", ...(request.credentials ? { credentials: request.credentials } : {}), ...(request.log ? { log: request.log } : {}) });
    } catch (error) {
      throw this.fail("pull", request.agent, error);
    }
    return this.resolveImage(request.image);
  }

  async resolveImage(image: string): Promise<ResolvedImage | undefined> {
    try {
      const info = await this.docker.getImage(image).inspect();
      return { id: info.Id, repoDigests: info.RepoDigests ?? [] };
    } catch (error) {
      if (statusCode(error) === 404) return undefined;
      throw this.fail("inspect image", undefined, error);
    }
  }

  async create(spec: ContainerSpec, options: CreateOptions = {}): Promise<ObservedContainer> {
    const created = await this.createStopped(spec, options);
    if (!options.running) return created;
    for (const [name, content] of Object.entries(options.running.files)) await this.writeAgentFile(created.id, name, content);
    // The old container lets go of the data volume before the new one starts on it.
    if (options.replacing) await this.stop(options.replacing, 0);
    await this.start(created.id);
    return { ...created, state: "running" };
  }

  private async createStopped(spec: ContainerSpec, options: CreateOptions): Promise<ObservedContainer> {
    const labels = { ...this.ownerLabels(spec.agent), [LABELS.specDigest]: spec.specDigest, [LABELS.revision]: spec.revision, ...(options.image ? { [LABELS.image]: spec.image } : {}) };
    const volume = this.volumeName(spec.agent);
    try {
      // The container being replaced moves aside, so the new one is created while it still runs.
      if (options.replacing) await this.moveAside(options.replacing);
      // The volume is created with the container, labelled (Mounts[].VolumeOptions), in the one create call.
      const container = await this.docker.createContainer(containerCreateOptions(spec, { name: this.containerName(spec.agent), volume, volumeLabels: this.ownerLabels(spec.agent), labels, bridgeNetwork: this.network, ...(options.image ? { image: options.image } : {}) }));
      return {
        id: container.id,
        name: this.containerName(spec.agent),
        agent: spec.agent,
        image: spec.image,
        state: "created",
        exitCode: 0,
        oomKilled: false,
        specDigest: spec.specDigest,
        revision: spec.revision,
      };
    } catch (error) {
      if (statusCode(error) === 404 && /image/i.test(engineMessage(error))) {
        // Gone between ensureImage and create (removed by hand meanwhile): the next reconcile makes it present again.
        throw new RuntimeError("create", spec.agent, "failed", `image ${spec.image} is not present on this host (removed since it was made present?)`, { cause: error });
      }
      const named = namedNetworkOf(spec);
      if (named && statusCode(error) === 404 && /network/i.test(engineMessage(error))) {
        throw new RuntimeError("create", spec.agent, "failed", `Docker network ${named} does not exist (--agent-network ${spec.network}): create it, or start Ruriko from the compose file that defines it`, { cause: error });
      }
      throw this.fail("create", spec.agent, error);
    }
  }

  readBack(containerId: string): Promise<ContainerFacts> {
    return readContainerFacts(this.docker, containerId);
  }

  /** Renames a container out of the agent's name (`…-replaced-<id>`); one already gone is not an error. */
  private async moveAside(containerId: string): Promise<void> {
    try {
      const info = await this.docker.getContainer(containerId).inspect();
      const name = info.Name.replace(/^\//, "");
      if (name.includes("-replaced-")) return;
      await this.docker.getContainer(containerId).rename({ name: `${name}-replaced-${containerId.slice(0, 12)}` });
    } catch (error) {
      if (statusCode(error) === 404) return;
      throw error;
    }
  }

  async writeAgentFile(containerId: string, name: string, content: Buffer): Promise<void> {
    const archive = pack();
    archive.entry({ name, mode: 0o600, uid: APP_UID, gid: APP_UID, mtime: new Date() }, content);
    archive.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of archive) chunks.push(chunk as Buffer);
    try {
      await this.docker.getContainer(containerId).putArchive(Buffer.concat(chunks), { path: DATA_DIR });
    } catch (error) {
      // The engine's message names the container and path only; the content is never part of it.
      throw this.fail("write agent file", undefined, error);
    }
  }

  async start(containerId: string): Promise<void> {
    try {
      await this.docker.getContainer(containerId).start();
    } catch (error) {
      if (statusCode(error) === 304) return;
      throw this.fail("start", undefined, error);
    }
  }

  async stop(containerId: string, timeoutSeconds = 10): Promise<void> {
    try {
      await this.docker.getContainer(containerId).stop({ t: timeoutSeconds });
    } catch (error) {
      if (statusCode(error) === 304 || statusCode(error) === 404) return;
      throw this.fail("stop", undefined, error);
    }
  }

  async remove(containerId: string): Promise<void> {
    try {
      await this.docker.getContainer(containerId).remove({ force: true });
    } catch (error) {
      if (statusCode(error) === 404) return;
      // 409 "removal already in progress" means it is going away: the next observation will confirm.
      if (statusCode(error) === 409 && /in progress/i.test(engineMessage(error))) return;
      throw this.fail("remove", undefined, error);
    }
  }

  async removeAgentVolume(agent: string): Promise<void> {
    try {
      const volume = this.docker.getVolume(this.volumeName(agent));
      const info = await volume.inspect();
      if (info.Labels?.[LABELS.instance] !== this.instance) return;
      await volume.remove({ force: true });
    } catch (error) {
      if (statusCode(error) === 404) return;
      throw this.fail("remove volume", agent, error);
    }
  }

  subscribe(onEvent: (event: RuntimeEvent) => void, onReconnect?: () => void): EventSubscription {
    let closed = false;
    let current: NodeJS.ReadableStream | undefined;
    let attempt = 0;
    let timer: NodeJS.Timeout | undefined;
    const filters = JSON.stringify({
      type: ["container"],
      label: [`${LABELS.managedBy}=${MANAGED_BY}`, `${LABELS.instance}=${this.instance}`],
      event: [...EVENT_ACTIONS],
    });

    const scheduleReconnect = () => {
      if (closed || timer) return;
      attempt++;
      const delay = backoffDelay(attempt, EVENT_RECONNECT);
      this.log?.warn({ attempt, retryInMs: delay }, "Docker event stream lost; reconnecting");
      timer = setTimeout(() => {
        timer = undefined;
        void connect(true);
      }, delay);
      timer.unref();
    };

    const connect = async (isReconnect: boolean) => {
      if (closed) return;
      try {
        const stream = (await this.docker.getEvents({ filters })) as NodeJS.ReadableStream;
        if (closed) {
          (stream as unknown as { destroy?: () => void }).destroy?.();
          return;
        }
        current = stream;
        attempt = 0;
        if (isReconnect) onReconnect?.();
        let buffered = "";
        stream.on("data", (chunk: Buffer) => {
          buffered += chunk.toString("utf8");
          let newline: number;
          while ((newline = buffered.indexOf("\n")) !== -1) {
            const line = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            if (!line) continue;
            try {
              const raw = JSON.parse(line) as { Action?: string; id?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
              const action = (raw.Action ?? "").split(":")[0]!;
              const agent = raw.Actor?.Attributes?.[LABELS.agent];
              if (!agent || !EVENT_ACTIONS.has(action)) continue;
              const exitCode = raw.Actor?.Attributes?.exitCode;
              onEvent({ agent, containerId: raw.Actor?.ID ?? raw.id ?? "", action: action as RuntimeEventAction, ...(exitCode !== undefined ? { exitCode: Number(exitCode) } : {}) });
            } catch {
              this.log?.debug({}, "unparseable Docker event line skipped");
            }
          }
        });
        const lost = () => {
          if (current === stream) current = undefined;
          scheduleReconnect();
        };
        stream.on("end", lost);
        stream.on("error", lost);
        stream.on("close", lost);
      } catch {
        scheduleReconnect();
      }
    };
    void connect(false);
    return {
      close: () => {
        closed = true;
        if (timer) clearTimeout(timer);
        (current as unknown as { destroy?: () => void } | undefined)?.destroy?.();
      },
    };
  }
}
