/**
 * Gitai's parts around one turn loop, kept in the shape its Gosuto, its secrets and its Matrix identity ask
 * for: whenever Ruriko pushes one of them, configure() brings the MCP servers, the model and the Matrix
 * conversation in line — restarting only what changed. Parts the Gosuto does not ask for are "not configured",
 * which is not a failure; a part asked for that cannot work (a command that does not exist, a refused key or
 * URL, a token refused) says why in its status.
 */
import { digestOf } from "../api/digest.ts";
import type { GosutoManifest } from "../api/generated/types.ts";
import type { Logger } from "../observability/logger.ts";
import type { GosutoState } from "./acp/gosuto-state.ts";
import { ModelClient, ModelError, type ModelSettings } from "./llm/model-client.ts";
import { Conversation, type ConversationStatus, type IncomingChat } from "./matrix/conversation.ts";
import type { MatrixIdentityHolder } from "./acp/matrix-identity.ts";
import { McpSupervisor, type McpServerSpec, type McpServerState } from "./mcp/supervisor.ts";
import { evaluate } from "./policy/evaluate.ts";
import type { SecretHolder } from "./acp/secret-holder.ts";
import { ConversationMemory } from "./turn/memory.ts";
import { offeredTools } from "./turn/offered-tools.ts";
import { runTurn, type CallDecision } from "./turn/turn.ts";

type Spec = NonNullable<GosutoManifest["spec"]>;

export interface ModelStatus {
  state: "not configured" | "ready" | "failed";
  provider: string | null;
  model: string | null;
  lastError: string | null;
}

export interface AgentCounters {
  messagesAnswered: number;
  messagesIgnored: number;
  toolCallsAllowed: number;
  toolCallsDenied: number;
  turnsFailed: number;
}

export interface AgentRuntimeStatus {
  conversation: ConversationStatus | { state: "not configured" };
  model: ModelStatus;
  mcps: McpServerState[];
  counters: AgentCounters;
}

export interface GitaiAgentOptions {
  gosuto: GosutoState;
  secrets: SecretHolder;
  identity: MatrixIdentityHolder;
  logger: Logger;
  /** Passed to the parts (tests shorten them). */
  mcp?: { callTimeoutMs?: number; startTimeoutMs?: number };
  model?: { timeoutMs?: number; maxRetries?: number };
}

const DEFAULT_STEPS = 8;

export class GitaiAgent {
  private readonly o: GitaiAgentOptions;
  private readonly log: Logger;
  private readonly mcp: McpSupervisor;
  private readonly memory = new ConversationMemory();
  private readonly counters: AgentCounters = { messagesAnswered: 0, messagesIgnored: 0, toolCallsAllowed: 0, toolCallsDenied: 0, turnsFailed: 0 };
  private model: { key: string; client: ModelClient | undefined; status: ModelStatus } = { key: "", client: undefined, status: { state: "not configured", provider: null, model: null, lastError: null } };
  private conversation: { key: string; part: Conversation } | undefined;
  /** configure() calls run one after the other: a push during one is applied by the next. */
  private configuring: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(options: GitaiAgentOptions) {
    this.o = options;
    this.log = options.logger;
    this.mcp = new McpSupervisor({ logger: options.logger, ...options.mcp });
  }

  /** Brings every part in line with what the agent holds now. */
  configure(): Promise<void> {
    this.configuring = this.configuring.then(() => this.configureNow()).catch((error: unknown) => this.log.error({ err: (error as Error).message }, "could not configure the agent"));
    return this.configuring;
  }

  /** POST /restart: the loop and the MCP servers start over (conversations are forgotten). */
  async restart(): Promise<void> {
    await this.configuring;
    await this.conversation?.part.stop();
    this.conversation = undefined;
    this.memory.forget();
    await this.mcp.restartAll();
    this.model.key = "";
    await this.configure();
  }

  status(): AgentRuntimeStatus {
    return { conversation: this.conversation?.part.status() ?? { state: "not configured" }, model: { ...this.model.status }, mcps: this.mcp.states(), counters: { ...this.counters } };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.configuring;
    await this.conversation?.part.stop();
    await this.mcp.stop();
  }

  private async configureNow(): Promise<void> {
    if (this.stopped) return;
    const spec = this.o.gosuto.current?.gosuto.spec;
    await this.mcp.apply(this.serverSpecs(spec));
    this.configureModel(spec);
    await this.configureConversation(spec);
  }

  /** Each server's environment: its own env, plus the granted secrets its Gosuto maps to it — nothing else. */
  private serverSpecs(spec: Spec | undefined): McpServerSpec[] {
    return (spec?.mcps ?? []).map((m) => {
      const env: Record<string, string> = Object.fromEntries(Object.entries(m.env ?? {}).filter((e): e is [string, string] => e[1] !== undefined));
      const waitingFor: string[] = [];
      for (const mapping of spec?.secrets ?? []) {
        if (!mapping.mcps.includes(m.name)) continue;
        const value = this.o.secrets.value(mapping.name);
        if (value !== undefined) env[mapping.envVar] = value;
        else if (mapping.required !== false) waitingFor.push(mapping.name);
      }
      return { name: m.name, command: m.command, args: m.args ?? [], env, autoRestart: m.autoRestart ?? true, waitingFor };
    });
  }

