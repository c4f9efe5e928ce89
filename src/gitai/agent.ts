/**
 * Gitai's parts around one turn loop, kept in the shape its Gosuto, its secrets and its Matrix identity ask
 * for: whenever Ruriko pushes one of them, configure() brings the MCP servers, the model and the Matrix
 * conversation in line — restarting only what changed. Parts the Gosuto does not ask for are "not configured",
 * which is not a failure; a part asked for that cannot work (a command that does not exist, a refused key or
 * URL, a token refused) says why in its status.
 */
import { join } from "node:path";
import { digestOf } from "../api/digest.ts";
import type { GosutoManifest } from "../api/generated/types.ts";
import { newTraceId, type Logger } from "../observability/logger.ts";
import type { GosutoState } from "./acp/gosuto-state.ts";
import { notice } from "./approvals/request-post.ts";
import { ToolApprovals, type ApprovalOutcome, type ApprovalSettings } from "./approvals/tool-approvals.ts";
import type { EventJournal } from "./events/journal.ts";
import { CronGateways, type Gateway } from "./gateways/cron-gateways.ts";
import { AgentLimits, type LimitsConfig, type Refusal } from "./limits/limits.ts";
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
  toolCallsApproved: number;
  toolCallsRejected: number;
  limitsReached: number;
  schedulesFired: number;
  turnsFailed: number;
}

export interface AgentRuntimeStatus {
  conversation: ConversationStatus | { state: "not configured" };
  model: ModelStatus;
  mcps: McpServerState[];
  counters: AgentCounters;
  approvals: ReturnType<ToolApprovals["pendingStates"]>;
  limits: ReturnType<AgentLimits["status"]>;
  gateways: ReturnType<CronGateways["status"]>;
}

export interface GitaiAgentOptions {
  /** The agent's name (its Agent object's). */
  agent: string;
  /** The agent's data volume: what must outlive the process (pending approvals, the month's spend). */
  dataDir: string;
  /** The decision journal Ruriko collects into its audit log. */
  events: EventJournal;
  gosuto: GosutoState;
  secrets: SecretHolder;
  identity: MatrixIdentityHolder;
  logger: Logger;
  /** Passed to the parts (tests shorten them). */
  mcp?: { callTimeoutMs?: number; startTimeoutMs?: number };
  model?: { timeoutMs?: number; maxRetries?: number };
}

const DEFAULT_STEPS = 8;
const APPROVALS_FILE = "tool-approvals.json";
const SPEND_FILE = "model-spend.json";

/** A model request a limit refused: the turn ends there. */
class LimitReached extends Error {
  readonly refusal: Refusal;
  constructor(refusal: Refusal) {
    super(`limit ${refusal.limit} reached`);
    this.refusal = refusal;
  }
}

export class GitaiAgent {
  private readonly o: GitaiAgentOptions;
  private readonly log: Logger;
  private readonly mcp: McpSupervisor;
  private readonly memory = new ConversationMemory();
  private readonly counters: AgentCounters = { messagesAnswered: 0, messagesIgnored: 0, toolCallsAllowed: 0, toolCallsDenied: 0, toolCallsApproved: 0, toolCallsRejected: 0, limitsReached: 0, schedulesFired: 0, turnsFailed: 0 };
  private readonly approvals: ToolApprovals;
  private readonly limits: AgentLimits;
  private readonly gateways: CronGateways;
  private model: { key: string; client: ModelClient | undefined; status: ModelStatus } = { key: "", client: undefined, status: { state: "not configured", provider: null, model: null, lastError: null } };
  private conversation: { key: string; part: Conversation } | undefined;
  /**
   * Model spend not recorded yet. Recording writes the month's total to the data volume and flushes it to disk,
   * which blocks the process for a millisecond or more (tens when the disk is busy): done right after the model
   * answers, it would hold the reply back. So it runs once the reply is on its way (setImmediate), and anything
   * that reads the spend — the budget check before a model call, /status — records what is pending first.
   */
  private readonly unrecordedSpend: Array<() => void> = [];
  /** configure() calls run one after the other: a push during one is applied by the next. */
  private configuring: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(options: GitaiAgentOptions) {
    this.o = options;
    this.log = options.logger;
    this.mcp = new McpSupervisor({ logger: options.logger, ...options.mcp });
    this.approvals = new ToolApprovals({
      agent: options.agent,
      file: join(options.dataDir, APPROVALS_FILE),
      events: options.events,
      secretValues: () => this.o.secrets.values(),
      logger: options.logger.child({ part: "approvals" }),
    });
    this.limits = new AgentLimits({ config: {}, now: Date.now, spendFile: join(options.dataDir, SPEND_FILE), logger: options.logger });
    this.gateways = new CronGateways({ fire: (gateway) => this.runScheduled(gateway), logger: options.logger.child({ part: "gateways" }) });
  }

