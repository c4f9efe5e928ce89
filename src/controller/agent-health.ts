/**
 * How an agent's own parts are doing — its Matrix conversation, its model, its MCP tool servers — as it
 * reported over ACP, and which of that makes it Degraded. Pure. A part the agent is not configured to have is
 * "not configured" and never a problem; a part on its way up (connecting, starting) is not one yet.
 */
import type { AcpStatus } from "../api/generated/types.ts";
import type { AgentRuntime } from "../store/agent-status-store.ts";

export function runtimeOf(report: AcpStatus): AgentRuntime {
  return {
    mcps: report.mcps,
    ...(report.conversation ? { conversation: report.conversation } : {}),
    ...(report.model ? { model: report.model } : {}),
    ...(report.counters ? { counters: report.counters } : {}),
  };
}

/** Something wrong inside the agent. `lasting`: it does not pass by itself (a server that will not be restarted). */
interface Problem {
  /** The same problem in two reports has the same key, whatever its counts say. */
  key: string;
  text: string;
  lasting: boolean;
}

function problemList(runtime: AgentRuntime): Problem[] {
  const problems: Problem[] = [];
  const { conversation, model } = runtime;
  if (conversation && (conversation.state === "disconnected" || conversation.state === "refused")) {
    problems.push({ key: `matrix|${conversation.state}`, text: `Matrix ${conversation.state}${conversation.lastError ? `: ${conversation.lastError}` : ""}`, lasting: conversation.state === "refused" });
  }
  for (const r of conversation?.refused ?? []) {
    // An encrypted room stays unreadable; one it cannot join yet is often an invitation on its way.
    problems.push({ key: `room|${r.room}`, text: `Matrix room ${r.room} not served: ${r.reason}`, lasting: !r.reason.startsWith("cannot join") });
  }
  if (model?.state === "failed") {
    const name = model.model ?? model.provider;
    problems.push({ key: "model", text: `model${name ? ` ${name}` : ""} failed${model.lastError ? `: ${model.lastError}` : ""}`, lasting: true });
  }
  for (const m of runtime.mcps) {
    // A stopped server with a reason waits for something (a secret); stopped without one was stopped on purpose.
    const broken = m.state === "failed" || m.state === "restarting" || (m.state === "stopped" && !!m.lastError);
    if (broken) problems.push({ key: `mcp|${m.name}|${m.state}`, text: `MCP server ${m.name} ${m.state}${m.restarts ? ` (${m.restarts} restarts)` : ""}${m.lastError ? `: ${m.lastError}` : ""}`, lasting: m.state !== "restarting" });
  }
  return problems;
}

/**
 * What is wrong inside the agent, one phrase per part; empty when nothing is. A problem that may pass by itself —
 * a server being restarted, the homeserver away, a room not joinable yet — counts once the previous report had
 * it too: one crash restarted at once, or an invitation a moment late, is not news. A crash loop is.
 */
export function problemsOf(runtime: AgentRuntime, previous?: AgentRuntime | null): string[] {
  const before = new Set(previous ? problemList(previous).map((p) => p.key) : []);
  return problemList(runtime)
    .filter((p) => p.lasting || before.has(p.key))
    .map((p) => p.text);
}

/** One line per part, for people: `ruriko status`, `/ruriko agent NAME`. */
export function describeRuntime(runtime: AgentRuntime): string[] {
  const lines: string[] = [];
  const c = runtime.conversation;
  if (!c || c.state === "not configured") lines.push("matrix     not configured");
  else lines.push(`matrix     ${c.state}${c.userId ? ` as ${c.userId}` : ""}${c.rooms ? `, serving ${c.rooms.length} room${c.rooms.length === 1 ? "" : "s"}` : ""}${c.lastError ? ` (${c.lastError})` : ""}`);
  for (const r of c?.refused ?? []) lines.push(`             room ${r.room} refused: ${r.reason}`);
  const m = runtime.model;
  if (!m || m.state === "not configured") lines.push("model      not configured");
  else lines.push(`model      ${m.state}: ${[m.provider, m.model].filter(Boolean).join(" ")}${m.lastError ? ` (${m.lastError})` : ""}`);
  if (runtime.mcps.length === 0) lines.push("mcp        none");
  for (const s of runtime.mcps) {
    lines.push(`mcp        ${s.name} ${s.state}${s.tools !== undefined ? `, ${s.tools} tool${s.tools === 1 ? "" : "s"}` : ""}${s.restarts ? `, ${s.restarts} restarts` : ""}${s.lastError ? ` (${s.lastError})` : ""}`);
  }
  const n = runtime.counters;
  if (n) {
    lines.push(
      `counters   ${n.messagesAnswered ?? 0} answered, ${n.messagesIgnored ?? 0} ignored, tool calls ${n.toolCallsAllowed ?? 0} allowed / ${n.toolCallsDenied ?? 0} denied, ${n.turnsFailed ?? 0} turns failed`,
    );
  }
  return lines;
}

/** A few words for a table cell: "matrix connected · model ready · mcp 2/2 running". */
export function summarizeRuntime(runtime: AgentRuntime): string {
  const parts: string[] = [];
  if (runtime.conversation && runtime.conversation.state !== "not configured") parts.push(`matrix ${runtime.conversation.state}`);
  if (runtime.model && runtime.model.state !== "not configured") parts.push(`model ${runtime.model.state}`);
  if (runtime.mcps.length > 0) parts.push(`mcp ${runtime.mcps.filter((m) => m.state === "running").length}/${runtime.mcps.length} running`);
  return parts.join(" · ") || "-";
}
