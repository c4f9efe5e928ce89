/**
 * One shared watch of the runtime's owned StatefulSets and pods (the client's informers: a list, then a watch from
 * its resourceVersion, listed again when it expires), held in two stores, for everything that needs to know them:
 * lifecycle events (subscribe), the waits of start, stop and remove, and list(). Started by the first use and
 * stopped by the last, so that a command that only lists (`ruriko plan`) opens no watch and leaves nothing running.
 */
import type * as k8s from "@kubernetes/client-node";
import type { KubeConfig, KubernetesObject, V1Pod, V1StatefulSet } from "@kubernetes/client-node";
import { backoffDelay, type BackoffPolicy } from "../time/backoff.ts";
import { systemClock, type Clock } from "../time/clock.ts";
import { makeInformer } from "./kubernetes-client.ts";
import { heldPod, heldWorkload } from "./kubernetes-objects.ts";
import { ObjectStore, type Change } from "./kubernetes-store.ts";
import { LABELS } from "./runtime.ts";
import { Waits } from "./watch-waits.ts";

const WATCH_RECONNECT: BackoffPolicy = { baseMs: 500, maxMs: 10_000, jitter: 0.2 };
/**
 * A wait reads its objects itself this often, in case the watch missed an event (it should not: a watch resumes
 * from its resource version or lists again). Slow, because a thousand waits at once each read every interval.
 */
const REREAD_MS = 30_000;

export interface OwnedObjectsListener {
  pod?(change: Change<V1Pod>): void;
  workload?(change: Change<V1StatefulSet>): void;
  /** The watch came back after it was lost: events may have been missed. */
  reconnect?(): void;
}

interface Log {
  warn(obj: object, msg?: string): void;
}

export interface OwnedObjectsOptions {
  kubeConfig: KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  namespace: string;
  /** The ownership label selector: nothing else is watched. */
  selector: string;
  log?: Log | undefined;
  /** Its message only (never a request body). */
  describe: (error: unknown) => string;
  clock?: Clock;
}

export const podKey = (name: string) => `pod/${name}`;
export const workloadKey = (name: string) => `statefulset/${name}`;

/**
 * An object the client's informer passed on (it keeps the same object in its own cache): cut down in place to what
 * the store holds, so that neither holds more.
 */
const podInPlace = (pod: V1Pod) => Object.assign(pod, heldPod(pod));
const workloadInPlace = (sts: V1StatefulSet) => Object.assign(sts, heldWorkload(sts));

const agentOf = (object: KubernetesObject) => object.metadata?.labels?.[LABELS.agent];

export class OwnedObjects {
  /** Indexed by agent: list(agent) runs at every reconcile of every agent. */
  readonly pods = new ObjectStore<V1Pod>(agentOf);
  readonly workloads = new ObjectStore<V1StatefulSet>(agentOf);
  readonly waits: Waits;
  private readonly o: OwnedObjectsOptions;
  private readonly listeners = new Set<OwnedObjectsListener>();
  private users = 0;
  /** The informers while in use; `closed` tells their late callbacks (a reconnect timer) that they are done. */
  private running: { informers: Array<k8s.Informer<V1Pod> | k8s.Informer<V1StatefulSet>>; closed: boolean } | undefined;
  private listed = { pods: false, workloads: false };

  constructor(o: OwnedObjectsOptions) {
    this.o = o;
    this.waits = new Waits({ clock: o.clock ?? systemClock, rereadMs: REREAD_MS, storeIsLive: () => this.synced });
  }

  /** Both kinds listed since the watch started: the stores hold every owned object (as of the watch). */
  get synced(): boolean {
    return this.running !== undefined && this.listed.pods && this.listed.workloads;
  }

