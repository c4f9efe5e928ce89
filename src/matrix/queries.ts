/**
 * The read-only `/ruriko` chat queries, described declaratively (after Draupnir's command tables): a
 * name, its usage, one line of help and a function from Ruriko's state to a reply. Nothing here changes
 * state, and nothing here talks to Matrix: chat-listener.ts does.
 */
import type { ApprovalRequest } from "../store/approval-store.ts";
import type { AgentStatus } from "../store/agent-status-store.ts";
import type { AuditEntry } from "../store/audit-log.ts";
import { decisionDetail, decisionLines } from "../controller/agent-events.ts";
import { describeRuntime } from "../controller/agent-health.ts";
import { phaseOf } from "../controller/conditions.ts";
import { renderPlanText, type PlanReport } from "../controller/plan-report.ts";
import { renderStatusTable, type StatusReport } from "../controller/status-report.ts";
import { renderHistoryText } from "../controller/history-report.ts";
import type { AgentHistory } from "../sources/git-history.ts";
import { RURIKO_VERSION } from "../version.ts";
import { escapeHtml } from "./html.ts";

export interface QuerySources {
  status(): StatusReport;
  agentStatus(name: string): AgentStatus | undefined;
  /** The agent's Matrix account in words ("@bot:hs (provisioned)"), undefined when it has none. */
  agentMatrix(name: string): string | undefined;
  /** Throws when it cannot plan (the engine does not answer, no revision yet). */
  plan(): Promise<PlanReport>;
  pendingApprovals(): ApprovalRequest[];
  audit(limit: number): AuditEntry[];
  trace(traceId: string): AuditEntry[];
  /** The agent's latest decisions (audit entries it reported), newest first. */
  decisions?(agent: string, limit: number): AuditEntry[];
  /** Commits that changed the agent's Agent or Gosuto objects, newest first; undefined without a git source. */
  history(agent: string): Promise<AgentHistory | undefined>;
}

export interface Reply {
  body: string;
  html: string;
}

interface QueryCommand {
  name: string;
  /** `agent NAME`, `audit [N]`: the words after the name are its arguments, bracketed ones optional. */
  usage: string;
  summary: string;
  run(sources: QuerySources, args: readonly string[]): Reply | Promise<Reply>;
}

export const QUERY_PREFIX = "/ruriko";
const MAX_AUDIT = 50;
/** How many of an agent's latest decisions `/ruriko agent NAME` lists. */
const AGENT_DECISIONS = 5;

/** Preformatted text: tables keep their columns in any client. */
const pre = (text: string): Reply => ({ body: text.trimEnd(), html: `<pre><code>${escapeHtml(text.trimEnd())}</code></pre>` });
const say = (text: string): Reply => ({ body: text, html: escapeHtml(text) });

/** An agent's decision also says what it was about (tool, rule, limit…), never a body or a value. */
function auditLines(entries: readonly AuditEntry[]): string {
  return entries
    .map((e) => {
      const detail = decisionDetail(e);
      return `${e.ts}  ${e.traceId}  ${e.actor}  ${e.action}  ${e.target}  ${e.result}${detail ? `  ${detail}` : ""}`;
    })
    .join("\n");
}

