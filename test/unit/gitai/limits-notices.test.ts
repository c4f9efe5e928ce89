/** The sentences a limit says: which limit, by its Gosuto field, and when it lets go, in UTC. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { budgetNotice, concurrencyNotice, eventsNotice, messagesNotice, requestsNotice, truncatedNotice, usd } from "../../../src/gitai/limits/notices.ts";

const at = Date.UTC(2026, 10, 30, 23, 59, 59, 400);

describe("limit notices", () => {
  test("name the field, say when it resets, and count in words", () => {
    assert.equal(requestsNotice(1, at).text, "A rate limit was reached: at most 1 model request a minute (limits.maxRequestsPerMinute). It resets at 23:59:59 UTC.");
    assert.equal(eventsNotice(1, at).text, "A rate limit was reached: at most 1 message a minute reach me (limits.maxEventsPerMinute). It resets at 23:59:59 UTC.");
    assert.equal(messagesNotice(30, at).text, "My message limit was reached: at most 30 messages a minute (messaging.maxMessagesPerMinute). My answer follows at 23:59:59 UTC.");
    assert.equal(concurrencyNotice(4).text, "Too many requests at once: at most 4 (limits.maxConcurrentRequests). Please ask again when the current one is answered.");
    assert.equal(truncatedNotice(1).text, "(My answer was cut at the token limit of 1 token per request: limits.maxTokensPerRequest.)");
    assert.equal(requestsNotice(1, at).resetsAt, "2026-11-30T23:59:59.400Z");
  });

  test("the budget's reset is the first of next month, midnight UTC", () => {
    const notice = budgetNotice(250, 250.004, Date.UTC(2027, 0, 1));
    assert.equal(notice.text, "The monthly budget was reached: US$250.00 of US$250.00 spent (limits.maxMonthlyCostUSD). It resets on 2027-01-01 at 00:00 UTC.");
    assert.equal(notice.resetsAt, "2027-01-01T00:00:00.000Z");
  });

  test("dollar amounts: cents, unless the amount is finer than a cent", () => {
    assert.deepEqual([0, 0.5, 1, 12.345, 1234.5, 0.005, 0.0123].map(usd), ["US$0.00", "US$0.50", "US$1.00", "US$12.35", "US$1234.50", "US$0.0050", "US$0.012"]);
  });
});
