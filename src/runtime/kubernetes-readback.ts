/**
 * What a StatefulSet Ruriko made shows of the ContainerSpec it was made from, as the facts a spec is read back
 * from when a lost state database takes over what the cluster runs (controller/engine-adoption.ts; the Docker
 * side is container-readback.ts). Pure.
 *
 * Read from the pod template, not from a copy Ruriko kept: a workload edited behind Ruriko's back gives another
 * digest than its annotation and is not adopted as Ruriko's. Unlike Docker, Kubernetes merges nothing of the
 * image's environment into the template: its env is exactly the spec's (plus RURIKO_AGENT). Limits are written
 * exactly (bytes, millicores: kubernetes-objects.ts resourceLimits); the API server may give them back in its
 * canonical form (`128Mi`), parsed here. The pids limit has no pod field: it is the annotation Ruriko writes beside
 * the digest.
 */
import type { V1StatefulSet } from "@kubernetes/client-node";
import { parseMemorySize } from "../api/quantities.ts";
import type { ContainerFacts } from "./runtime.ts";
import { AGENT_CONTAINER, ANNOTATIONS } from "./kubernetes-objects.ts";

/** `500m`, `1`, `1.5` → nanoCPUs (Docker's unit, which ContainerFacts speaks); undefined when unreadable. */
function nanoCpusOf(quantity: string | undefined): number | undefined {
  if (quantity === undefined) return 0;
  const match = /^(\d+(?:\.\d+)?)(m)?$/.exec(quantity);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * (match[2] ? 1e6 : 1e9));
}

function memoryBytesOf(quantity: string | undefined): number | undefined {
  if (quantity === undefined) return 0;
  try {
    return parseMemorySize(quantity);
  } catch {
    return undefined;
  }
}

/** The facts of a workload, or undefined when it has no Gitai container or limits that cannot be read. */
export function workloadFacts(sts: V1StatefulSet): ContainerFacts | undefined {
  const container = sts.spec?.template.spec?.containers.find((c) => c.name === AGENT_CONTAINER);
  if (!container?.image || !sts.metadata?.uid) return undefined;
  const limits = container.resources?.limits ?? {};
  const memoryBytes = memoryBytesOf(limits.memory);
  const nanoCpus = nanoCpusOf(limits.cpu);
  if (memoryBytes === undefined || nanoCpus === undefined) return undefined;
  const env: Record<string, string> = {};
  // A value from a Secret or a field reference is nothing Ruriko writes: its plain value is what a spec holds.
  for (const e of container.env ?? []) env[e.name] = e.value ?? "";
  const annotations = sts.metadata.annotations ?? {};
  const pids = Number(annotations[ANNOTATIONS.pidsLimit]);
  return {
    id: sts.metadata.uid,
    image: container.image,
    env,
    imageEnv: {},
    memoryBytes,
    nanoCpus,
    pidsLimit: Number.isInteger(pids) && pids > 0 ? pids : null,
    networkMode: "",
    exposedPorts: (container.ports ?? []).map((p) => `${p.containerPort}/${(p.protocol ?? "TCP").toLowerCase()}`),
    // The digest and revision are annotations here (too long for label values): both, as a Docker label set has them.
    labels: { ...sts.metadata.labels, ...annotations },
  };
}