  /** Brings every part in line with what the agent holds now. */
  configure(): Promise<void> {
    this.configuring = this.configuring.then(() => this.configureNow()).catch((error: unknown) => this.log.error({ err: (error as Error).message }, "could not configure the agent"));
    return this.configuring;
  }

  /** POST /restart: the loop and the MCP servers start over (conversations are forgotten). */
  async restart(): Promise<void> {
    await this.configuring;
    // Calls waiting for a human end here; the new loop tells their askers (tool-approvals.ts).
    this.approvals.stop();
    await this.conversation?.part.stop();
    this.conversation = undefined;
    this.memory.forget();
    await this.mcp.restartAll();
    this.model.key = "";
    await this.configure();
  }

  status(): AgentRuntimeStatus {
    this.recordSpend();
    return {
      conversation: this.conversation?.part.status() ?? { state: "not configured" },
      model: { ...this.model.status },
      mcps: this.mcp.states(),
      counters: { ...this.counters },
      approvals: this.approvals.pendingStates(),
      limits: this.limits.status(),
      gateways: this.gateways.status(),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.configuring;
    this.recordSpend();
    this.gateways.stop();
    this.approvals.stop();
    await this.conversation?.part.stop();
    await this.mcp.stop();
  }

  private async configureNow(): Promise<void> {
    if (this.stopped) return;
    const spec = this.o.gosuto.current?.gosuto.spec;
    await this.mcp.apply(this.serverSpecs(spec));
    this.approvals.configure(approvalSettings(spec));
    this.limits.reconfigure(limitsConfig(spec));
    this.configureModel(spec);
    await this.configureConversation(spec);
    this.gateways.apply(spec?.gateways);
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
    const approvalRoom = approvalSettings(spec)?.room;
    const key = identity ? digestOf({ identity: identity.digest, trust: spec?.trust ?? {}, messaging: spec?.messaging ?? {}, approvalRoom: approvalRoom ?? null }) : "";
    if (key === (this.conversation?.key ?? "")) return;
    // A conversation that goes away takes the calls waiting in it along: the next one tells their askers.
    if (this.conversation) this.approvals.stop();
    await this.conversation?.part.stop();
    this.conversation = undefined;
    if (!identity) return;
    const part = new Conversation({
      identity,
      trust: spec?.trust ?? {},
      messaging: spec?.messaging,
      answer: (chat) => this.answer(chat),
      onIgnored: (why, chat) => {
        this.counters.messagesIgnored++;
        if (why !== "unanswered") this.o.events.record({ kind: "message.ignored", reason: why, room: chat.room, sender: chat.sender, size: chat.body.length });
      },
      onAnswered: () => void this.counters.messagesAnswered++,
      beforeSend: async (chat) => {
        const admitted = this.limits.admitMessage();
        if (admitted.ok) return undefined;
        // The notice itself goes out at once, beside the cap: at most one per fill.
        const notice = this.refused(admitted, chat.room);
        if (notice) await this.tell(chat.room, notice, chat.eventId);
        return admitted.retryAt;
      },
      ...(approvalRoom
        ? {
            approvalRoom,
            onApprovalRoom: (roomId: string | undefined) => {
              this.approvals.connect(roomId ? { to: (room, content) => part.post(room, content), self: identity.userId, roomId } : undefined);
              if (roomId) void this.approvals.cancelLeftovers(async (room, content) => void (part.serves(room) ? await part.post(room, content) : undefined));
            },
            onApprovalEvent: (roomId: string, event: Parameters<ToolApprovals["handleEvent"]>[1]) => this.approvals.handleEvent(roomId, event),
          }
        : {}),
      logger: this.log.child({ part: "matrix" }),
    });
    this.conversation = { key, part };
    part.start();
  }

  /** One turn for one message; a model that fails gets the asker one short apology, and /status says why. */
  private answer(chat: IncomingChat): Promise<string | undefined> {
    const traceId = newTraceId();
    this.o.events.record({ kind: "message.accepted", traceId, room: chat.room, sender: chat.sender, size: chat.body.length });
    return this.think({ room: chat.room, askedBy: chat.sender, question: chat.body, eventId: chat.eventId, traceId });
  }

  /**
   * A cron gateway fired: its prompt is one turn, as if asked in its target room by `schedule:NAME`, and the
   * answer is posted there. A rejection says why the gateway failed (its status shows it); the schedule stays.
   */
  private async runScheduled(gateway: Gateway): Promise<void> {
    const traceId = newTraceId();
    this.counters.schedulesFired++;
    this.o.events.record({ kind: "schedule.fired", traceId, gateway: gateway.name, ...(gateway.target ? { room: gateway.target } : {}) });
    const part = this.conversation?.part;
    const room = gateway.target ? part?.targetRoom(gateway.target) : undefined;
    const failed = (reason: string) => {
      this.o.events.record({ kind: "schedule.failed", traceId, gateway: gateway.name, reason });
      return new Error(reason);
    };
    if (!part || !room) throw failed(part ? `cannot post to ${gateway.target}: it is not one of messaging.allowedTargets, or not joined yet` : "the agent is not on Matrix");
    const answer = await this.think({ room, askedBy: `schedule:${gateway.name}`, question: gateway.prompt ?? "", traceId });
    if (!answer) throw failed("the turn gave no answer (is a model configured?)");
    const admitted = this.limits.admitMessage();
    if (!admitted.ok) {
      this.refused(admitted, room, traceId);
      await new Promise((r) => setTimeout(r, Math.max(0, admitted.retryAt - Date.now())));
    }
    await part.post(room, { msgtype: "m.text", body: answer }).catch((error: unknown) => {
      throw failed(`cannot post to ${gateway.target}: ${(error as Error).message}`);
    });
  }

  /** One turn of the tool loop under every limit; the text to say (undefined: nothing to say). */
  private async think(ask: { room: string; askedBy: string; question: string; eventId?: string; traceId: string }): Promise<string | undefined> {
    const { room, traceId } = ask;
    const spec = this.o.gosuto.current?.gosuto.spec;
    const client = this.model.client;
    const chat = { room, sender: ask.askedBy };
    // Memory is per conversation room; a schedule starts from nothing each time, so runs do not drift.
    const scheduled = ask.eventId === undefined;
    const event = this.limits.admitEvent();
    if (!event.ok) return this.refused(event, room, traceId);
    if (!client) {
      if (this.model.status.state === "not configured") return undefined;
      this.counters.turnsFailed++;
      return `Sorry, I cannot answer: my model is not working (${this.model.status.lastError}).`;
    }
    const turn = this.limits.beginTurn();
    if (!turn.ok) return this.refused(turn, room, traceId);
    const capabilities = spec?.capabilities ?? [];
    let cut = false;
    try {
      const outcome = await runTurn({
        systemPrompt: [spec?.persona?.systemPrompt, spec?.instructions].filter(Boolean).join("\n\n") || undefined,
        history: scheduled ? [] : this.memory.history(room),
        question: ask.question,
        tools: offeredTools(this.mcp.tools(), capabilities),
        maxSteps: spec?.limits?.maxTurnSteps ?? DEFAULT_STEPS,
        complete: async (messages, tools) => {
          this.recordSpend();
          const request = this.limits.admitRequest();
          if (!request.ok) throw new LimitReached(request);
          const reply = await client.complete(messages, tools);
          const usage = reply.usage;
          if (usage) this.recordSpendSoon(() => this.limits.recordUsage(usage));
          else this.recordSpendSoon(() => this.limits.recordUnreported({ sent: { messages, tools }, received: reply }));
          cut = reply.finishReason === "length";
          return reply;
        },
        decide: (call) => evaluate(capabilities, call),
        run: (server, tool, args) => this.mcp.call(server, tool, args),
        approve: async (call) =>
          explainApproval(
            await this.approvals.ask({
              mcp: call.server,
              tool: call.tool,
              rule: call.rule,
              args: call.args,
              askedBy: ask.askedBy,
              room,
              ...(ask.eventId ? { askEventId: ask.eventId } : {}),
              traceId,
              onWaiting: (r) => void this.tell(room, `The call to ${r.mcp}.${r.tool} waits for a human's approval (request ${r.id}, rule ${r.rule}, expires ${r.expiresAt}). I will go on once it is decided.`, ask.eventId),
            }),
          ),
        onDecision: (d) => this.noteDecision(chat, traceId, d),
      });
      if (this.model.client === client) this.model.status = { ...this.model.status, state: "ready", lastError: null };
      if (!scheduled) this.memory.remember(room, ask.question, outcome.answer);
      if (!cut) return outcome.answer;
      const truncated = this.limits.truncated();
      this.o.events.record({ kind: "limit.reached", traceId, limit: truncated.limit, room });
      return `${outcome.answer}\n\n${truncated.text}`;
    } catch (error) {
      if (error instanceof LimitReached) return this.refused(error.refusal, room, traceId);
      this.counters.turnsFailed++;
      const reason = error instanceof ModelError ? error.message : "an internal error";
      if (this.model.client === client) this.model.status = { ...this.model.status, state: "failed", lastError: reason };
      this.log.warn({ traceId, room, err: reason }, "a turn failed");
      return `Sorry, I could not answer just now: ${reason}. Please try again later.`;
    } finally {
      turn.release();
    }
  }

  private recordSpendSoon(record: () => void): void {
    this.unrecordedSpend.push(record);
    if (this.unrecordedSpend.length === 1) setImmediate(() => this.recordSpend());
  }

  private recordSpend(): void {
    for (const record of this.unrecordedSpend.splice(0)) record();
  }

  /**
   * Something a limit refused: counted every time; journalled, and said to the asker, once each time the limit
   * fills (the refusal carries a notice then), so a flood is not answered with a flood.
   */
  private refused(refusal: Refusal, room: string, traceId?: string): string | undefined {
    this.counters.limitsReached++;
    if (!refusal.notice) return undefined;
    this.o.events.record({ kind: "limit.reached", limit: refusal.limit, room, ...(traceId ? { traceId } : {}), ...(refusal.resetsAt ? { reason: `resets at ${refusal.resetsAt}` } : {}) });
    this.log.info({ traceId, limit: refusal.limit, resetsAt: refusal.resetsAt }, "a limit was reached");
    return refusal.notice.text;
  }

  private noteDecision(chat: { room: string; sender: string }, traceId: string, d: CallDecision): void {
    const counter = ({ allow: "toolCallsAllowed", approved: "toolCallsApproved", rejected: "toolCallsRejected" } as const)[d.decision as "allow" | "approved" | "rejected"] ?? "toolCallsDenied";
    this.counters[counter]++;
    this.log.info({ traceId, room: chat.room, mcp: d.server, tool: d.tool, decision: d.decision, rule: d.rule, ...(d.ok !== undefined ? { ok: d.ok } : {}) }, `tool call ${d.decision}${d.rule ? ` by rule ${d.rule}` : ""}`);
    // Waiting, approved and rejected calls are journalled by the approvals themselves, with the request's id.
    if (d.decision === "approved" || d.decision === "rejected") return;
    this.o.events.record({
      kind: d.decision === "allow" ? "tool.allowed" : "tool.denied",
      traceId,
      room: chat.room,
      sender: chat.sender,
      tool: d.tool,
      ...(d.server ? { mcp: d.server } : {}),
      ...(d.rule ? { rule: d.rule } : {}),
      ...(d.decision === "unknown-tool" || d.decision === "bad-arguments" ? { reason: d.decision } : {}),
    });
  }

  /** A notice to an asker, outside the answer (a call waits for approval, a limit was reached). */
  private async tell(room: string, text: string, inReplyTo?: string): Promise<void> {
    const part = this.conversation?.part;
    if (!part?.serves(room)) return;
    await part.post(room, notice(text, inReplyTo)).catch((error: unknown) => this.log.warn({ room, err: (error as Error).message }, "could not post a notice"));
  }
}

function limitsConfig(spec: Spec | undefined): LimitsConfig {
  return { ...(spec?.limits ? { limits: spec.limits } : {}), ...(spec?.messaging ? { messaging: spec.messaging } : {}), ...(spec?.persona?.pricing ? { pricing: spec.persona.pricing } : {}) };
}

/** The Gosuto's approvals, when they can be asked for at all. */
function approvalSettings(spec: Spec | undefined): ApprovalSettings | undefined {
  const a = spec?.approvals;
  if (!a?.enabled || !a.room || !a.approvers?.length) return undefined;
  return { room: a.room, approvers: a.approvers, ttlSeconds: a.ttlSeconds ?? 3600, validForSeconds: a.validForSeconds ?? 0 };
}

/** What the turn (and so the model) is told about a call that needed a human. */
function explainApproval(outcome: ApprovalOutcome): { approved: true } | { approved: false; why: string } {
  switch (outcome.decision) {
    case "approved":
      return { approved: true };
    case "denied":
      return { approved: false, why: `a human (${outcome.by}) denied this call (approval ${outcome.id})` };
    case "expired":
      return { approved: false, why: `nobody decided on this call in time; approval ${outcome.id} expired` };
    case "unavailable":
      return { approved: false, why: `this call needs a human's approval, which could not be asked for (${outcome.reason})` };
  }
}
