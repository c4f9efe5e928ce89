/**
 * The Kubernetes objects an agent is made of, as pure functions of its ContainerSpec (the same spec the Docker
 * adapter turns into a container), and the way back: what Ruriko observes of a StatefulSet and its pod, as the
 * ObservedContainer the controller judges. No client here: kubernetes-runtime.ts sends and reads these objects.
 *
 * One agent = one single-replica StatefulSet, because it gives exactly what a Docker container with a named
 * volume gives: a stable name, a pod the cluster keeps alive, and a PersistentVolumeClaim (from the
 * volumeClaimTemplate) that outlives the pod and the StatefulSet itself, so that a recreate on an image change
 * finds the agent's data where it left it. A Deployment would need its PVC made by hand, and rolls a new pod up
 * before the old one is gone (two Gitai processes on one volume).
 *
 * "Created, not started" (the port's create) is a StatefulSet with 0 replicas; start is 1, stop is 0.
 */
import type { V1ContainerStatus, V1ObjectMeta, V1Pod, V1PersistentVolumeClaim, V1Secret, V1StatefulSet } from "@kubernetes/client-node";
import { createHash } from "node:crypto";
import { LABELS, MANAGED_BY, type ContainerSpec, type ContainerState, type ObservedContainer } from "./runtime.ts";

export const APP_UID = 65532;
export const DATA_DIR = "/data";
/** Gitai's ACP port in its container (its default; bridge mode's port on Docker). */
export const ACP_CONTAINER_PORT = 8765;
export const AGENT_CONTAINER = "gitai";
const TOKEN_MOUNT = "/run/ruriko/handover";

/** Annotations on the StatefulSet: what Ruriko last made it, to tell its own writes from someone else's. */
export const ANNOTATIONS = {
  /** The metadata.generation Ruriko's last write of the spec produced: another one means an edit behind its back. */
  generation: "ruriko.dev/generation",
  /** Set once the workload was first scaled up: tells "created" from "exited" when it has 0 replicas. */
  started: "ruriko.dev/started",
  /** The spec's pids limit, which no pod field holds: what a read-back needs beside the template (kubernetes-readback.ts). */
  pidsLimit: "ruriko.dev/pids-limit",
} as const;

/** StatefulSet names must leave room for the pod's controller-revision-hash label (name + 11 characters ≤ 63). */
const MAX_WORKLOAD_NAME = 52;

/** `ruriko-<instance>-<agent>`, shortened with a hash when too long for a StatefulSet name (stable, unique). */
export function workloadName(instance: string, agent: string): string {
  const full = `ruriko-${instance}-${agent}`;
  if (full.length <= MAX_WORKLOAD_NAME) return full;
  const hash = createHash("sha256").update(full).digest("hex").slice(0, 10);
  return `${full.slice(0, MAX_WORKLOAD_NAME - 11).replace(/-+$/, "")}-${hash}`;
}

/** The Secret holding the files Ruriko hands the agent (its ACP token), named after the workload. */
export const handoverSecretName = (workload: string) => `${workload}-handover`;
/** The PVC the volumeClaimTemplate `data` makes for the single pod. */
export const dataClaimName = (workload: string) => `data-${workload}-0`;
export const podName = (workload: string) => `${workload}-0`;

export function ownerLabels(instance: string, agent?: string): Record<string, string> {
  return { [LABELS.managedBy]: MANAGED_BY, [LABELS.instance]: instance, ...(agent ? { [LABELS.agent]: agent } : {}) };
}

export const ownerSelector = (instance: string, agent?: string) =>
  Object.entries(ownerLabels(instance, agent))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");

export interface WorkloadOptions {
  instance: string;
  /** StorageClass of the data volume; undefined: the cluster's default class. */
  storageClass?: string | undefined;
  /** Size requested for the data volume, a Kubernetes quantity. */
  dataVolumeSize: string;
}

