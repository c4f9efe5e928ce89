import { digestOf } from "../api/digest.ts";
import type { AgentManifest } from "../api/generated/types.ts";
import { parseMemorySize } from "../api/quantities.ts";
import type { ContainerSpec } from "../runtime/runtime.ts";

/** The port Gitai serves the Agent Control Protocol on inside every agent container (DESIGN.md §5). */
export const ACP_PORT = 8765;

const DEFAULT_PIDS_LIMIT = 256;

/**
 * What the container of an agent must look like. Only fields that need a new container go into the
 * digest: `state` starts and stops, the Gosuto is pushed over ACP, so neither recreates anything.
 */
export function containerSpecFor(agent: AgentManifest, revision: string): ContainerSpec {
  const { image, env = {}, resources = {} } = agent.spec;
  const runtimeFields = {
    image,
    env: { ...env } as Record<string, string>,
    memoryBytes: resources.memory === undefined ? undefined : parseMemorySize(resources.memory),
    cpus: resources.cpus,
    pidsLimit: resources.pids ?? DEFAULT_PIDS_LIMIT,
    controlPort: ACP_PORT,
  };
  return { agent: agent.metadata.name, ...runtimeFields, specDigest: digestOf(runtimeFields), revision };
}

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
  if (from.controlPort !== to.controlPort) {
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