  private configureModel(spec: Spec | undefined): void {
    const persona = spec?.persona;
    const keyName = persona?.apiKeySecretRef;
    const apiKey = keyName ? this.o.secrets.value(keyName) : undefined;
    const key = digestOf({ persona, maxTokens: spec?.limits?.maxTokensPerRequest, apiKey: apiKey === undefined ? null : digestOf(apiKey) });
    if (key === this.model.key) return;
    const described = { provider: persona?.llmProvider ?? null, model: persona?.model ?? null };
    if (!persona?.llmProvider && !persona?.model) {
      this.model = { key, client: undefined, status: { state: "not configured", ...described, lastError: null } };
      return;
    }
    const problem = !persona.model ? "persona.model is not set" : keyName && apiKey === undefined ? `the API key secret ${keyName} is not held (grant it with a SecretBinding)` : null;
    if (problem) {
      this.model = { key, client: undefined, status: { state: "failed", ...described, lastError: problem } };
      return;
    }
    const settings: ModelSettings = {
      baseUrl: persona.baseUrl,
      model: persona.model!,
      temperature: persona.temperature,
      maxTokens: spec?.limits?.maxTokensPerRequest || undefined,
      // A self-hosted server may want no key; the client insists on one.
      apiKey: apiKey ?? "none",
    };
    const client = new ModelClient(settings, this.o.model ?? {});
    this.model = { key, client, status: { state: "ready", ...described, lastError: null } };
    // A refused key or URL should show before anyone asks, not at the first question.
    client.probe().then(
      () => undefined,
      (error: unknown) => {
        if (this.model.client === client) this.model.status = { ...this.model.status, state: "failed", lastError: (error as Error).message };
      },
    );
  }

  private async configureConversation(spec: Spec | undefined): Promise<void> {
    const identity = this.o.identity.current();
    const key = identity ? digestOf({ identity: identity.digest, trust: spec?.trust ?? {}, messaging: spec?.messaging ?? {} }) : "";
    if (key === (this.conversation?.key ?? "")) return;
    await this.conversation?.part.stop();
    this.conversation = undefined;
    if (!identity) return;
    const part = new Conversation({
      identity,
      trust: spec?.trust ?? {},
      messaging: spec?.messaging,
      answer: (chat) => this.answer(chat),
      onIgnored: () => void this.counters.messagesIgnored++,
      onAnswered: () => void this.counters.messagesAnswered++,
      logger: this.log.child({ part: "matrix" }),
    });
    this.conversation = { key, part };
    part.start();
  }

  /** One turn for one message; a model that fails gets the asker one short apology, and /status says why. */
  private async answer(chat: IncomingChat): Promise<string | undefined> {
    const spec = this.o.gosuto.current?.gosuto.spec;
    const client = this.model.client;
    if (!client) {
      if (this.model.status.state === "not configured") return undefined;
      this.counters.turnsFailed++;
      return `Sorry, I cannot answer: my model is not working (${this.model.status.lastError}).`;
    }
    const capabilities = spec?.capabilities ?? [];
    try {
      const outcome = await runTurn({
        systemPrompt: [spec?.persona?.systemPrompt, spec?.instructions].filter(Boolean).join("\n\n") || undefined,
        history: this.memory.history(chat.room),
        question: chat.body,
        tools: offeredTools(this.mcp.tools(), capabilities),
        maxSteps: spec?.limits?.maxTurnSteps ?? DEFAULT_STEPS,
        complete: (messages, tools) => client.complete(messages, tools),
        decide: (call) => evaluate(capabilities, call),
        run: (server, tool, args) => this.mcp.call(server, tool, args),
        onDecision: (d) => this.noteDecision(chat, d),
      });
      if (this.model.client === client) this.model.status = { ...this.model.status, state: "ready", lastError: null };
      this.memory.remember(chat.room, chat.body, outcome.answer);
      return outcome.answer;
    } catch (error) {
      this.counters.turnsFailed++;
      const reason = error instanceof ModelError ? error.message : "an internal error";
      if (this.model.client === client) this.model.status = { ...this.model.status, state: "failed", lastError: reason };
      this.log.warn({ room: chat.room, err: reason }, "a turn failed");
      return `Sorry, I could not answer just now: ${reason}. Please try again later.`;
    }
  }

  private noteDecision(chat: IncomingChat, d: CallDecision): void {
    if (d.decision === "allow") this.counters.toolCallsAllowed++;
    else this.counters.toolCallsDenied++;
    this.log.info({ room: chat.room, mcp: d.server, tool: d.tool, decision: d.decision, rule: d.rule, ...(d.ok !== undefined ? { ok: d.ok } : {}) }, `tool call ${d.decision}${d.rule ? ` by rule ${d.rule}` : ""}`);
  }
}