/** Memory in bytes and CPUs as Kubernetes quantities: exact (bytes, millicores), never rounded up to a unit. */
export function resourceLimits(spec: Pick<ContainerSpec, "memoryBytes" | "cpus">): Record<string, string> | undefined {
  const limits: Record<string, string> = {};
  if (spec.memoryBytes !== undefined) limits.memory = String(spec.memoryBytes);
  if (spec.cpus !== undefined) limits.cpu = `${Math.max(1, Math.round(spec.cpus * 1000))}m`;
  return Object.keys(limits).length > 0 ? limits : undefined;
}

/**
 * Copies the handed-over files (the mounted Secret) into the data volume, mode 0600, where Gitai takes its token
 * and deletes it as it does on Docker (gitai/acp/control-token.ts). The Secret is mounted into this init
 * container only: the MCP tool servers Gitai later runs as the same user never see it, nor a file of it that
 * Gitai has not already deleted. Written to a temporary name and renamed, so Gitai never reads half a token.
 */
const HANDOVER_SCRIPT = [
  `const fs = require("node:fs");`,
  `for (const name of fs.readdirSync(${JSON.stringify(TOKEN_MOUNT)})) {`,
  `  if (name.startsWith(".")) continue;`,
  `  const data = fs.readFileSync(${JSON.stringify(TOKEN_MOUNT)} + "/" + name);`,
  `  if (data.length === 0) continue;`,
  `  const target = ${JSON.stringify(DATA_DIR)} + "/" + name;`,
  `  fs.writeFileSync(target + ".handover", data, { mode: 0o600 });`,
  `  fs.renameSync(target + ".handover", target);`,
  `}`,
].join("\n");

const containerSecurity = {
  runAsNonRoot: true,
  runAsUser: APP_UID,
  runAsGroup: APP_UID,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  privileged: false,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

/**
 * The agent's StatefulSet, with 0 replicas (created, not started), or 1 when `running` (created started: one write
 * the cluster acts on, not a create and then a scale). Hardened as the Docker container is: user
 * 65532, read-only root, every capability dropped, no privilege escalation, seccomp RuntimeDefault, /tmp a
 * small in-memory emptyDir, no service-account token, no service links in the environment. Docker's pids limit
 * has no per-pod field in Kubernetes (it is the kubelet's podPidsLimit): the spec's value stays in the digest only.
 */
export function statefulSetFor(spec: ContainerSpec, o: WorkloadOptions, running = false): V1StatefulSet {
  const name = workloadName(o.instance, spec.agent);
  const labels = ownerLabels(o.instance, spec.agent);
  // Annotations, not labels: a digest (`sha256:` and 64 hex) and a revision exceed what a label value may hold.
  const about = { [LABELS.specDigest]: spec.specDigest, [LABELS.revision]: spec.revision };
  const limits = resourceLimits(spec);
  const image = spec.image;
  const pullPolicy = spec.imagePullPolicy ?? "IfNotPresent";
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    // A new object's generation is 1: recorded in the same write, so it is never mistaken for an edit.
    metadata: { name, labels, annotations: { ...about, [ANNOTATIONS.generation]: "1", [ANNOTATIONS.pidsLimit]: String(spec.pidsLimit), ...(running ? { [ANNOTATIONS.started]: "true" } : {}) } },
    spec: {
      replicas: running ? 1 : 0,
      serviceName: name,
      selector: { matchLabels: labels },
      podManagementPolicy: "Parallel",
      // The data outlives the workload (a recreate finds it); only pruning the agent deletes it (removeAgentVolume).
      persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
      template: {
        metadata: { labels, annotations: about },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 10,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: APP_UID,
            runAsGroup: APP_UID,
            // The data volume is root-owned when provisioned: the kubelet makes it group-writable for this group.
            fsGroup: APP_UID,
            fsGroupChangePolicy: "OnRootMismatch",
            seccompProfile: { type: "RuntimeDefault" },
          },
          initContainers: [
            {
              name: "handover",
              image,
              imagePullPolicy: pullPolicy,
              command: ["/usr/local/bin/node", "-e", HANDOVER_SCRIPT],
              securityContext: containerSecurity,
              // Requests of its own: by default they equal the limits, and an init container's count for the whole
              // pod, so a 250m CPU limit reserved a quarter of a CPU per agent for a copy of one file (a 2-CPU node
              // scheduled 8 agents).
              resources: { limits: { memory: "64Mi", cpu: "250m" }, requests: { memory: "16Mi", cpu: "10m" } },
              volumeMounts: [
                { name: "handover", mountPath: TOKEN_MOUNT, readOnly: true },
                { name: "data", mountPath: DATA_DIR },
              ],
            },
          ],
          containers: [
            {
              name: AGENT_CONTAINER,
              image,
              imagePullPolicy: pullPolicy,
              env: [...Object.entries(spec.env).map(([k, v]) => ({ name: k, value: v })), { name: "RURIKO_AGENT", value: spec.agent }],
              ports: [{ name: "acp", containerPort: spec.controlPort ?? ACP_CONTAINER_PORT, protocol: "TCP" }],
              securityContext: containerSecurity,
              ...(limits ? { resources: { limits } } : {}),
              volumeMounts: [
                { name: "data", mountPath: DATA_DIR },
                { name: "tmp", mountPath: "/tmp" },
              ],
            },
          ],
          volumes: [
            { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "64Mi" } },
            // Optional: Ruriko writes it once, with the token, before the first start; a pod started without it
            // (its create outlived a crash before the handover) runs with no token and is handed one (writeAgentFile).
            { name: "handover", secret: { secretName: handoverSecretName(name), defaultMode: 0o400, optional: true } },
          ],
        },
      },
      volumeClaimTemplates: [dataClaimFor(spec.agent, o)],
    },
  };
}