  /** Starts the watch on the first use; the function returned ends this use, and the last one stops the watch. */
  use(): () => void {
    if (this.users++ === 0) this.start();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.users === 0) this.stop();
    };
  }

  listen(listener: OwnedObjectsListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * A pod Ruriko read or deleted (the answer): held as if watched, so that its next read sees it. What is held is a
   * copy: the caller's object stays as the API server returned it.
   */
  recordPod(pod: V1Pod): void {
    if (this.running) this.podChanged(this.pods.put(heldPod(pod)));
  }

  recordWorkload(sts: V1StatefulSet): void {
    if (this.running) this.workloadChanged(this.workloads.put(heldWorkload(sts)));
  }

  /** Read as absent by a read that began while `seen` was held. */
  forgetPod(name: string, seen: V1Pod | undefined): void {
    this.podChanged(this.pods.forget(name, seen));
  }

  forgetWorkload(name: string, seen: V1StatefulSet | undefined): void {
    this.workloadChanged(this.workloads.forget(name, seen));
  }

  private podChanged(change: Change<V1Pod> | undefined): void {
    if (!change) return;
    for (const l of this.listeners) l.pod?.(change);
    this.waits.changed(podKey((change.after ?? change.before)!.metadata!.name!));
  }

  private workloadChanged(change: Change<V1StatefulSet> | undefined): void {
    if (!change) return;
    for (const l of this.listeners) l.workload?.(change);
    this.waits.changed(workloadKey((change.after ?? change.before)!.metadata!.name!));
  }

  private start(): void {
    const { kubeConfig, core, apps, namespace, selector } = this.o;
    const running: NonNullable<OwnedObjects["running"]> = { informers: [], closed: false };
    this.running = running;
    // The list is applied here, before the informer's own handling of it, so that "listed" means held.
    const pods = makeInformer<V1Pod>(
      kubeConfig,
      `/api/v1/namespaces/${namespace}/pods`,
      async () => {
        const list = await core.listNamespacedPod({ namespace, labelSelector: selector });
        if (this.running === running) {
          for (const change of this.pods.replace(list.items.map(podInPlace), list.metadata?.resourceVersion)) this.podChanged(change);
          this.listed.pods = true;
        }
        return list;
      },
      selector,
    );
    const workloads = makeInformer<V1StatefulSet>(
      kubeConfig,
      `/apis/apps/v1/namespaces/${namespace}/statefulsets`,
      async () => {
        const list = await apps.listNamespacedStatefulSet({ namespace, labelSelector: selector });
        if (this.running === running) {
          for (const change of this.workloads.replace(list.items.map(workloadInPlace), list.metadata?.resourceVersion)) this.workloadChanged(change);
          this.listed.workloads = true;
        }
        return list;
      },
      selector,
    );
    const live = () => this.running === running;
    for (const verb of ["add", "update"] as const) {
      pods.on(verb, (pod) => live() && this.podChanged(this.pods.put(podInPlace(pod))));
      workloads.on(verb, (sts) => live() && this.workloadChanged(this.workloads.put(workloadInPlace(sts))));
    }
    pods.on("delete", (pod) => live() && this.podChanged(this.pods.delete(pod)));
    workloads.on("delete", (sts) => live() && this.workloadChanged(this.workloads.delete(sts)));

    for (const informer of [pods, workloads]) {
      running.informers.push(informer);
      let attempt = 0;
      let connected = false;
      informer.on("connect", () => {
        if (connected && attempt > 0) for (const l of this.listeners) l.reconnect?.();
        connected = true;
        attempt = 0;
      });
      informer.on("error", (error: unknown) => {
        if (running.closed) return;
        attempt++;
        const delay = backoffDelay(attempt, WATCH_RECONNECT);
        this.o.log?.warn({ attempt, retryInMs: delay, err: this.o.describe(error) }, "Kubernetes watch lost; reconnecting");
        setTimeout(() => {
          if (!running.closed) informer.start().catch(() => {});
        }, delay).unref();
      });
      informer.start().catch(() => {});
    }
  }

  private stop(): void {
    const running = this.running;
    if (!running) return;
    running.closed = true;
    this.running = undefined;
    for (const informer of running.informers) void informer.stop();
    this.listed = { pods: false, workloads: false };
    this.pods.clear();
    this.workloads.clear();
  }
}
