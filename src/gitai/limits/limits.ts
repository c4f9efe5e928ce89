import type { AcpLimitState, GosutoManifest, Pricing } from "../../api/generated/types.ts";
import type { Logger } from "../../observability/logger.ts";
import {
  budgetNotice,
  concurrencyNotice,
  eventsNotice,
  iso,
  messagesNotice,
  noPricingNotice,
  requestsNotice,
  truncatedNotice,
  type LimitName,
  type LimitNotice,
} from "./notices.ts";
import { Fill, SlidingWindow } from "../../time/sliding-window.ts";
import { nextMonthStart, SpendLedger } from "./spend-ledger.ts";

export type { LimitName, LimitNotice } from "./notices.ts";

/**
 * The Gosuto's limits on one agent, kept by one object the turn loop and the Matrix connection ask before
 * they act. Pure logic around an injected clock: no timers, so a caller that must wait is told until when,
 * and tests move time themselves.
 *
 * A limit that is 0 or absent is no limit. Per-minute limits count what they let through in any 60-second
 * window (sliding, not per calendar minute); what they refuse is not counted. Each time a limit fills, the
 * first refusal carries a notice for the asker — and is the one to record as a `limit.reached` event —
 * while refusals after it in the same full stretch carry none, so nobody is flooded with the same sentence.
 * The stretch ends when the limit next has room (a window slides, a turn ends, a month begins, a cap changes).
 */

export interface LimitsConfig {
  limits?: GosutoManifest["spec"]["limits"];
  messaging?: GosutoManifest["spec"]["messaging"];
  /** persona.pricing: without it a monthly budget cannot be kept. */
  pricing?: Pricing | undefined;
}

export type Refusal = { ok: false; limit: LimitName; resetsAt: string | null; notice: LimitNotice | undefined };
export type Admission = { ok: true } | Refusal;
/** A turn that was let in holds a slot until `release` (safe to call more than once). */
export type TurnAdmission = { ok: true; release: () => void } | Refusal;
/**
 * A message over the cap is not dropped but scheduled: its slot at `retryAt` is already reserved, so the
 * caller waits until then and sends it without asking again.
 */
export type MessageAdmission = { ok: true } | (Refusal & { retryAt: number });

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/** One model request as sent (messages and tool definitions) and its reply, for pricing a reply that reported no usage. */
export interface Exchange {
  sent: unknown;
  received: unknown;
}

const OK = { ok: true } as const;

/** Listed in status() in this order, when set. */
const NAMES: readonly LimitName[] = [
  "maxRequestsPerMinute",
  "maxEventsPerMinute",
  "maxConcurrentRequests",
  "maxMonthlyCostUSD",
  "maxTokensPerRequest",
  "maxMessagesPerMinute",
];

type Caps = Record<LimitName, number>;

export class AgentLimits {
  private readonly now: () => number;
  private readonly ledger: SpendLedger;
  private readonly log: Pick<Logger, "warn"> | undefined;
  private caps: Caps;
  private pricing: Pricing | undefined;
  private readonly requests = new SlidingWindow();
  private readonly events = new SlidingWindow();
  private readonly messages = new SlidingWindow();
  private running = 0;
  private lastCompletionTokens = 0;
  private readonly fills = Object.fromEntries(NAMES.map((n) => [n, new Fill()])) as Record<LimitName, Fill>;

  constructor(options: { config: LimitsConfig; now: () => number; spendFile: string; logger?: Pick<Logger, "warn"> | undefined }) {
    this.now = options.now;
    this.caps = capsOf(options.config);
    this.pricing = options.config.pricing;
    this.log = options.logger;
    this.ledger = new SpendLedger({ file: options.spendFile, now: options.now, logger: options.logger });
  }

  /**
   * A new Gosuto: its caps apply from the next question on, against what was already counted in the current
   * windows and month. A limit whose cap changed starts a new stretch, so its next refusal is announced.
   */
  reconfigure(config: LimitsConfig): void {
    const caps = capsOf(config);
    for (const name of NAMES) if (caps[name] !== this.caps[name]) this.fills[name].hasRoom();
    if (Boolean(config.pricing) !== Boolean(this.pricing)) this.fills.maxMonthlyCostUSD.hasRoom();
    this.caps = caps;
    this.pricing = config.pricing;
  }