function dataClaimFor(agent: string, o: WorkloadOptions): V1PersistentVolumeClaim {
  return {
    metadata: { name: "data", labels: ownerLabels(o.instance, agent) },
    spec: {
      accessModes: ["ReadWriteOnce"],
      ...(o.storageClass ? { storageClassName: o.storageClass } : {}),
      resources: { requests: { storage: o.dataVolumeSize } },
    },
  };
}

/** The handover Secret: files for the agent's data volume (its ACP token), keyed by file name. */
export function handoverSecretFor(instance: string, agent: string, files: Record<string, Buffer>): V1Secret {
  const data: Record<string, string> = {};
  for (const [name, content] of Object.entries(files)) data[name] = content.toString("base64");
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: { name: handoverSecretName(workloadName(instance, agent)), labels: ownerLabels(instance, agent) },
    data,
  };
}

/** A file name Secret keys and the data directory both accept. */
export const isHandoverFileName = (name: string) => /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(name);

/** Where Ruriko reaches a pod's ACP, decided by the adapter (pod IP, or a local port-forward). */
export interface ControlEndpoint {
  address?: string;
  hostPort?: number;
}

/**
 * A StatefulSet and its pod as the controller sees containers:
 * - `id`: the StatefulSet's uid. A pod the cluster replaces keeps it (the workload is what Ruriko made; the
 *   pod is the cluster's to keep alive); a recreate by Ruriko, or a workload deleted and made again by anyone,
 *   changes it, as a Docker container id changes.
 * - `state`: 0 replicas → `created` until first started (annotation), then `exited` (stopped). 1 replica: the
 *   Gitai container running in a pod that is not being deleted → `running`; no pod yet, a pod pending, pulling,
 *   crash-looping or terminating → `restarting` (the cluster is at it; the planner leaves it alone and a watch
 *   event brings the agent back when the pod runs).
 * - `exitCode`, `oomKilled`, `finishedAt`: the Gitai container's last termination (`lastState.terminated`, or
 *   its current one), `oomKilled` when its reason is OOMKilled; `startedAt`: when it last started running.
 * - `specDigest`, `revision`: the annotations (too long for label values), unless the workload was edited behind Ruriko's back (its generation is not the
 *   one Ruriko's last write produced, or the pod runs another image than the template): then a digest that
 *   matches no spec, so the planner heals it (or reports it) by the Agent's `drift`, as for a changed container.
 * - `image`: the template's image. `controlAddress`/`controlHostPort`: where Ruriko reaches ACP.
 */
