/**
 * One conversation turn: a question → the model → (policy → tool)* → an answer. The model proposes tool calls;
 * each is evaluated by the policy against its real arguments; allowed calls run on their MCP server and their
 * results go back to the model; denied ones are not run, and the model is told so in a short line. A call that
 * needs a human's approval waits for it: it runs once approved, and the model is told if it was not. The turn
 * ends with the model's answer, or after `maxSteps` model calls that all asked for tools.
 *
 * Nothing the model or a tool returns is ever treated as configuration: results are text in the conversation.
 */
import type { ChatMessage, ModelReply, ToolDefinition } from "../llm/model-client.ts";
import type { ToolResult } from "../mcp/supervisor.ts";
import type { PolicyDecision, ToolCall } from "../policy/evaluate.ts";
import type { OfferedTools } from "./offered-tools.ts";

/** One decision about a proposed call, for the log and the counters. */
export interface CallDecision {
  server: string | null;
  tool: string;
  /** `approved`: it needed a human, who approved it (and it ran); `rejected`: it needed one, and did not run. */
  decision: Exclude<PolicyDecision["decision"], "needs-approval"> | "approved" | "rejected" | "unknown-tool" | "bad-arguments";
  rule: string | null;
  ok?: boolean;
}

export interface TurnInput {
  systemPrompt: string | undefined;
  history: readonly ChatMessage[];
  question: string;
  tools: OfferedTools;
  maxSteps: number;
  complete: (messages: readonly ChatMessage[], tools: readonly ToolDefinition[]) => Promise<ModelReply>;
  decide: (call: ToolCall) => PolicyDecision;
  run: (server: string, tool: string, args: Record<string, unknown>) => Promise<ToolResult>;
  /** Asks a human about a call the policy allows only with approval, and waits for the decision. */
  approve: (call: { server: string; tool: string; args: Record<string, unknown>; rule: string }) => Promise<{ approved: true } | { approved: false; why: string }>;
  onDecision?: (decision: CallDecision) => void;
}

export interface TurnOutcome {
  answer: string;
  steps: number;
  /** True when the step limit ended the turn. */
  exhausted: boolean;
}

export async function runTurn(input: TurnInput): Promise<TurnOutcome> {
  const messages: ChatMessage[] = [...(input.systemPrompt ? [{ role: "system" as const, content: input.systemPrompt }] : []), ...input.history, { role: "user", content: input.question }];
  for (let step = 1; step <= input.maxSteps; step++) {
    const reply = await input.complete(messages, input.tools.definitions);
    if (reply.toolCalls.length === 0) return { answer: reply.content?.trim() || "(no answer)", steps: step, exhausted: false };
    messages.push({ role: "assistant", content: reply.content, tool_calls: reply.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })) });
    for (const call of reply.toolCalls) messages.push({ role: "tool", tool_call_id: call.id, content: await answerCall(input, call.name, call.arguments) });
  }
  return { answer: `I stopped after ${input.maxSteps} steps without reaching an answer.`, steps: input.maxSteps, exhausted: true };
}

/** What the model is told about one call it proposed: the tool's result, or why it did not run. */
async function answerCall(input: TurnInput, name: string, rawArguments: string): Promise<string> {
  const target = input.tools.byName.get(name);
  if (!target) {
    input.onDecision?.({ server: null, tool: name, decision: "unknown-tool", rule: null });
    return `no tool named ${name} is available`;
  }
  const args = parseArguments(rawArguments);
  if (!args) {
    input.onDecision?.({ server: target.server, tool: target.tool, decision: "bad-arguments", rule: null });
    return "the arguments were not a JSON object; nothing was run";
  }
  const verdict = input.decide({ mcp: target.server, tool: target.tool, args });
  if (verdict.decision === "deny") {
    input.onDecision?.({ server: target.server, tool: target.tool, decision: "deny", rule: verdict.rule });
    return verdict.rule ? `denied by policy (rule ${verdict.rule}); nothing was run` : "denied by policy (no rule allows it); nothing was run";
  }
  if (verdict.decision === "needs-approval") {
    const approval = await input.approve({ server: target.server, tool: target.tool, args, rule: verdict.rule });
    if (!approval.approved) {
      input.onDecision?.({ server: target.server, tool: target.tool, decision: "rejected", rule: verdict.rule });
      return `${approval.why}; nothing was run`;
    }
  }
  const result = await input.run(target.server, target.tool, args);
  input.onDecision?.({ server: target.server, tool: target.tool, decision: verdict.decision === "needs-approval" ? "approved" : "allow", rule: verdict.rule, ok: result.ok });
  return result.ok ? result.text : `the tool failed: ${result.error}`;
}

function parseArguments(raw: string): Record<string, unknown> | undefined {
  if (raw.trim() === "") return {};
  try {
    const value: unknown = JSON.parse(raw);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