export const QUERY_COMMANDS: readonly QueryCommand[] = [
  {
    name: "help",
    usage: "help",
    summary: "this list",
    run: () => pre(["Read-only queries (nothing here changes anything):", ...QUERY_COMMANDS.map((c) => `  ${QUERY_PREFIX} ${c.usage.padEnd(14)} ${c.summary}`)].join("\n")),
  },
  {
    name: "status",
    usage: "status",
    summary: "the revision in force, every agent, pending approvals",
    run: (s) => pre(renderStatusTable(s.status())),
  },
  {
    name: "agents",
    usage: "agents",
    summary: "agents and their phase",
    run: (s) => {
      const agents = s.status().agents;
      if (agents.length === 0) return say("no agents");
      return pre(agents.map((a) => `${a.name.padEnd(20)} ${a.phase.padEnd(16)} ${a.container?.state ?? "-"}`).join("\n"));
    },
  },
  {
    name: "agent",
    usage: "agent NAME",
    summary: "one agent's conditions, container, digests and how its parts are doing",
    run: (s, [name]) => {
      const a = s.agentStatus(name!);
      if (!a) return say(`no agent ${name}`);
      const decisions = s.decisions?.(a.agent, AGENT_DECISIONS) ?? [];
      return pre(
        [
          `agent      ${a.agent} (${phaseOf(a.conditions)})`,
          `container  ${a.containerId ? `${a.containerId.slice(0, 12)} ${a.containerState ?? ""}` : "-"}`,
          `revision   applied ${a.appliedRevision ?? "-"}; observed ${a.observedRevision ?? "-"}`,
          `gosuto     ${a.gosutoDigest ?? "-"}`,
          `secrets    ${a.secretsDigest ?? "-"}`,
          `account    ${s.agentMatrix(a.agent) ?? "-"}`,
          ...(a.runtime ? describeRuntime(a.runtime) : ["inside     the agent has not answered yet"]),
          ...(a.lastError ? [`last error ${a.lastError}`] : []),
          ...a.conditions.map((c) => `${c.type.padEnd(16)} ${c.status.padEnd(5)} ${c.reason}${c.message ? `: ${c.message}` : ""}`),
          ...(decisions.length > 0 ? ["latest decisions (newest first):", ...decisionLines(decisions).map((l) => `  ${l}`)] : []),
        ].join("\n"),
      );
    },
  },
  {
    name: "plan",
    usage: "plan",
    summary: "what Ruriko would do now, and what needs approval",
    run: async (s) => {
      try {
        return pre(renderPlanText(await s.plan()));
      } catch (error) {
        return say(`cannot plan now: ${(error as Error).message}`);
      }
    },
  },
  {
    name: "approvals",
    usage: "approvals",
    summary: "pending approval requests",
    run: (s) => {
      const pending = s.pendingApprovals();
      if (pending.length === 0) return say("no pending approval requests");
      return pre(pending.map((r) => `${r.id}  ${r.summary}  (${r.quorum} of ${r.approvers.length > 0 ? r.approvers.join(", ") : "the local operator"}; expires ${r.expiresAt})`).join("\n"));
    },
  },
  {
    name: "history",
    usage: "history NAME",
    summary: "git commits that changed the agent (→ marks the one in force)",
    run: async (s, [name]) => {
      const history = await s.history(name!);
      if (!history) return say("history needs a git source: this Ruriko reads a directory");
      return history.commits.length === 0 ? say(renderHistoryText(name!, history)) : pre(renderHistoryText(name!, history));
    },
  },
  {
    name: "audit",
    usage: "audit [N]",
    summary: `the last N audit entries (default 10, at most ${MAX_AUDIT})`,
    run: (s, [n]) => {
      const limit = Math.min(Math.max(Number.parseInt(n ?? "10", 10) || 10, 1), MAX_AUDIT);
      const entries = s.audit(limit);
      return entries.length === 0 ? say("the audit log is empty") : pre(auditLines(entries));
    },
  },
  {
    name: "trace",
    usage: "trace ID",
    summary: "everything recorded under one trace id",
    run: (s, [id]) => {
      const entries = s.trace(id!);
      return entries.length === 0 ? say(`nothing recorded under trace ${id}`) : pre(auditLines(entries));
    },
  },
  {
    name: "version",
    usage: "version",
    summary: "Ruriko's version",
    run: () => say(`Ruriko ${RURIKO_VERSION}`),
  },
];

/** `/ruriko agent newsbot` → { name: "agent", args: ["newsbot"] }; anything else → undefined. */
export function parseQuery(text: string): { name: string; args: string[] } | undefined {
  const words = text.trim().split(/\s+/);
  if (words[0]?.toLowerCase() !== QUERY_PREFIX) return undefined;
  return { name: (words[1] ?? "help").toLowerCase(), args: words.slice(2) };
}

export async function answerQuery(sources: QuerySources, text: string): Promise<Reply | undefined> {
  const query = parseQuery(text);
  if (!query) return undefined;
  const command = QUERY_COMMANDS.find((c) => c.name === query.name);
  if (!command) return say(`unknown query "${query.name}"; try ${QUERY_PREFIX} help`);
  const required = command.usage.split(" ").slice(1).filter((word) => !word.startsWith("["));
  if (query.args.length < required.length) return say(`usage: ${QUERY_PREFIX} ${command.usage}`);
  return command.run(sources, query.args);
}
