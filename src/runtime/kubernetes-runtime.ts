/**
 * The Runtime port on a Kubernetes cluster, through the official @kubernetes/client-node. Thin, like the Docker
 * adapter: it translates (kubernetes-objects.ts), labels and hardens; every decision stays the controller's. Only
 * objects carrying this installation's labels, in its one namespace, are ever listed or changed.
 *
 * The port is Docker-shaped (create, then start; stop; remove), and each call returns when the cluster has done
 * it, as Docker's do: start waits for the pod's Gitai container to run, stop and remove for the pod (and the
 * workload) to be gone. Without that a recreate could find the old pod adopted by the new StatefulSet of the same
 * name, and the controller would configure an agent that is not up yet. Those waits, list() and the lifecycle events
 * all read one shared watch of the owned objects (kubernetes-informers.ts) instead of asking the API server again.
 */
import type * as k8s from "@kubernetes/client-node";
import type { KubeConfig, V1Pod, V1StatefulSet } from "@kubernetes/client-node";
import { createServer, type Server } from "node:net";
import type { Clock } from "../time/clock.ts";
import { AppsV1Api, CoreV1Api, loadPortForward, PatchStrategy, setHeaderOptions } from "./kubernetes-client.ts";
import { sharedConnections } from "./kubernetes-connections.ts";
import { countedRequests, type ApiRequestKind } from "./kubernetes-requests.ts";
import { OwnedObjects, podKey, workloadKey } from "./kubernetes-informers.ts";
import { workloadFacts } from "./kubernetes-readback.ts";
import {
  ACP_CONTAINER_PORT,
  ANNOTATIONS,
  dataClaimName,
  handoverSecretFor,
  handoverSecretName,
  isHandoverFileName,
  observedFrom,
  ownerSelector,
  podGone,
  podName,
  podOwner,
  podStart,
  podTransition,
  statefulSetFor,
  workloadGone,
  workloadName,
  type ControlEndpoint,
} from "./kubernetes-objects.ts";
import {
  LABELS,
  networkModeOf,
  RuntimeError,
  type ContainerFacts,
  type ContainerSpec,
  type CreateOptions,
  type EventSubscription,
  type ImageRequest,
  type ObservedContainer,
  type ResolvedImage,
  type Runtime,
  type RuntimeEvent,
} from "./runtime.ts";

interface Log {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/**
 * How Ruriko reaches each agent's ACP. pod-ip: the pod's address (Ruriko in the cluster, or on a host that routes
 * to the pod network). port-forward: through the API server (Ruriko outside the cluster), on a 127.0.0.1 port of
 * Ruriko's own per pod; needs the `pods/portforward` permission.
 */
export type KubeAcpAccess = "pod-ip" | "port-forward";

export interface KubernetesRuntimeOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  instance: string;
  storageClass?: string | undefined;
  /** Default 1Gi. */
  dataVolumeSize?: string;
  acpAccess?: KubeAcpAccess;
  log?: Log;
  /** How long start waits for the pod to run (image pull, scheduling, volume); default 120 s. */
  startTimeoutMs?: number;
  /** The waits' timeouts and rereads (tests drive it); default the system's. */
  clock?: Clock;
  /** Told of each request and watch sent to the API server (serve's `ruriko_kubernetes_requests_total`). */
  onRequest?: (kind: ApiRequestKind) => void;
}

const FIELD_MANAGER = "ruriko";

const codeOf = (error: unknown): number | undefined => {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "number" ? code : undefined;
};

/** The API server's own message (a Status object's), never the request body (a Secret's data). */
function apiMessage(error: unknown): string {
  const body = (error as { body?: unknown } | undefined)?.body;
  if (typeof body === "string") {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) return parsed.message;
    } catch {
      // not JSON: fall through
    }
  }
  const message = (body as { message?: string } | undefined)?.message;
  if (message) return message;
  const text = error instanceof Error ? error.message : String(error);
  // The client's messages quote the response body; keep the first line only.
  return text.split("\n")[0]!.slice(0, 300);
}

