/**
 * The agent poll, made cheap. What happens inside an agent — its model failing, a tool server crash-looping, a
 * decision in its journal, a config changed behind Ruriko's back — reaches Ruriko only through ACP GET /status:
 * ACP has no push or long-poll, and the engine does not see inside the container. So every running agent is
 * still asked every `--agent-poll`. But a whole reconcile for each answer (the engine's container list, plan,
 * gate, a status write, the change feed woken by it) was most of an idle serve's CPU, for answers that almost
 * always say nothing new. The probe asks /status only, and enqueues the agent when the answer is not exactly
 * what its recorded status already says: a moved digest, a part that changed or is not well, a journal that
 * moved, a changed Matrix identity, no answer. The reconcile then runs when it has something to do; a quiet
 * agent is reconciled in full at the resync. The engine is asked only for a container not probed before (its
 * ACP address).
 */
import type { AcpClient, AcpEndpoint } from "../acp/client.ts";
import type { AcpStatus } from "../api/generated/types.ts";
import { newTraceId, type Logger } from "../observability/logger.ts";
import type { AgentNetworkMode, Runtime } from "../runtime/runtime.ts";
import type { AgentEventCursorStore, EventCursor } from "../store/agent-event-cursor-store.ts";
import type { AgentStatus, AgentStatusStore } from "../store/agent-status-store.ts";
import type { AgentTokenStore } from "../store/agent-token-store.ts";
import { planFetch } from "./agent-events.ts";
import { problemsOf, runtimeOf } from "./agent-health.ts";
import { acpAddressOf } from "./agent-network.ts";
import { isTrue } from "./conditions.ts";

export interface AgentProbeOptions {
  runtime: Pick<Runtime, "list">;
  acp: Pick<AcpClient, "status">;
  status: Pick<AgentStatusStore, "list">;
  cursors: Pick<AgentEventCursorStore, "get">;
  tokens: Pick<AgentTokenStore, "get">;
  agentNetwork: AgentNetworkMode;
  /** How often each running agent is asked (`--agent-poll`); jittered ±10%. */
  intervalMs: number;
  /** The agent needs a reconcile (under the probe's trace id). */
  enqueue: (agent: string, traceId: string) => void;
  logger: Logger;
}

/** What one probe of one agent learned: enough to tell the next answer from this one. */
interface Seen {
  containerId: string;
  baseUrl: string;
  /** Kept decrypted while the container answers to it: decrypting it at every poll was a tenth of an idle serve's CPU. */
  token: string;
  matrixDigest: string | null;
}

/** Agents asked at once: a fleet is asked a few at a time, not in one burst. */
const PROBES_AT_ONCE = 4;

export class AgentProbe {
  private readonly o: AgentProbeOptions;
  private readonly seen = new Map<string, Seen>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(options: AgentProbeOptions) {
    this.o = options;
  }

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** One round over every running agent that has answered before; resolves when each was asked. */
  async probeAll(): Promise<void> {
    const candidates = this.o.status.list().filter((s) => s.containerState === "running" && s.containerId && s.runtime !== null);
    const running = new Set(candidates.map((s) => s.agent));
    for (const agent of this.seen.keys()) if (!running.has(agent)) this.seen.delete(agent);
    for (let i = 0; i < candidates.length && !this.stopped; i += PROBES_AT_ONCE) {
      await Promise.all(candidates.slice(i, i + PROBES_AT_ONCE).map((s) => this.probe(s)));
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.probeAll()
        .catch((error: unknown) => this.o.logger.warn({ err: (error as Error).message }, "probing the agents failed; trying again at the next poll"))
        .finally(() => this.schedule());
    }, this.o.intervalMs * (0.9 + 0.2 * Math.random()));
    this.timer.unref();
  }

  private async probe(status: AgentStatus): Promise<void> {
    const agent = status.agent;
    const traceId = newTraceId();
    // An agent that is not Ready is reconciled at every poll, as it always was: the probe has nothing to spare it.
    if (!isTrue(status.conditions, "Ready")) return this.reconcile(agent, "not Ready", traceId);
    let report: AcpStatus;
    let seen: Seen;
    try {
      const endpoint = await this.endpointOf(status);
      if (typeof endpoint === "string") return this.reconcile(agent, endpoint, traceId);
      report = await this.o.acp.status(endpoint, traceId, { retries: 0 });
      seen = { containerId: status.containerId!, baseUrl: endpoint.baseUrl, token: endpoint.token, matrixDigest: report.matrix?.digest ?? null };
    } catch (error) {
      this.seen.delete(agent);
      return this.reconcile(agent, `no answer: ${(error as Error).message}`, traceId);
    }
    const previous = this.seen.get(agent);
    this.seen.set(agent, seen);
    const reason = newsIn(report, status, this.o.cursors.get(agent), previous?.containerId === seen.containerId ? previous : undefined);
    if (reason) this.reconcile(agent, reason, traceId);
  }

  private reconcile(agent: string, reason: string, traceId: string): void {
    this.o.logger.debug({ agent, reason, traceId }, `probe ${agent}: ${reason}; reconciling`);
    this.o.enqueue(agent, traceId);
  }

  /** Where the agent's ACP answers, and its token; a string when either is missing (the reconcile says why). */
  private async endpointOf(status: AgentStatus): Promise<AcpEndpoint | string> {
    const agent = status.agent;
    // A token changed since (a new one handed over) is refused by the agent: no answer, the seen entry is dropped.
    const known = this.seen.get(agent);
    if (known?.containerId === status.containerId) return { agent, baseUrl: known.baseUrl, token: known.token };
    const token = this.o.tokens.get(agent);
    if (!token) return "no token on record";
    const container = (await this.o.runtime.list(agent)).find((c) => c.id === status.containerId);
    if (!container || container.state !== "running") return "its container moved on";
    const address = acpAddressOf(this.o.agentNetwork, container);
    return address.ok ? { agent, baseUrl: address.value, token } : address.problem;
  }
}

/**
 * Why an answer of a Ready agent calls for a reconcile, or undefined when it says nothing that the agent's
 * recorded status, its journal cursor and the previous answer (of the same container) did not already say.
 * Without a previous answer, the Matrix identity the agent holds is unknown: that is news too (once).
 */
export function newsIn(report: AcpStatus, status: AgentStatus, cursor: EventCursor | undefined, previous: { matrixDigest: string | null } | undefined): string | undefined {
  if (report.gosutoDigest !== status.gosutoDigest) return "its Gosuto digest moved";
  if (report.secretsDigest !== status.secretsDigest) return "its secrets digest moved";
  const runtime = runtimeOf(report);
  if (JSON.stringify(runtime) !== JSON.stringify(status.runtime)) return "its parts changed";
  // Compared with itself, every problem counts: one that may pass by itself is the reconcile's to judge.
  if (problemsOf(runtime, runtime).length > 0) return "a part is not well";
  if (planFetch(report.events?.last, cursor)) return "its journal moved";
  if (!previous) return "first answer";
  if ((report.matrix?.digest ?? null) !== previous.matrixDigest) return "its Matrix identity changed";
  return undefined;
}