export function observedFrom(sts: V1StatefulSet, pod: V1Pod | undefined, endpoint: ControlEndpoint = {}): ObservedContainer | undefined {
  const agent = sts.metadata?.labels?.[LABELS.agent];
  const about = sts.metadata?.annotations ?? {};
  if (!agent || !sts.metadata?.uid) return undefined;
  const template = sts.spec?.template.spec?.containers.find((c) => c.name === AGENT_CONTAINER);
  const status = pod?.status?.containerStatuses?.find((c) => c.name === AGENT_CONTAINER);
  const replicas = sts.spec?.replicas ?? 1;
  let state: ContainerState;
  if (replicas === 0) state = sts.metadata.annotations?.[ANNOTATIONS.started] ? "exited" : "created";
  else if (pod && !pod.metadata?.deletionTimestamp && status?.state?.running) state = "running";
  else state = "restarting";
  const terminated = status?.state?.terminated ?? status?.lastState?.terminated;
  const edited = isEdited(sts, pod);
  const observed: ObservedContainer = {
    id: sts.metadata.uid,
    name: sts.metadata.name ?? "",
    agent,
    image: template?.image ?? "",
    state,
    exitCode: terminated?.exitCode ?? 0,
    oomKilled: terminated?.reason === "OOMKilled",
    specDigest: edited ? `edited:${sts.metadata.generation ?? 0}` : (about[LABELS.specDigest] ?? ""),
    revision: about[LABELS.revision] ?? "",
  };
  const startedAt = status?.state?.running?.startedAt;
  if (startedAt) observed.startedAt = new Date(startedAt).toISOString();
  if (terminated?.finishedAt) observed.finishedAt = new Date(terminated.finishedAt).toISOString();
  if (state === "running" && endpoint.address) observed.controlAddress = endpoint.address;
  if (state === "running" && endpoint.hostPort) observed.controlHostPort = endpoint.hostPort;
  return observed;
}

/** Changed by someone else: a spec write Ruriko did not make, or a pod whose image was set by hand. */
export function isEdited(sts: V1StatefulSet, pod: V1Pod | undefined): boolean {
  const recorded = sts.metadata?.annotations?.[ANNOTATIONS.generation];
  if (recorded !== undefined && recorded !== String(sts.metadata?.generation ?? "")) return true;
  const template = sts.spec?.template.spec?.containers.find((c) => c.name === AGENT_CONTAINER)?.image;
  const running = pod?.spec?.containers.find((c) => c.name === AGENT_CONTAINER)?.image;
  return running !== undefined && template !== undefined && running !== template;
}

/** What the watch makes of a change to a pod, as the Docker event it stands for (undefined: nothing to say). */
export function podTransition(before: V1Pod | undefined, after: V1Pod | undefined): "start" | "die" | "oom" | undefined {
  const was = before?.status?.containerStatuses?.find((c) => c.name === AGENT_CONTAINER);
  const now = after?.status?.containerStatuses?.find((c) => c.name === AGENT_CONTAINER);
  if (!after) return was?.state?.running ? "die" : undefined;
  const restarts = (now?.restartCount ?? 0) - (was?.restartCount ?? 0);
  const lastReason = (now?.state?.terminated ?? now?.lastState?.terminated)?.reason;
  if (was?.state?.running && !now?.state?.running) return lastReason === "OOMKilled" ? "oom" : "die";
  if (!was?.state?.running && now?.state?.running) return "start";
  if (restarts > 0) return lastReason === "OOMKilled" ? "oom" : "die";
  return undefined;
}

/** The workload (StatefulSet uid) a pod belongs to. */
export const podOwner = (pod: V1Pod | undefined): string | undefined => pod?.metadata?.ownerReferences?.find((r) => r.kind === "StatefulSet")?.uid;

