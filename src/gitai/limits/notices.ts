/**
 * What the agent says when a limit stops it: one sentence a person can act on — that a limit was reached,
 * which one (the Gosuto field, so an operator can find it), and when it lets go. Times are UTC, the one
 * zone every reader shares. Pure: the caller supplies the times.
 */

export type LimitName =
  | "maxRequestsPerMinute"
  | "maxEventsPerMinute"
  | "maxConcurrentRequests"
  | "maxMonthlyCostUSD"
  | "maxTokensPerRequest"
  | "maxMessagesPerMinute";

export interface LimitNotice {
  limit: LimitName;
  text: string;
  /** ISO time the limit lets one more through; null when no clock ends it (concurrency, tokens, no pricing). */
  resetsAt: string | null;
}

export function requestsNotice(cap: number, resetsAt: number): LimitNotice {
  const text = `A rate limit was reached: at most ${count(cap, "model request")} a minute (limits.maxRequestsPerMinute). It resets at ${clockTime(resetsAt)}.`;
  return { limit: "maxRequestsPerMinute", text, resetsAt: iso(resetsAt) };
}

export function eventsNotice(cap: number, resetsAt: number): LimitNotice {
  const text = `A rate limit was reached: at most ${count(cap, "message")} a minute reach me (limits.maxEventsPerMinute). It resets at ${clockTime(resetsAt)}.`;
  return { limit: "maxEventsPerMinute", text, resetsAt: iso(resetsAt) };
}

export function concurrencyNotice(cap: number): LimitNotice {
  const text = `Too many requests at once: at most ${cap} (limits.maxConcurrentRequests). Please ask again when the current one is answered.`;
  return { limit: "maxConcurrentRequests", text, resetsAt: null };
}

/** `estimated`: this month's requests priced at an upper bound because the provider reported no usage. */
export function budgetNotice(capUsd: number, spentUsd: number, resetsAt: number, estimated = 0): LimitNotice {
  const date = iso(resetsAt).slice(0, 10);
  const guessed = estimated > 0 ? ` Of that, ${count(estimated, "request")} ${estimated === 1 ? "was" : "were"} priced at an upper bound: the model's provider reported no token usage.` : "";
  const text = `The monthly budget was reached: ${usd(spentUsd)} of ${usd(capUsd)} spent (limits.maxMonthlyCostUSD).${guessed} It resets on ${date} at 00:00 UTC.`;
  return { limit: "maxMonthlyCostUSD", text, resetsAt: iso(resetsAt) };
}

/** A budget without prices cannot be kept, so nothing is spent: the notice says what the Gosuto lacks. */
export function noPricingNotice(): LimitNotice {
  const text = "The monthly budget cannot be checked: limits.maxMonthlyCostUSD is set but persona.pricing is not, so I make no model requests.";
  return { limit: "maxMonthlyCostUSD", text, resetsAt: null };
}

export function messagesNotice(cap: number, sendAt: number): LimitNotice {
  const text = `My message limit was reached: at most ${count(cap, "message")} a minute (messaging.maxMessagesPerMinute). My answer follows at ${clockTime(sendAt)}.`;
  return { limit: "maxMessagesPerMinute", text, resetsAt: iso(sendAt) };
}

/** Appended to an answer the model stopped at the token cap; without a cap, the provider's own limit cut it. */
export function truncatedNotice(cap: number | undefined): LimitNotice {
  const text =
    cap && cap > 0
      ? `(My answer was cut at the token limit of ${count(cap, "token")} per request: limits.maxTokensPerRequest.)`
      : "(My answer was cut at the model's token limit.)";
  return { limit: "maxTokensPerRequest", text, resetsAt: null };
}

export const iso = (ms: number) => new Date(ms).toISOString();

/** "13:05:20 UTC": within a minute of now, the date goes without saying. */
const clockTime = (ms: number) => `${iso(ms).slice(11, 19)} UTC`;

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`;

/** Cents for ordinary amounts; two significant digits for budgets below a dollar set finer than a cent. */
export const usd = (n: number) => `US$${n >= 1 || n === 0 || Number(n.toFixed(2)) === n ? n.toFixed(2) : n.toPrecision(2)}`;
