/**
 * `serve --runtime kubernetes`: the cluster's credentials and namespace, and the runtime on them. Loaded by a
 * dynamic import only when that runtime is chosen, so `--runtime docker` never loads the Kubernetes client.
 */
import type { KubeConfig as Config } from "@kubernetes/client-node";
import { readFileSync } from "node:fs";
import { KubeConfig, untrimmed } from "../runtime/kubernetes-client.ts";
import { KubernetesRuntime, type KubeAcpAccess, type KubernetesRuntimeOptions } from "../runtime/kubernetes-runtime.ts";

export interface KubernetesServeOptions {
  kubeconfig?: string | undefined;
  kubeNamespace?: string | undefined;
  kubeStorageClass?: string | undefined;
  kubeVolumeSize?: string | undefined;
  kubeAcpAccess?: KubeAcpAccess | undefined;
}

const IN_CLUSTER_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/** A given kubeconfig, else the client's default order (KUBECONFIG, ~/.kube/config, in-cluster service account). */
export function kubeConfigFrom(file: string | undefined): Config {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error("no Kubernetes cluster: give --kubeconfig (or KUBECONFIG), or run Ruriko in a pod with a service account");
  return kc;
}

/** The option, else the pod's own namespace, else the kubeconfig context's, else `default`. */
export function namespaceFrom(option: string | undefined, kc: Config): string {
  if (option) return option;
  try {
    return readFileSync(IN_CLUSTER_NAMESPACE, "utf8").trim();
  } catch {
    // not in a pod
  }
  return kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
}

export function kubernetesRuntime(
  opts: KubernetesServeOptions,
  instance: string,
  log: KubernetesRuntimeOptions["log"],
  onRequest?: KubernetesRuntimeOptions["onRequest"],
): { runtime: KubernetesRuntime; namespace: string; server: string } {
  const kc = kubeConfigFrom(opts.kubeconfig);
  const namespace = namespaceFrom(opts.kubeNamespace, kc);
  if (untrimmed.length > 0) log?.warn({ modules: untrimmed }, "this version of @kubernetes/client-node is loaded whole (its generated modules are not as expected): it works, with ~30 MiB more memory");
  const runtime = new KubernetesRuntime({
    kubeConfig: kc,
    namespace,
    instance,
    storageClass: opts.kubeStorageClass,
    ...(opts.kubeVolumeSize ? { dataVolumeSize: opts.kubeVolumeSize } : {}),
    acpAccess: opts.kubeAcpAccess ?? "pod-ip",
    ...(log ? { log } : {}),
    ...(onRequest ? { onRequest } : {}),
  });
  return { runtime, namespace, server: kc.getCurrentCluster()?.server ?? "" };
}