  /** An incoming chat message from an allowed sender, or a schedule firing (limits.maxEventsPerMinute). */
  admitEvent(): Admission {
    const cap = this.caps.maxEventsPerMinute;
    return this.admitRate("maxEventsPerMinute", this.events, (at) => eventsNotice(cap, at));
  }

  /**
   * One model request — every chat completion call of a turn, not just the first. The budget is checked
   * before the call, against what earlier calls cost: the call that crosses it still runs, so a month may
   * end a little over its cap (by at most one request per turn running). Refusing by the budget goes first,
   * as it lasts longer than a minute.
   */
  admitRequest(): Admission {
    const refused = this.checkBudget();
    if (refused) return refused;
    const cap = this.caps.maxRequestsPerMinute;
    return this.admitRate("maxRequestsPerMinute", this.requests, (at) => requestsNotice(cap, at));
  }

  /** A turn starting (limits.maxConcurrentRequests counts turns running at once). */
  beginTurn(): TurnAdmission {
    const cap = this.caps.maxConcurrentRequests;
    const fill = this.fills.maxConcurrentRequests;
    if (cap > 0 && this.running >= cap) return this.refuse("maxConcurrentRequests", null, () => concurrencyNotice(cap));
    fill.hasRoom();
    // Counted even without a cap, so that a cap a new Gosuto sets knows what is already running.
    this.running++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.running--;
      fill.hasRoom();
    };
    return { ok: true, release };
  }

  /** A message the agent is about to post, in any room (messaging.maxMessagesPerMinute). */
  admitMessage(): MessageAdmission {
    const now = this.now();
    const cap = this.caps.maxMessagesPerMinute;
    const at = cap > 0 ? this.messages.nextRoom(now, cap) : now;
    this.messages.add(at, now);
    if (at <= now) {
      this.fills.maxMessagesPerMinute.hasRoom();
      return OK;
    }
    // While messages wait their turn the next slot lies ahead, so the stretch lasts until the queue is gone.
    return { ...this.refuse("maxMessagesPerMinute", at, () => messagesNotice(cap, at)), retryAt: at };
  }

  /** What one model request used: its cost (by persona.pricing) goes on this month's bill, which is saved. */
  recordUsage(usage: Usage): void {
    const prompt = tokens(usage.promptTokens);
    const completion = tokens(usage.completionTokens);
    this.lastCompletionTokens = completion;
    const cost = this.pricing ? (prompt / 1e6) * this.pricing.inputPerMTok + (completion / 1e6) * this.pricing.outputPerMTok : 0;
    this.ledger.add(Number.isFinite(cost) && cost > 0 ? cost : 0);
  }

  /**
   * A model request whose reply carried no `usage` (some OpenAI-compatible servers send none). Counting it as
   * free would let a budget run without limit, so with prices set it is charged at an upper bound: one prompt
   * token per UTF-8 byte of the request as sent (its messages and tool definitions as JSON), and
   * limits.maxTokensPerRequest completion tokens — or, with no cap, one per byte of the reply as received. A
   * byte-level tokenizer never makes a token of less than a byte, so neither is understated — except, without a
   * cap, a reasoning model's hidden tokens, which no reply shows. Such requests are counted apart, said in the
   * budget's notice, and warned of once a month.
   */
  recordUnreported(exchange: Exchange): void {
    if (!this.pricing) {
      this.ledger.add(0);
      return;
    }
    const prompt = bytesOf(exchange.sent);
    const completion = this.caps.maxTokensPerRequest > 0 ? this.caps.maxTokensPerRequest : bytesOf(exchange.received);
    const spend = this.ledger.add((prompt / 1e6) * this.pricing.inputPerMTok + (completion / 1e6) * this.pricing.outputPerMTok, true);
    if (spend.estimated === 1) {
      this.log?.warn({ promptTokens: prompt, completionTokens: completion }, "the model's reply carried no token usage: this month's spend counts such requests at an upper bound");
    }
  }

  /** The model's answer stopped at the token cap (finish_reason "length"): the note to append to it. */
  truncated(): LimitNotice {
    this.fills.maxTokensPerRequest.refused(this.now());
    return truncatedNotice(this.caps.maxTokensPerRequest);
  }

  /** Every limit that is set, as ACP's status reports it. */
  status(): AcpLimitState[] {
    const now = this.now();
    const states: AcpLimitState[] = [];
    for (const name of NAMES) {
      const limit = this.caps[name];
      if (limit === 0) continue;
      const reachedAt = this.fills[name].reachedAt;
      states.push({ name, limit, ...this.usage(name, limit, now), reachedAt: reachedAt === null ? null : iso(reachedAt) });
    }
    return states;
  }

  private usage(name: LimitName, cap: number, now: number): { used: number; resetsAt: string | null; estimated?: number } {
    switch (name) {
      case "maxRequestsPerMinute":
        return windowState(this.requests, now, cap);
      case "maxEventsPerMinute":
        return windowState(this.events, now, cap);
      case "maxMessagesPerMinute":
        return windowState(this.messages, now, cap);
      case "maxConcurrentRequests":
        return { used: this.running, resetsAt: null };
      case "maxMonthlyCostUSD": {
        const { usd, estimated } = this.ledger.current();
        // Micro-dollars: enough for any price, and free of float dust like 0.30000000000000004.
        return { used: Math.round(usd * 1e6) / 1e6, resetsAt: iso(nextMonthStart(now)), ...(estimated > 0 ? { estimated } : {}) };
      }
      case "maxTokensPerRequest":
        return { used: this.lastCompletionTokens, resetsAt: null };
    }
  }

  private checkBudget(): Refusal | undefined {
    const cap = this.caps.maxMonthlyCostUSD;
    if (cap === 0) return undefined;
    // Fail closed: a budget nobody can price would otherwise be no budget at all.
    if (!this.pricing) return this.refuse("maxMonthlyCostUSD", null, noPricingNotice);
    const { usd: spent, estimated } = this.ledger.current();
    if (spent >= cap) {
      const resetsAt = nextMonthStart(this.now());
      return this.refuse("maxMonthlyCostUSD", resetsAt, () => budgetNotice(cap, spent, resetsAt, estimated));
    }
    this.fills.maxMonthlyCostUSD.hasRoom();
    return undefined;
  }

  private admitRate(name: LimitName, window: SlidingWindow, notice: (resetsAt: number) => LimitNotice): Admission {
    const now = this.now();
    const cap = this.caps[name];
    const at = cap > 0 ? window.nextRoom(now, cap) : now;
    if (at > now) return this.refuse(name, at, () => notice(at));
    this.fills[name].hasRoom();
    // Counted even without a cap, so that a cap a new Gosuto sets applies to the minute just past.
    window.add(now, now);
    return OK;
  }

  private refuse(limit: LimitName, resetsAt: number | null, notice: () => LimitNotice): Refusal {
    const first = this.fills[limit].refused(this.now());
    return { ok: false, limit, resetsAt: resetsAt === null ? null : iso(resetsAt), notice: first ? notice() : undefined };
  }
}