/** Kubelet reasons no wait can cure: the image will never come (Never and absent, or a malformed reference). */
const HOPELESS_WAITING = new Set(["ErrImageNeverPull", "InvalidImageName"]);

/**
 * How far a workload's pod is towards a start of Ruriko's: its Gitai container running, in a pod of that workload
 * (uid) that is not being deleted. `cannot`: the kubelet says it never will; `pending`: not yet, with the kubelet's
 * reason (shown when the start times out).
 */
export function podStart(pod: V1Pod | undefined, workloadUid: string): { state: "running" } | { state: "pending" | "cannot"; reason: string } {
  if (!pod) return { state: "pending", reason: "no pod yet" };
  if (podOwner(pod) !== workloadUid) return { state: "pending", reason: "the pod of an earlier workload is still there" };
  if (pod.metadata?.deletionTimestamp) return { state: "pending", reason: "the pod is being deleted" };
  const status = pod.status?.containerStatuses?.find((c) => c.name === AGENT_CONTAINER);
  if (status?.state?.running) return { state: "running" };
  const waiting = status?.state?.waiting ?? pod.status?.initContainerStatuses?.find((c) => c.state?.waiting)?.state?.waiting;
  const reason = waiting?.reason ? `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ""}` : (pod.status?.phase ?? "pending");
  return { state: waiting?.reason && HOPELESS_WAITING.has(waiting.reason) ? "cannot" : "pending", reason };
}

/**
 * What is held of the objects the watch's stores keep for every agent: what the functions above, the waits and
 * the events read. A pod as the API server sends it is mostly what nothing here reads (the spec's volumes, security
 * contexts and environment, the status conditions, managedFields): ~6 KiB of heap per pod, ~1 held. A
 * StatefulSet keeps its spec whole (a workload's facts are read back from its template), without its status and
 * managedFields. New objects: the caller decides what becomes of the one it was given (kubernetes-informers.ts). A
 * field read by a new check must be kept here too: the tests compare the judgements of a whole and a held object.
 */
function heldMetadata(m: V1ObjectMeta | undefined): V1ObjectMeta | undefined {
  if (!m) return undefined;
  const { name, namespace, uid, resourceVersion, generation, labels, annotations, ownerReferences, deletionTimestamp } = m;
  return { name, namespace, uid, resourceVersion, generation, labels, annotations, ownerReferences, deletionTimestamp };
}

function heldContainerStatus({ name, image, imageID, ready, restartCount, state, lastState }: V1ContainerStatus): V1ContainerStatus {
  return { name, image, imageID, ready, restartCount, state, lastState };
}

export function heldWorkload(sts: V1StatefulSet): V1StatefulSet {
  return { apiVersion: sts.apiVersion, kind: sts.kind, metadata: heldMetadata(sts.metadata), spec: sts.spec, status: undefined };
}

export function heldPod(pod: V1Pod): V1Pod {
  const { spec, status } = pod;
  return {
    apiVersion: pod.apiVersion,
    kind: pod.kind,
    metadata: heldMetadata(pod.metadata),
    spec: spec && { containers: spec.containers.map(({ name, image, ports }) => ({ name, image, ports })) },
    status: status && {
      phase: status.phase,
      podIP: status.podIP,
      containerStatuses: status.containerStatuses?.map(heldContainerStatus),
      initContainerStatuses: status.initContainerStatuses?.map(heldContainerStatus),
    },
  };
}

/** The workload's pod is gone: none of that name, or one that belongs to another workload. */
export const podGone = (pod: V1Pod | undefined, workloadUid: string): boolean => !pod || (pod.metadata?.ownerReferences?.every((r) => r.uid !== workloadUid) ?? false);

/** The StatefulSet with this uid is gone: none of its name, or a newer one (another uid). */
export const workloadGone = (sts: V1StatefulSet | undefined, uid: string): boolean => sts?.metadata?.uid !== uid;