function isUnavailable(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const cause = (error as { cause?: NodeJS.ErrnoException } | undefined)?.cause?.code;
  return [code, cause].some((c) => c === "ECONNREFUSED" || c === "ECONNRESET" || c === "ETIMEDOUT" || c === "EHOSTUNREACH" || c === "EPIPE");
}

/** A JSON Pointer segment (RFC 6901): annotation keys hold a "/". */
const pointer = (key: string) => key.replace(/~/g, "~0").replace(/\//g, "~1");

/** A workload by name and uid: what a wait holds of it. */
interface WorkloadRef {
  workload: string;
  uid: string;
}
const refOf = (sts: V1StatefulSet): WorkloadRef => ({ workload: sts.metadata!.name!, uid: sts.metadata!.uid! });

export class KubernetesRuntime implements Runtime {
  /** The handover Secret is copied into /data at the pod's start only: a running pod is replaced to take a file. */
  readonly agentFilesWhileRunning = false;
  private readonly kc: KubeConfig;
  private readonly core: k8s.CoreV1Api;
  private readonly apps: k8s.AppsV1Api;
  private readonly ns: string;
  private readonly instance: string;
  private readonly storageClass: string | undefined;
  private readonly dataVolumeSize: string;
  private readonly access: KubeAcpAccess;
  private readonly log: Log | undefined;
  private readonly startTimeoutMs: number;
  /** The owned StatefulSets and pods, watched (shared by subscribe, the waits and list). */
  private readonly owned: OwnedObjects;
  /** Workloads a start() of Ruriko's is waiting on: their pod running is that start, not the cluster's restart. */
  private readonly starting = new Set<string>();
  /**
   * The name of each StatefulSet seen, by uid (the port's container id): a workload is then found by its name, one
   * object, instead of among every owned one (1,000 agents made that 1,000 × 1,000 objects). A uid never changes
   * its name; one no longer there under its name is gone.
   */
  private readonly names = new Map<string, string>();
  /** Handover Secrets this process wrote, so known to exist: the next write replaces, without a create refused first. */
  private readonly handovers = new Set<string>();
  /** port-forward mode: one local listener per pod, by pod uid. */
  private readonly forwards = new Map<string, { server: Server; port: number }>();

  constructor(o: KubernetesRuntimeOptions) {
    this.kc = sharedConnections(o.onRequest ? countedRequests(o.kubeConfig, o.onRequest) : o.kubeConfig);
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.apps = this.kc.makeApiClient(AppsV1Api);
    this.ns = o.namespace;
    this.instance = o.instance;
    this.storageClass = o.storageClass;
    this.dataVolumeSize = o.dataVolumeSize ?? "1Gi";
    this.access = o.acpAccess ?? "pod-ip";
    this.log = o.log;
    this.startTimeoutMs = o.startTimeoutMs ?? 120_000;
    this.owned = new OwnedObjects({
      kubeConfig: this.kc,
      core: this.core,
      apps: this.apps,
      namespace: this.ns,
      selector: ownerSelector(this.instance),
      log: o.log,
      describe: apiMessage,
      ...(o.clock ? { clock: o.clock } : {}),
    });
    this.owned.listen({ workload: ({ after }) => after && this.remember(after) });
  }

  private fail(action: string, agent: string | undefined, error: unknown): RuntimeError {
    if (error instanceof RuntimeError) return error;
    if (isUnavailable(error)) return new RuntimeError(action, agent, "engine-unavailable", "the Kubernetes API server does not answer", { cause: error });
    if (codeOf(error) === 409) return new RuntimeError(action, agent, "conflict", apiMessage(error), { cause: error });
    return new RuntimeError(action, agent, "failed", apiMessage(error), { cause: error });
  }

  stopWaiting(): void {
    this.owned.waits.stop(() => new RuntimeError("wait", undefined, "interrupted", "Ruriko is stopping"));
  }

  /** A one-item list in the namespace: the cheapest call the Role allows (namespaces themselves are cluster-scoped). */
  async ping(): Promise<boolean> {
    try {
      await this.apps.listNamespacedStatefulSet({ namespace: this.ns, limit: 1 });
      return true;
    } catch {
      return false;
    }
  }

  /** Nothing is shared between agents on a cluster: the namespace is the operator's (it holds the RBAC). */
  async prepare(_spec: ContainerSpec): Promise<void> {
    try {
      await this.core.readNamespace({ name: this.ns });
    } catch (error) {
      if (codeOf(error) === 404) throw new RuntimeError("prepare", undefined, "failed", `namespace ${this.ns} does not exist: create it (Ruriko never creates or deletes namespaces)`);
      // Without get on namespaces (a namespace-scoped Role) the check itself is refused: the namespace is taken on trust.
      if (codeOf(error) === 403) return;
      throw this.fail("prepare", undefined, error);
    }
  }

  /** The owned StatefulSets and their pods (by StatefulSet uid): from the watch once it has listed, else asked for. */
  private async workloadsAndPods(agent?: string): Promise<[V1StatefulSet[], Map<string, V1Pod>]> {
    let sets: Iterable<V1StatefulSet>;
    let pods: Iterable<V1Pod>;
    if (this.owned.synced) {
      sets = agent === undefined ? this.owned.workloads.values() : this.owned.workloads.indexed(agent);
      pods = agent === undefined ? this.owned.pods.values() : this.owned.pods.indexed(agent);
    } else {
      const selector = ownerSelector(this.instance, agent);
      const [setList, podList] = await Promise.all([
        this.apps.listNamespacedStatefulSet({ namespace: this.ns, labelSelector: selector }),
        this.core.listNamespacedPod({ namespace: this.ns, labelSelector: selector }),
      ]);
      for (const sts of setList.items) this.remember(sts);
      sets = setList.items;
      pods = podList.items;
    }
    const byOwner = new Map<string, V1Pod>();
    for (const pod of pods) {
      const owner = podOwner(pod);
      if (owner) byOwner.set(owner, pod);
    }
    return [[...sets], byOwner];
  }

  async list(agent?: string): Promise<ObservedContainer[]> {
    try {
      const [sets, pods] = await this.workloadsAndPods(agent);
      const out: ObservedContainer[] = [];
      for (const sts of sets) {
        const pod = pods.get(sts.metadata?.uid ?? "");
        const observed = observedFrom(sts, pod, await this.endpointOf(pod));
        if (observed) out.push(observed);
      }
      return out;
    } catch (error) {
      throw this.fail("list", agent, error);
    }
  }

  private async endpointOf(pod: V1Pod | undefined): Promise<ControlEndpoint> {
    const ip = pod?.status?.podIP;
    if (!pod || !ip || pod.metadata?.deletionTimestamp) return {};
    const port = pod.spec?.containers.find((c) => c.name === "gitai")?.ports?.[0]?.containerPort ?? ACP_CONTAINER_PORT;
    if (this.access === "pod-ip") return { address: `http://${ip.includes(":") ? `[${ip}]` : ip}:${port}` };
    return { hostPort: await this.forwardTo(pod, port) };
  }

  /**
   * A 127.0.0.1 listener whose connections are tunnelled to the pod's port through the API server (one
   * WebSocket per connection, as `kubectl port-forward` does). Kept per pod: a replaced pod gets a new one.
   */
  private async forwardTo(pod: V1Pod, port: number): Promise<number> {
    const uid = pod.metadata!.uid!;
    const existing = this.forwards.get(uid);
    if (existing) return existing.port;
    const forward = new (await loadPortForward())(this.kc, true);
    const name = pod.metadata!.name!;
    const server = createServer((socket) => {
      forward.portForward(this.ns, name, [port], socket, null, socket).catch((error: unknown) => {
        this.log?.debug({ pod: name, err: apiMessage(error) }, "port-forward failed");
        socket.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
    server.unref();
    const local = (server.address() as { port: number }).port;
    this.forwards.set(uid, { server, port: local });
    return local;
  }

  private dropForwards(keep: ReadonlySet<string>): void {
    for (const [uid, f] of this.forwards) {
      if (keep.has(uid)) continue;
      f.server.close();
      this.forwards.delete(uid);
    }
  }

  /**
   * No cluster-wide answer to "is this image on the node": the kubelet pulls it (by the spec's pull policy) or
   * reports why it cannot, which shows as a pod that does not run. So any image is taken as present here.
   */
  async imageExists(_image: string): Promise<boolean> {
    return true;
  }

  /** The kubelet pulls as the pod's imagePullPolicy says (the spec's, in the template): nothing to do before. */
  async ensureImage(_request: ImageRequest): Promise<ResolvedImage | undefined> {
    return undefined;
  }

  /** The cluster has no API for what a tag resolves to on its nodes: moved tags are not observed here. */
  async resolveImage(_image: string): Promise<ResolvedImage | undefined> {
    return undefined;
  }

  /** The workload's pod template, as the facts its spec is read back from (kubernetes-readback.ts): one list. */
  async readBack(containerId: string): Promise<ContainerFacts> {
    let sets: V1StatefulSet[];
    try {
      sets = (await this.apps.listNamespacedStatefulSet({ namespace: this.ns, labelSelector: ownerSelector(this.instance) })).items;
    } catch (error) {
      throw this.fail("read back", undefined, error);
    }
    const sts = sets.find((s) => s.metadata?.uid === containerId);
    const facts = sts && workloadFacts(sts);
    if (!facts) throw new RuntimeError("read back", sts?.metadata?.labels?.[LABELS.agent], "failed", sts ? `StatefulSet ${sts.metadata?.name} has no readable Gitai container` : `no StatefulSet ${containerId} of instance ${this.instance}`);
    return facts;
  }

  /**
   * `replacing`: two StatefulSets of one name cannot exist side by side, and one cannot be renamed, so the old
   * workload is removed first (Docker moves the old container aside instead): on Kubernetes a replace costs the
   * downtime from this create to the new pod's start. The data claim stays and the new pod mounts it. Without
   * `running` the handover Secret is not made here: writeAgentFile makes it with the token, in one write (the pod
   * mounts it optionally). With it, the Secret is written with the files first and the StatefulSet created at 1
   * replica (a create and a scale were two writes the cluster's StatefulSet controller acted on in turn).
   */
  async create(spec: ContainerSpec, options: CreateOptions = {}): Promise<ObservedContainer> {
    if (options.replacing) await this.remove(options.replacing);
    if (networkModeOf(spec) !== "bridge") {
      throw new RuntimeError("create", spec.agent, "failed", `--agent-network ${spec.network} is a Docker mode: on Kubernetes agents are pods, reached by --kube-acp-access`);
    }
    const running = options.running !== undefined;
    const body = statefulSetFor(spec, { instance: this.instance, storageClass: this.storageClass, dataVolumeSize: this.dataVolumeSize }, running);
    const name = body.metadata!.name!;
    // The waits read the watch; and its pod's start is Ruriko's doing, not a restart to announce.
    const release = this.owned.use();
    if (running) this.starting.add(name);
    try {
      await this.untilPodNameFree(podName(name), spec.agent);
      if (options.running) await this.writeHandover(spec.agent, options.running.files);
      const created = await this.apps.createNamespacedStatefulSet({ namespace: this.ns, body, fieldManager: FIELD_MANAGER });
      this.remember(created);
      this.owned.recordWorkload(created);
      const observed = observedFrom(created, undefined);
      if (!observed) throw new RuntimeError("create", spec.agent, "failed", "the created StatefulSet lacks its labels");
      if (!running) return observed;
      // Only names are held while the cluster starts the pod: a thousand creates wait at once.
      await this.waitForRunning(refOf(created), spec.agent);
      return { ...observed, state: "running" };
    } catch (error) {
      throw this.fail("create", spec.agent, error);
    } finally {
      if (running) this.starting.delete(name);
      release();
    }
  }

  private remember(sts: V1StatefulSet): void {
    if (sts.metadata?.uid && sts.metadata.name) this.names.set(sts.metadata.uid, sts.metadata.name);
  }

  /**
   * The owned StatefulSet with this uid (the port's container id): from the watch once it has listed (it holds
   * Ruriko's own writes too), else read. `fresh`: read in any case (a conditional write was refused).
   */
  private async workloadById(containerId: string, fresh = false): Promise<V1StatefulSet | undefined> {
    const name = this.names.get(containerId);
    if (this.owned.synced && !fresh) {
      const held = name === undefined ? undefined : this.owned.workloads.get(name);
      return held?.metadata?.uid === containerId ? held : undefined;
    }
    if (name === undefined) return (await this.workloadsAndPods())[0].find((s) => s.metadata?.uid === containerId);
    const sts = await this.readWorkload(name);
    if (sts?.metadata?.uid === containerId && sts.metadata.labels?.[LABELS.instance] === this.instance) return sts;
    this.names.delete(containerId);
    return undefined;
  }

  /** One StatefulSet from the API server, into the watch's store (undefined: none of that name). */
  private async readWorkload(name: string): Promise<V1StatefulSet | undefined> {
    const seen = this.owned.workloads.get(name);
    try {
      const sts = await this.apps.readNamespacedStatefulSet({ name, namespace: this.ns });
      this.owned.recordWorkload(sts);
      return sts;
    } catch (error) {
      if (codeOf(error) !== 404) throw error;
      this.owned.forgetWorkload(name, seen);
      return undefined;
    }
  }

  private async readPod(name: string): Promise<void> {
    const seen = this.owned.pods.get(name);
    try {
      this.owned.recordPod(await this.core.readNamespacedPod({ name, namespace: this.ns }));
    } catch (error) {
      if (codeOf(error) !== 404) throw error;
      this.owned.forgetPod(name, seen);
    }
  }

  /** One write: a replace where this process made the Secret before, else a create (a replace if it exists). */
  private async writeHandover(agent: string, files: Record<string, Buffer>): Promise<void> {
    const body = handoverSecretFor(this.instance, agent, files);
    const name = body.metadata!.name!;
    const replace = () => this.core.replaceNamespacedSecret({ name, namespace: this.ns, body, fieldManager: FIELD_MANAGER });
    if (this.handovers.has(name)) {
      try {
        await replace();
        return;
      } catch (error) {
        if (codeOf(error) !== 404) throw error;
      }
    }
    try {
      await this.core.createNamespacedSecret({ namespace: this.ns, body, fieldManager: FIELD_MANAGER });
    } catch (error) {
      if (codeOf(error) !== 409) throw error;
      await replace();
    }
    this.handovers.add(name);
  }

  /**
   * Into the handover Secret, which the pod's init container copies into /data (kubernetes-objects.ts). A pod
   * already running copied the old content: it is deleted, and the one the cluster makes in its place takes the
   * new file (agentFilesWhileRunning is false, so the executor writes a new agent's token before its first
   * start, when there is no pod yet). A running pod only meets this when it refuses the token on record: its
   * process was restarted inside the pod and took no token, so a new pod costs little.
   */
  async writeAgentFile(containerId: string, name: string, content: Buffer): Promise<void> {
    if (!isHandoverFileName(name)) throw new RuntimeError("write agent file", undefined, "failed", `not a file name for the data volume: ${JSON.stringify(name)}`);
    const release = this.owned.use();
    try {
      const sts = await this.workloadById(containerId);
      if (!sts) throw new RuntimeError("write agent file", undefined, "failed", `no workload ${containerId}`);
      const agent = sts.metadata!.labels![LABELS.agent]!;
      await this.writeHandover(agent, { [name]: content });
      if ((sts.spec?.replicas ?? 0) > 0) {
        const pod = podName(sts.metadata!.name!);
        try {
          // Held as being deleted at once: the wait below must not take the old pod, still running, for the new one.
          this.owned.recordPod(await this.core.deleteNamespacedPod({ name: pod, namespace: this.ns, gracePeriodSeconds: 5 }));
        } catch (error) {
          if (codeOf(error) !== 404) throw error;
        }
        // The pod's running state is Ruriko's doing: not announced as a restart, and waited for as a start is.
        await this.waitForRunning(refOf(sts), agent);
      }
    } catch (error) {
      // The API server's message names the object only; the content never goes into an error.
      throw this.fail("write agent file", undefined, error);
    } finally {
      release();
    }
  }

  /**
   * Sets the replica count and, in the same write, the generation it will produce (a spec change adds one):
   * there is never a moment when Ruriko's own write looks like someone else's edit. The write is conditional on
   * the generation read (a JSON Patch test), so that predicted generation holds; the status the cluster keeps
   * writing does not change the generation, so it does not make the write fail.
   */
  private async scale(containerId: string, replicas: number, action: string): Promise<V1StatefulSet | undefined> {
    for (let attempt = 0; ; attempt++) {
      const sts = await this.workloadById(containerId, attempt > 0);
      if (!sts) return undefined;
      if ((sts.spec?.replicas ?? 1) === replicas) return sts;
      const generation = sts.metadata?.generation ?? 0;
      const patch = [
        { op: "test", path: "/metadata/generation", value: generation },
        { op: "replace", path: "/spec/replicas", value: replicas },
        { op: "add", path: `/metadata/annotations/${pointer(ANNOTATIONS.generation)}`, value: String(generation + 1) },
        ...(replicas > 0 ? [{ op: "add", path: `/metadata/annotations/${pointer(ANNOTATIONS.started)}`, value: "true" }] : []),
      ];
      try {
        const patched = await this.apps.patchNamespacedStatefulSet(
          { name: sts.metadata!.name!, namespace: this.ns, body: patch, fieldManager: FIELD_MANAGER },
          setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
        );
        this.owned.recordWorkload(patched);
        this.log?.debug({ workload: sts.metadata?.name, replicas }, action);
        return patched;
      } catch (error) {
        // 422: the test failed (the spec changed since it was read); read it again and retry.
        if ((codeOf(error) !== 422 && codeOf(error) !== 409) || attempt >= 3) throw error;
      }
    }
  }

  async start(containerId: string): Promise<void> {
    let agent: string | undefined;
    const release = this.owned.use();
    try {
      const sts = await this.workloadById(containerId);
      if (!sts) throw new RuntimeError("start", undefined, "failed", `no workload ${containerId}`);
      agent = sts.metadata?.labels?.[LABELS.agent];
      this.starting.add(sts.metadata!.name!);
      try {
        const scaled = await this.scale(containerId, 1, "start");
        await this.waitForRunning(refOf(scaled ?? sts), agent);
      } finally {
        this.starting.delete(sts.metadata!.name!);
      }
    } catch (error) {
      throw this.fail("start", agent, error);
    } finally {
      release();
    }
  }

  /**
   * Until the pod's Gitai container runs, as Docker's start returns with the container running. A pod that cannot
   * (image missing, crash loop) fails the start with the kubelet's reason once the timeout is up.
   */
  private async waitForRunning({ workload, uid }: WorkloadRef, agent: string | undefined): Promise<void> {
    const pod = podName(workload);
    this.starting.add(workload);
    try {
      await this.owned.waits.until({
        keys: [podKey(pod)],
        check: () => {
          const progress = podStart(this.owned.pods.get(pod), uid);
          if (progress.state === "running") return { state: "done" };
          if (progress.state === "cannot") return { state: "failed", error: new RuntimeError("start", agent, "image-missing", `the pod cannot get its image (${progress.reason})`) };
          return { state: "waiting", reason: progress.reason };
        },
        reread: () => this.readPod(pod),
        timeoutMs: this.startTimeoutMs,
        timedOut: (reason) => new RuntimeError("start", agent, "failed", `the pod did not run within ${Math.round(this.startTimeoutMs / 1000)} s (${reason})`),
      });
    } finally {
      this.starting.delete(workload);
    }
  }

  async stop(containerId: string, timeoutSeconds = 10): Promise<void> {
    const release = this.owned.use();
    try {
      const sts = await this.scale(containerId, 0, "stop");
      if (sts) await this.waitForPodGone(sts, (timeoutSeconds + 30) * 1000);
    } catch (error) {
      throw this.fail("stop", undefined, error);
    } finally {
      release();
    }
  }

  /**
   * A pod of an earlier workload of the same name (deleted behind Ruriko's back, its pod still terminating) holds
   * the pod's name: the cluster's StatefulSet controller would fail to make the new one and retry with a growing
   * backoff, over a minute. So a create waits for the name first.
   */
  private untilPodNameFree(pod: string, agent: string): Promise<void> {
    const timeoutMs = 120_000;
    return this.owned.waits.until({
      keys: [podKey(pod)],
      check: () => (this.owned.pods.get(pod) ? { state: "waiting", reason: `pod ${pod} of an earlier workload still terminating` } : { state: "done" }),
      reread: () => this.readPod(pod),
      timeoutMs,
      timedOut: (reason) => new RuntimeError("create", agent, "failed", `${reason} after ${timeoutMs / 1000} s`),
    });
  }

  private waitForPodGone(sts: V1StatefulSet, timeoutMs: number): Promise<void> {
    const name = podName(sts.metadata!.name!);
    const uid = sts.metadata!.uid!;
    const agent = sts.metadata?.labels?.[LABELS.agent];
    return this.owned.waits.until({
      keys: [podKey(name)],
      check: () => (podGone(this.owned.pods.get(name), uid) ? { state: "done" } : { state: "waiting", reason: "still there" }),
      reread: () => this.readPod(name),
      timeoutMs,
      timedOut: () => new RuntimeError("stop", agent, "failed", `pod ${name} still there after ${Math.round(timeoutMs / 1000)} s`),
    });
  }

  /** Deletes the workload and waits until it and its pod are gone (foreground deletion); its data claim stays. */
  async remove(containerId: string): Promise<void> {
    const release = this.owned.use();
    try {
      const sts = await this.workloadById(containerId);
      if (!sts) return;
      const name = sts.metadata!.name!;
      const agent = sts.metadata?.labels?.[LABELS.agent];
      const pod = podName(name);
      await this.apps
        .deleteNamespacedStatefulSet({ name, namespace: this.ns, propagationPolicy: "Foreground", body: { preconditions: { uid: containerId }, propagationPolicy: "Foreground" } })
        .catch((error: unknown) => {
          if (codeOf(error) !== 404 && codeOf(error) !== 409) throw error;
        });
      const timeoutMs = 60_000;
      await this.owned.waits.until({
        keys: [workloadKey(name), podKey(pod)],
        check: () => {
          if (!workloadGone(this.owned.workloads.get(name), containerId)) return { state: "waiting", reason: `StatefulSet ${name} still there` };
          if (!podGone(this.owned.pods.get(pod), containerId)) return { state: "waiting", reason: `pod ${pod} still there` };
          return { state: "done" };
        },
        reread: async () => {
          await Promise.all([this.readWorkload(name), this.readPod(pod)]);
        },
        timeoutMs,
        timedOut: (reason) => new RuntimeError("remove", agent, "failed", `${reason} after ${timeoutMs / 1000} s`),
      });
    } catch (error) {
      throw this.fail("remove", undefined, error);
    } finally {
      release();
    }
  }

  /** The agent's data claim and its handover Secret: only when the agent itself is pruned. */
  async removeAgentVolume(agent: string): Promise<void> {
    const workload = workloadName(this.instance, agent);
    const owned = (labels: Record<string, string> | undefined) => labels?.[LABELS.instance] === this.instance && labels[LABELS.agent] === agent;
    this.handovers.delete(handoverSecretName(workload));
    try {
      for (const [read, del, name] of [
        [(n: string) => this.core.readNamespacedPersistentVolumeClaim({ name: n, namespace: this.ns }), (n: string) => this.core.deleteNamespacedPersistentVolumeClaim({ name: n, namespace: this.ns }), dataClaimName(workload)],
        [(n: string) => this.core.readNamespacedSecret({ name: n, namespace: this.ns }), (n: string) => this.core.deleteNamespacedSecret({ name: n, namespace: this.ns }), handoverSecretName(workload)],
      ] as const) {
        try {
          const object = await read(name);
          if (!owned(object.metadata?.labels)) continue;
          await del(name);
        } catch (error) {
          if (codeOf(error) !== 404) throw error;
        }
      }
    } catch (error) {
      throw this.fail("remove volume", agent, error);
    }
  }

  /**
   * Lifecycle events from the shared watch of the owned StatefulSets and pods, mapped to Docker's events: a
   * workload deleted → destroy; one edited by someone else → destroy (the container Ruriko made is no more); the
   * Gitai container stopping → die (oom when OOM-killed); its pod deleted while running → die; its pod running
   * again without a start of Ruriko's (the cluster replaced or restarted it) → restart, so the new process is
   * configured.
   */
  subscribe(onEvent: (event: RuntimeEvent) => void, onReconnect?: () => void): EventSubscription {
    const release = this.owned.use();
    const emitPod = (before: V1Pod | undefined, after: V1Pod | undefined) => {
      const pod = after ?? before!;
      const agent = pod.metadata?.labels?.[LABELS.agent];
      const owner = pod.metadata?.ownerReferences?.find((r) => r.kind === "StatefulSet");
      if (!agent || !owner) return;
      const transition = podTransition(before, after);
      if (!transition) return;
      const action: RuntimeEvent["action"] = transition === "start" && !this.starting.has(owner.name) ? "restart" : transition;
      const status = pod.status?.containerStatuses?.find((c) => c.name === "gitai");
      const exitCode = (status?.state?.terminated ?? status?.lastState?.terminated)?.exitCode;
      onEvent({ agent, containerId: owner.uid, action, ...(exitCode !== undefined && action !== "start" ? { exitCode } : {}) });
    };
    const emitWorkload = (sts: V1StatefulSet) => {
      const agent = sts.metadata?.labels?.[LABELS.agent];
      if (agent && sts.metadata?.uid) onEvent({ agent, containerId: sts.metadata.uid, action: "destroy" });
    };
    const unlisten = this.owned.listen({
      pod: ({ before, after }) => {
        if (!after && this.access === "port-forward") this.dropForwards(new Set([...this.owned.pods.values()].map((p) => p.metadata?.uid ?? "")));
        emitPod(before, after);
      },
      workload: ({ before, after }) => {
        if (!after) return emitWorkload(before!);
        const recorded = after.metadata?.annotations?.[ANNOTATIONS.generation];
        if (before && recorded !== undefined && recorded !== String(after.metadata?.generation)) emitWorkload(after);
      },
      ...(onReconnect ? { reconnect: onReconnect } : {}),
    });
    return {
      close: () => {
        unlisten();
        release();
        for (const f of this.forwards.values()) f.server.close();
        this.forwards.clear();
      },
    };
  }
}
