import { createHash } from "node:crypto";
import { digestOf } from "../api/digest.ts";
import type { AgentManifest } from "../api/generated/types.ts";
import { parseMemorySize } from "../api/quantities.ts";
import { networkModeOf, type ContainerSpec, type NamedAgentNetwork } from "../runtime/runtime.ts";

/** The port Gitai serves the Agent Control Protocol on inside every bridge- or named-network agent container (DESIGN.md §5). */
export const ACP_PORT = 8765;

const DEFAULT_PIDS_LIMIT = 256;

/**
 * How one agent's container is networked. The host port is an input, chosen by the caller (the reconciler's
 * observe step): this module stays pure, and the same inputs always give the same spec and digest.
 */
export type ContainerNetwork = { network: "bridge" } | { network: "host"; port: number } | { network: NamedAgentNetwork };

export const BRIDGE_NETWORK: ContainerNetwork = { network: "bridge" };

/**
 * What the container of an agent must look like. Only fields that need a new container go into the
 * digest: `state` starts and stops, the Gosuto is pushed over ACP, so neither recreates anything. The
 * network mode and a host-networked agent's port do: switching modes or ports means a new container.
 */
export function containerSpecFor(agent: AgentManifest, revision: string, network: ContainerNetwork = BRIDGE_NETWORK): ContainerSpec {
  const { image, env = {}, resources = {} } = agent.spec;
  const runtimeFields = {
    image,
    env: { ...env } as Record<string, string>,
    memoryBytes: resources.memory === undefined ? undefined : parseMemorySize(resources.memory),
    cpus: resources.cpus,
    pidsLimit: resources.pids ?? DEFAULT_PIDS_LIMIT,
    // Bridge adds no field: bridge digests stay what they were before the mode existed, so nothing is recreated
    // by upgrading Ruriko.
    ...networkFields(network),
  };
  // The pull policy is how to get the image, not what the container is: outside the digest (absent: IfNotPresent).
  const pull = agent.spec.imagePullPolicy && agent.spec.imagePullPolicy !== "IfNotPresent" ? { imagePullPolicy: agent.spec.imagePullPolicy } : {};
  return { agent: agent.metadata.name, ...runtimeFields, ...pull, specDigest: digestOf(runtimeFields), revision };
}

function networkFields(network: ContainerNetwork): Pick<ContainerSpec, "network" | "controlPort"> {
  if (network.network === "host") return { network: "host", controlPort: network.port };
  if (network.network === "bridge") return { controlPort: ACP_PORT };
  return { network: network.network, controlPort: ACP_PORT };
}

/** The 127.0.0.1 port a spec applied in host mode gave the agent: kept on every later spec, so a re-plan sees no difference. */
export function appliedHostPort(spec: ContainerSpec | undefined): number | undefined {
  return spec && networkModeOf(spec) === "host" ? spec.controlPort : undefined;
}

/**
 * Ports a host-networked agent may get, below Linux's ephemeral range (32768–60999) so the kernel never hands
 * one of them to an outgoing connection meanwhile.
 */
export const HOST_PORT_RANGE = { first: 20_000, count: 10_000 } as const;

/**
 * The port a new host-networked agent gets when it is free, derived from its name: the same name gets the same
 * port, so an agent whose container is not created yet (its create parked for approval, Ruriko restarted
 * meanwhile) asks for the same spec again, and `ruriko plan` can say which port that is.
 */
export function preferredHostPort(agent: string): number {
  return HOST_PORT_RANGE.first + (createHash("sha256").update(agent).digest().readUInt32BE(0) % HOST_PORT_RANGE.count);
}

/** The order in which ports are tried for a new host-networked agent: every port of the range once, from its preferred one. */
export function* hostPortCandidates(agent: string): Generator<number> {
  const { first, count } = HOST_PORT_RANGE;
  const start = preferredHostPort(agent) - first;
  for (let i = 0; i < count; i++) yield first + ((start + i) % count);
}

/**
 * The host port `ruriko plan` expects `serve` to give an agent, without probing the host: its applied one, else
 * its first candidate that no other agent's applied spec holds. The same as serve's choice unless that port is
 * busy with something else on the host (serve then takes the next free one).
 */
export function expectedHostPort(agent: string, applied: ReadonlyArray<{ agent: string; spec: ContainerSpec }>): number {
  const own = appliedHostPort(applied.find((e) => e.agent === agent)?.spec);
  if (own !== undefined) return own;
  const taken = new Set(applied.filter((e) => e.agent !== agent).map((e) => appliedHostPort(e.spec)));
  for (const port of hostPortCandidates(agent)) if (!taken.has(port)) return port;
  return preferredHostPort(agent);
}

/** Meta key (state database) recording the agent network mode `serve` runs with, so `ruriko plan` plans what serve would. */
export const AGENT_NETWORK_META = "agent.network";

/** The fields of two container specs that differ, described for a person ("image ruriko/gitai:0.1 → 0.2"). */
export function describeSpecChange(from: ContainerSpec, to: ContainerSpec): { fields: string[]; text: string } {
  const fields: string[] = [];
  const parts: string[] = [];
  if (from.image !== to.image) {
    fields.push("image");
    parts.push(`image changed ${from.image} → ${to.image}`);
  }
  const envKeys = new Set([...Object.keys(from.env), ...Object.keys(to.env)]);
  const envChanged = [...envKeys].filter((k) => from.env[k] !== to.env[k]).sort();
  if (envChanged.length > 0) {
    fields.push("env");
    // Names only: env values are not secret by contract, but a person reading chat needs only the names.
    parts.push(`env changed: ${envChanged.join(", ")}`);
  }
  const resourceParts: string[] = [];
  if (from.memoryBytes !== to.memoryBytes) resourceParts.push(`memory ${formatBytes(from.memoryBytes)} → ${formatBytes(to.memoryBytes)}`);
  if (from.cpus !== to.cpus) resourceParts.push(`cpus ${from.cpus ?? "unlimited"} → ${to.cpus ?? "unlimited"}`);
  if (from.pidsLimit !== to.pidsLimit) resourceParts.push(`pids ${from.pidsLimit} → ${to.pidsLimit}`);
  if (resourceParts.length > 0) {
    fields.push("resources");
    parts.push(`resources changed: ${resourceParts.join(", ")}`);
  }
  const [fromNetwork, toNetwork] = [networkModeOf(from), networkModeOf(to)];
  if (fromNetwork !== toNetwork) {
    // The control port follows from the mode: the mode is the change to name.
    fields.push("network");
    parts.push(`agent network ${fromNetwork} → ${toNetwork}`);
  } else if (from.controlPort !== to.controlPort) {
    fields.push("controlPort");
    parts.push(`control port ${from.controlPort} → ${to.controlPort}`);
  }
  return { fields, text: parts.length > 0 ? parts.join("; ") : "container configuration changed" };
}

function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return "unlimited";
  for (const [unit, size] of [["Gi", 1024 ** 3], ["Mi", 1024 ** 2], ["Ki", 1024]] as const) {
    if (bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}
