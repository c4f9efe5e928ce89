import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AcpStatus } from "../../../src/api/generated/types.ts";
import { runtimeOf } from "../../../src/controller/agent-health.ts";
import { newsIn } from "../../../src/controller/agent-probe.ts";
import { emptyOutcome, nextAgentStatus } from "../../../src/controller/agent-status.ts";
import type { AgentStatus } from "../../../src/store/agent-status-store.ts";

const G = `sha256:${"a".repeat(64)}`;
const S = `sha256:${"b".repeat(64)}`;
const M = `sha256:${"c".repeat(64)}`;

const answer = (over: Partial<AcpStatus> = {}): AcpStatus => ({
  agent: "newsbot",
  version: "0.1.0",
  startedAt: "2026-11-29T10:00:00.000Z",
  gosutoDigest: G,
  secretsDigest: S,
  matrix: { homeserver: "http://hs", userId: "@newsbot:hs", digest: M },
  secrets: [{ name: "openai-key", version: 1 }],
  mcps: [{ name: "fetch", state: "running", tools: 2, restarts: 0, lastError: null }],
  conversation: { state: "connected", userId: "@newsbot:hs", rooms: ["!r:hs"] },
  model: { state: "ready", provider: "openai", model: "gpt-4o-mini", lastError: null },
  counters: { messagesAnswered: 3 },
  restarts: 0,
  events: { last: 7 },
  ...over,
});

/** The status a reconcile writes after reading `report` (through the database: JSON in, JSON out). */
function statusAfter(report: AcpStatus): AgentStatus {
  const outcome = { ...emptyOutcome(), converged: true, agentReport: { gosutoDigest: report.gosutoDigest, secretsDigest: report.secretsDigest, runtime: runtimeOf(report) } };
  return JSON.parse(JSON.stringify(nextAgentStatus(undefined, outcome, { agent: "newsbot", revision: "r1", now: "t1", stallAfterFailures: 5 }))) as AgentStatus;
}

const cursor = { seq: 7, anchor: "2026-11-29T10:05:00.000Z abc" };
const previous = { matrixDigest: M };

describe("the agent probe: which answers of a Ready agent are news", () => {
  test("the same answer as the last reconcile read is no news: nothing is reconciled", () => {
    const report = answer();
    const status = statusAfter(report);
    assert.equal(status.conditions.find((c) => c.type === "Ready")?.status, "True");
    assert.equal(newsIn(answer(), status, cursor, previous), undefined);
  });

  test("without a previous answer the Matrix identity the agent holds is not known yet", () => {
    assert.equal(newsIn(answer(), statusAfter(answer()), cursor, undefined), "first answer");
  });

  test("config moved inside the agent (a restart, a PUT behind Ruriko's back) is news", () => {
    const status = statusAfter(answer());
    assert.equal(newsIn(answer({ gosutoDigest: null, secretsDigest: null }), status, cursor, previous), "its Gosuto digest moved");
    assert.equal(newsIn(answer({ secretsDigest: null }), status, cursor, previous), "its secrets digest moved");
    assert.equal(newsIn(answer({ matrix: null }), status, cursor, previous), "its Matrix identity changed");
  });

  test("a part that changed, or one that is not well even once, is news: the reconcile judges it", () => {
    const status = statusAfter(answer());
    assert.equal(newsIn(answer({ counters: { messagesAnswered: 4 } }), status, cursor, previous), "its parts changed");
    // Recorded as it is (the reconcile that saw it first does not call it Degraded yet), and asked again: still news.
    const restarting = answer({ mcps: [{ name: "fetch", state: "restarting", restarts: 1, lastError: "exited 1" }] });
    assert.equal(newsIn(restarting, statusAfter(restarting), cursor, previous), "a part is not well");
    const failed = answer({ model: { state: "failed", provider: "openai", model: "gpt-4o-mini", lastError: "401" } });
    assert.equal(newsIn(failed, statusAfter(failed), cursor, previous), "a part is not well");
  });

  test("a journal that moved past the cursor is news; one the cursor has reached is not", () => {
    const status = statusAfter(answer());
    assert.equal(newsIn(answer({ events: { last: 8 } }), status, cursor, previous), "its journal moved");
    assert.equal(newsIn(answer({ events: { last: 8 } }), status, { seq: 8, anchor: null }, previous), undefined);
    assert.equal(newsIn(answer({ events: undefined }), status, undefined, previous), undefined);
  });
});
