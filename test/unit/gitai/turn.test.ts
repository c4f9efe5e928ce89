/** The turn loop, with the model and the tools as plain functions: what runs, what is refused, when it ends. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ChatMessage, ModelReply, ToolDefinition } from "../../../src/gitai/llm/model-client.ts";
import { evaluate, type Capability } from "../../../src/gitai/policy/evaluate.ts";
import { ConversationMemory } from "../../../src/gitai/turn/memory.ts";
import { modelNameOf, offeredTools } from "../../../src/gitai/turn/offered-tools.ts";
import { runTurn, type CallDecision } from "../../../src/gitai/turn/turn.ts";

const tools = [
  { server: "web", name: "http_get", description: "GET a URL", inputSchema: { type: "object" } },
  { server: "box", name: "shell_exec", description: "run a command", inputSchema: { type: "object" } },
];
const capabilities: Capability[] = [
  { name: "intranet", mcp: "web", tool: "http_get", allow: true, constraints: { url_prefix: "http://intranet.local/" } },
  { name: "deny-all", allow: false },
];
const reply = (r: Partial<ModelReply>): ModelReply => ({ content: null, toolCalls: [], usage: undefined, finishReason: "stop", ...r });

function scripted(replies: ModelReply[]) {
  const seen: Array<{ messages: ChatMessage[]; tools: string[] }> = [];
  return {
    seen,
    complete: async (messages: readonly ChatMessage[], offered: readonly ToolDefinition[]) => {
      seen.push({ messages: [...messages], tools: offered.map((t) => t.function.name) });
      const next = replies.shift();
      if (!next) throw new Error("the model was asked once too often");
      return next;
    },
  };
}

const noApprovals = async () => ({ approved: false as const, why: "no approvals here" });
const base = (model: ReturnType<typeof scripted>, capabilities: Capability[]) => ({
  systemPrompt: undefined,
  history: [],
  question: "q",
  tools: offeredTools(tools, capabilities),
  maxSteps: 4,
  complete: model.complete,
  decide: (c: Parameters<typeof evaluate>[1]) => evaluate(capabilities, c),
});

describe("a turn", () => {
  test("an allowed call runs and its result goes back; a denied one is not run and the model is told why", async () => {
    const model = scripted([
      reply({ toolCalls: [{ id: "c1", name: "web__http_get", arguments: JSON.stringify({ url: "http://intranet.local/menu" }) }, { id: "c2", name: "web__http_get", arguments: JSON.stringify({ url: "http://evil.example/" }) }] }),
      reply({ content: "Soup today." }),
    ]);
    const ran: string[] = [];
    const decisions: CallDecision[] = [];
    const outcome = await runTurn({
      systemPrompt: "be brief",
      history: [],
      question: "what is for lunch?",
      tools: offeredTools(tools, capabilities),
      maxSteps: 8,
      complete: model.complete,
      decide: (c) => evaluate(capabilities, c),
      approve: noApprovals,
      run: async (server, tool, args) => {
        ran.push(`${server}/${tool} ${String(args.url)}`);
        return { ok: true, text: "soup" };
      },
      onDecision: (d) => decisions.push(d),
    });
    assert.deepEqual(outcome, { answer: "Soup today.", steps: 2, exhausted: false });
    assert.deepEqual(ran, ["web/http_get http://intranet.local/menu"], "the denied call never ran");
    assert.deepEqual(model.seen[0]!.tools, ["web__http_get"], "shell_exec is never offered: no rule could allow it");
    const toolMessages = model.seen[1]!.messages.filter((m) => m.role === "tool").map((m) => m.content);
    assert.deepEqual(toolMessages, ["soup", "denied by policy (rule deny-all); nothing was run"]);
    assert.deepEqual(decisions.map((d) => [d.decision, d.rule]), [["allow", "intranet"], ["deny", "deny-all"]]);
    assert.equal(model.seen[0]!.messages[0]!.role, "system");
  });

  test("an unknown tool name or broken arguments run nothing; the step limit ends a turn that never answers", async () => {
    const looping = reply({ toolCalls: [{ id: "c", name: "box__shell_exec", arguments: "{}" }] });
    const model = scripted([reply({ toolCalls: [{ id: "a", name: "web__http_get", arguments: "not json" }] }), looping, looping]);
    let ran = 0;
    const outcome = await runTurn({
      systemPrompt: undefined,
      history: [],
      question: "q",
      tools: offeredTools(tools, capabilities),
      maxSteps: 3,
      complete: model.complete,
      decide: (c) => evaluate(capabilities, c),
      approve: noApprovals,
      run: async () => {
        ran++;
        return { ok: true, text: "" };
      },
    });
    assert.equal(ran, 0);
    assert.equal(outcome.exhausted, true);
    assert.match(outcome.answer, /stopped after 3 steps/);
    assert.deepEqual(model.seen[1]!.messages.filter((m) => m.role === "tool").map((m) => m.content), ["the arguments were not a JSON object; nothing was run"]);
    assert.deepEqual(model.seen[2]!.messages.filter((m) => m.role === "tool").at(-1)!.content, "no tool named box__shell_exec is available");
  });

  test("a call that needs a human's approval waits: approved → it runs; not approved → the model is told why, nothing runs", async () => {
    const gated: Capability[] = [{ name: "ask-first", mcp: "web", tool: "http_get", allow: true, requireApproval: true }];
    const ask = (answer: { approved: true } | { approved: false; why: string }) => async () => {
      const model = scripted([reply({ toolCalls: [{ id: "c", name: "web__http_get", arguments: '{"url":"http://x/"}' }] }), reply({ content: "done" })]);
      const asked: Array<{ server: string; tool: string; rule: string; args: Record<string, unknown> }> = [];
      const decisions: CallDecision[] = [];
      let ran = 0;
      await runTurn({
        ...base(model, gated),
        run: async () => ((ran++), { ok: true, text: "page" }),
        approve: async (call) => (asked.push(call), answer),
        onDecision: (d) => decisions.push(d),
      });
      return { ran, asked, decisions, told: String(model.seen[1]!.messages.at(-1)!.content) };
    };
    const approved = await ask({ approved: true })();
    assert.deepEqual(approved.asked, [{ server: "web", tool: "http_get", rule: "ask-first", args: { url: "http://x/" } }]);
    assert.equal(approved.ran, 1);
    assert.equal(approved.told, "page");
    assert.deepEqual(approved.decisions.map((d) => [d.decision, d.rule]), [["approved", "ask-first"]]);

    const refused = await ask({ approved: false, why: "denied by @bob:localhost" })();
    assert.equal(refused.ran, 0);
    assert.equal(refused.told, "denied by @bob:localhost; nothing was run");
    assert.deepEqual(refused.decisions.map((d) => [d.decision, d.rule]), [["rejected", "ask-first"]]);
  });

  test("model-facing names are valid for the API and map back; memory is bounded per room", () => {
    assert.equal(modelNameOf("web", "http.get"), "web__http_get");
    const long = modelNameOf("a-very-long-server-name-indeed", "and-a-very-long-tool-name-that-goes-on-and-on");
    assert.ok(/^[a-zA-Z0-9_-]{1,64}$/.test(long) && long.length === 64);
    const memory = new ConversationMemory({ maxMessages: 4 });
    for (let i = 0; i < 5; i++) memory.remember("!r", `q${i}`, `a${i}`);
    assert.deepEqual(memory.history("!r").map((m) => m.content), ["q3", "a3", "q4", "a4"]);
    assert.deepEqual(memory.history("!other"), []);
  });
});