function windowState(window: SlidingWindow, now: number, cap: number): { used: number; resetsAt: string | null } {
  const { used, resetsAt } = window.state(now, cap);
  return { used, resetsAt: resetsAt === null ? null : iso(resetsAt) };
}

function capsOf(config: LimitsConfig): Caps {
  const limits = config.limits ?? {};
  return {
    maxRequestsPerMinute: count(limits.maxRequestsPerMinute),
    maxEventsPerMinute: count(limits.maxEventsPerMinute),
    maxConcurrentRequests: count(limits.maxConcurrentRequests),
    maxMonthlyCostUSD: positive(limits.maxMonthlyCostUSD),
    maxTokensPerRequest: count(limits.maxTokensPerRequest),
    maxMessagesPerMinute: count(config.messaging?.maxMessagesPerMinute),
  };
}

/** 0, negative, absent or not a number: no limit (validation rejects the odd ones; this only must not crash). */
const positive = (n: number | undefined) => (typeof n === "number" && Number.isFinite(n) && n > 0 ? n : 0);
const count = (n: number | undefined) => Math.ceil(positive(n));
const tokens = (n: number) => (Number.isFinite(n) && n > 0 ? n : 0);
const bytesOf = (value: unknown) => Buffer.byteLength(JSON.stringify(value) ?? "", "utf8");
