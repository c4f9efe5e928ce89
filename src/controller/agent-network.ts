/**
 * Addresses across the agent network (docs/operations.md#agent-networking). Ruriko and its agents may not see
 * the same network: in host mode they share the host's loopback; in bridge mode an agent is in a network
 * namespace of its own (its 127.0.0.1 is itself); with `network:NAME` Ruriko and the agents are containers on one
 * Docker network and find each other by container name. These pure functions say where Ruriko reaches an agent's
 * ACP, and whether a URL handed to agents means to them what it means to the operator who wrote it.
 */
import type { AgentNetworkMode, NamedAgentNetwork, ObservedContainer } from "../runtime/runtime.ts";
import { ACP_PORT } from "./container-spec.ts";

export const DEFAULT_AGENT_NETWORK: AgentNetworkMode = "bridge";

/** Docker's rule for network names. */
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** Docker's own networks: `bridge` (the default one) has no name resolution, `host` and `none` are other modes. */
const DOCKER_BUILTIN_NETWORKS = new Set(["bridge", "host", "none", "default"]);

export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

/** The operator's `--agent-network` value: `bridge`, `host` or `network:NAME`. */
export function parseAgentNetwork(text: string): Parsed<AgentNetworkMode> {
  const t = text.trim();
  if (t === "bridge" || t === "host") return { ok: true, value: t };
  if (!t.startsWith("network:")) return { ok: false, problem: `expected bridge, host or network:NAME, got ${JSON.stringify(text)}` };
  const name = t.slice("network:".length);
  if (!NETWORK_NAME.test(name)) return { ok: false, problem: `network:NAME needs a Docker network name (letters, digits, _ . -), got ${JSON.stringify(name)}` };
  if (DOCKER_BUILTIN_NETWORKS.has(name)) {
    return { ok: false, problem: `network:${name} is Docker's own network, where containers cannot find each other by name: use bridge or host, or a network of your own` };
  }
  return { ok: true, value: `network:${name}` };
}

/** The mode a state database recorded (AGENT_NETWORK_META); bridge when none or unreadable, as before modes existed. */
export function recordedAgentNetwork(text: string | undefined): AgentNetworkMode {
  if (text === undefined) return DEFAULT_AGENT_NETWORK;
  const parsed = parseAgentNetwork(text);
  return parsed.ok ? parsed.value : DEFAULT_AGENT_NETWORK;
}

export const isNamedNetwork = (mode: AgentNetworkMode | undefined): mode is NamedAgentNetwork => mode?.startsWith("network:") ?? false;

/** NAME of `network:NAME`; undefined for bridge and host. */
export const networkNameOf = (mode: AgentNetworkMode | undefined): string | undefined => (isNamedNetwork(mode) ? mode.slice("network:".length) : undefined);

/**
 * Where Ruriko reaches an agent's ACP. A published or labelled 127.0.0.1 port (bridge, host) is used whatever
 * the mode, so a container made in another mode is still reached until its recreate is carried out (it may wait
 * for approval). On the named network, the container's name, which Docker's resolver answers for its members.
 */
export function acpAddressOf(mode: AgentNetworkMode, container: Pick<ObservedContainer, "name" | "controlHostPort" | "network" | "controlAddress">): Parsed<string> {
  // Kubernetes: the pod's address, whatever the Docker network mode says (it has no meaning there).
  if (container.controlAddress) return { ok: true, value: container.controlAddress };
  if (container.controlHostPort) return { ok: true, value: `http://127.0.0.1:${container.controlHostPort}` };
  const network = networkNameOf(mode);
  if (network && container.network === network && container.name) return { ok: true, value: `http://${container.name}:${ACP_PORT}` };
  if (network) return { ok: false, problem: `the container is not attached to network ${network}${container.network ? ` (it is on ${container.network})` : ""}` };
  return { ok: false, problem: "the container's control port is not published" };
}

/** 127.0.0.0/8, ::1, localhost and the like: an address that means "this network namespace". */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || h === "::1" || h === "0.0.0.0" || h === "::" || /^127(\.\d{1,3}){3}$/.test(h) || /^::ffff:127\./.test(h);
}

/**
 * A URL as an agent will use it (the homeserver, a model's base URL): handed over unchanged — Ruriko cannot know
 * what name the service has on the agents' side — but a loopback URL means the agent's own container in every
 * mode but host, which is named as the problem.
 */
export function agentSideUrl(mode: AgentNetworkMode, url: string, what: string): { url: string; problem?: string } {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return { url, problem: `${what} ${JSON.stringify(url)} is not a URL` };
  }
  if (mode === "host" || !isLoopbackHost(host)) return { url };
  // A URL may carry a credential (user:password@): it goes into logs, so not that part.
  const shown = url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, "$1***@");
  return { url, problem: `${what} ${shown} is a loopback address: with --agent-network ${mode} an agent reaches its own container there, not this host's` };
}

/**
 * The model server a Gosuto names (`spec.persona.baseUrl`) as its agent will use it; undefined when it names none
 * (the provider's public API, the default). Checked when the Gosuto is delivered (agent-sync.ts).
 */
export function agentModelUrlOf(mode: AgentNetworkMode, gosuto: unknown): { url: string; problem?: string } | undefined {
  const baseUrl = (gosuto as { spec?: { persona?: { baseUrl?: unknown } } } | null | undefined)?.spec?.persona?.baseUrl;
  if (typeof baseUrl !== "string") return undefined;
  const seen = agentSideUrl(mode, baseUrl, "persona.baseUrl");
  return seen.problem ? { ...seen, problem: `${seen.problem}; name the model server as agents reach it (docs/operations.md#addresses-as-agents-see-them)` } : seen;
}

/**
 * The homeserver URL handed to agents: `--agent-matrix-homeserver`, else Ruriko's own `--matrix-homeserver`
 * (right when both see the homeserver under the same name: host mode, or one compose network for all).
 */
export function agentHomeserverOf(mode: AgentNetworkMode, urls: { matrixHomeserver?: string | undefined; agentMatrixHomeserver?: string | undefined }): { url: string; problem?: string } | undefined {
  const url = urls.agentMatrixHomeserver ?? urls.matrixHomeserver;
  if (!url) return undefined;
  const seen = agentSideUrl(mode, url, urls.agentMatrixHomeserver ? "--agent-matrix-homeserver" : "the homeserver URL agents are given (--matrix-homeserver)");
  return seen.problem && !urls.agentMatrixHomeserver ? { ...seen, problem: `${seen.problem}; set --agent-matrix-homeserver to the URL agents reach it at` } : seen;
}

/** What Docker says of a network: its member containers, by id. */
export interface NetworkMembers {
  Containers?: Record<string, { Name?: string }> | null;
}

/**
 * Is the named network usable? It must exist (Ruriko never creates or removes it: it belongs to the compose file
 * or the operator), and Ruriko must be on it to resolve agents' names. Ruriko's own container is recognised by
 * its hostname (Docker's default is the container id's prefix), so an unrecognised one is a warning, not an error.
 */
export function namedNetworkCheck(name: string, network: NetworkMembers | undefined, hostname: string): { error?: string; warning?: string } {
  if (!network) return { error: `Docker has no network ${name} (--agent-network network:${name}): create it (docker network create ${name}), or run Ruriko from the compose file that defines it` };
  const members = Object.entries(network.Containers ?? {});
  const self = members.some(([id, c]) => id.startsWith(hostname) || c.Name === hostname);
  if (self) return {};
  return { warning: `Ruriko (hostname ${hostname}) does not appear among the containers attached to network ${name}: it reaches agents by container name there, so it must run in a container attached to it` };
}
