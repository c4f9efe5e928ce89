import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ApprovalPolicyManifest } from "../../../src/api/generated/types.ts";
import { emptyOutcome, nextAgentStatus, transitionsOf } from "../../../src/controller/agent-status.ts";
import { describeRuntime, problemsOf, summarizeRuntime } from "../../../src/controller/agent-health.ts";
import { ABSENT } from "../../../src/controller/changes.ts";
import { phaseOf } from "../../../src/controller/conditions.ts";
import { planPolicy } from "../../../src/controller/policy-reconciler.ts";
import type { AgentRuntime } from "../../../src/store/agent-status-store.ts";
import type { ApprovalRequest } from "../../../src/store/approval-store.ts";

const ctx = (now: string) => ({ agent: "newsbot", revision: "r2", now, stallAfterFailures: 5 });
const condition = (s: ReturnType<typeof nextAgentStatus>, type: string) => s.conditions.find((c) => c.type === type)!;

describe("agent status: a function of the previous status and the outcome", () => {
  test("a terminal failure is Stalled at once with its reason, and says when it is tried again", () => {
    const s = nextAgentStatus(undefined, { ...emptyOutcome(), error: { message: "image x is not present on this host", terminal: true, reason: "ImageMissing" } }, ctx("t1"));
    assert.deepEqual([condition(s, "Stalled").status, condition(s, "Stalled").reason, condition(s, "Reconciling").status], ["True", "ImageMissing", "False"]);
    assert.match(condition(s, "Reconciling").message, /next revision or resync/);
    assert.equal(s.lastError, "image x is not present on this host");
  });

  test("an ordinary failure retries, and is Stalled only after repeated failures", () => {
    let s = nextAgentStatus(undefined, { ...emptyOutcome(), error: { message: "boom", terminal: false } }, ctx("t1"));
    assert.equal(condition(s, "Stalled").status, "False");
    for (let i = 0; i < 4; i++) s = nextAgentStatus(s, { ...emptyOutcome(), error: { message: "boom", terminal: false } }, ctx(`t${i + 2}`));
    assert.deepEqual([s.failures, condition(s, "Stalled").status, condition(s, "Stalled").reason], [5, "True", "RepeatedFailure"]);
  });

  test("waiting for approval names the request and who decides; a denial tells how to propose again", () => {
    const request = { id: "abc", summary: "Gosuto/newsbot for agent newsbot: capabilities changed", quorum: 1, approvers: ["@alice:hs"], expiresAt: "2026-01-02T00:00:00.000Z", status: "pending" } as ApprovalRequest;
    const parked = nextAgentStatus(undefined, { ...emptyOutcome(), parked: [request], converged: false }, ctx("t1"));
    assert.deepEqual([condition(parked, "AwaitingApproval").status, condition(parked, "Ready").reason], ["True", "AwaitingApproval"]);
    assert.match(condition(parked, "AwaitingApproval").message, /approval abc: .*capabilities changed \(1 of @alice:hs, expires/);
    const denied = nextAgentStatus(parked, { ...emptyOutcome(), blocked: [{ ...request, status: "denied", decidedBy: "@alice:hs" }] }, ctx("t2"));
    assert.equal(condition(denied, "Ready").reason, "ApprovalDenied");
    assert.match(condition(denied, "Ready").message, /denied by @alice:hs: .*to propose it again, change or touch its file/);
    assert.deepEqual(transitionsOf(parked, denied).map((t) => `${t.condition.type}=${t.condition.status}`), ["Ready=False", "AwaitingApproval=False"]);
  });
});

describe("an agent's own parts", () => {
  const healthy = {
    conversation: { state: "connected", userId: "@newsbot:hs", rooms: ["!r:hs"], refused: [], lastError: null },
    model: { state: "ready", provider: "openai", model: "gpt-4o-mini", lastError: null },
    mcps: [{ name: "search", state: "running", tools: 2, restarts: 0, lastError: null }],
    counters: { messagesAnswered: 3, messagesIgnored: 1, toolCallsAllowed: 2, toolCallsDenied: 0, turnsFailed: 0 },
  };
  const converged = (runtime: AgentRuntime) => ({ ...emptyOutcome(), converged: true, agentReport: { gosutoDigest: "g", secretsDigest: "s", runtime } });

  test("an agent whose parts work is Ready; one whose MCP server keeps crashing is Degraded, says why once, and is Ready again when it recovers", () => {
    const ready = nextAgentStatus(undefined, converged(healthy), ctx("t1"));
    assert.deepEqual([condition(ready, "Ready").status, phaseOf(ready.conditions)], ["True", "Ready"]);
    assert.deepEqual(ready.runtime, healthy);
    const crashing = { ...healthy, mcps: [{ name: "search", state: "restarting", tools: 0, restarts: 3, lastError: "exited: boom" }] };
    const once = nextAgentStatus(ready, converged(crashing), ctx("t2"));
    assert.equal(condition(once, "Ready").status, "True", "one report of a restart is not news: it may be back at once");
    const degraded = nextAgentStatus(once, converged(crashing), ctx("t2"));
    assert.deepEqual([condition(degraded, "Ready").status, condition(degraded, "Ready").reason, phaseOf(degraded.conditions)], ["False", "Degraded", "Degraded"]);
    assert.equal(condition(degraded, "Ready").message, "MCP server search restarting (3 restarts): exited: boom");
    assert.equal(degraded.appliedRevision, "r2", "the config was applied: Ruriko's part is done");
    assert.deepEqual(transitionsOf(ready, degraded).map((t) => `${t.condition.type}=${t.condition.status}/${t.condition.reason}`), ["Ready=False/Degraded"]);
    const still = nextAgentStatus(degraded, converged({ ...crashing, mcps: [{ ...crashing.mcps[0]!, restarts: 4 }] }), ctx("t3"));
    assert.deepEqual(transitionsOf(degraded, still), [], "a server still crashing is not news again");
    const recovered = nextAgentStatus(still, converged(healthy), ctx("t4"));
    assert.deepEqual(transitionsOf(still, recovered).map((t) => `${t.condition.type}=${t.condition.status}`), ["Ready=True"]);
  });

  test("parts the agent is not configured to have, or that are on their way up, never degrade it", () => {
    const bare = { conversation: { state: "not configured" }, model: { state: "not configured", provider: null, model: null, lastError: null }, mcps: [] };
    assert.deepEqual(problemsOf(bare), []);
    assert.deepEqual(problemsOf({ ...healthy, conversation: { state: "connecting" }, mcps: [{ name: "search", state: "starting" }] }), []);
    assert.deepEqual(problemsOf({ mcps: [{ name: "fetch", state: "stopped", lastError: null }] }), [], "stopped on purpose");
    assert.equal(condition(nextAgentStatus(undefined, converged(bare), ctx("t1")), "Ready").status, "True");
  });

  test("each broken part is named with its reason", () => {
    const broken = {
      conversation: { state: "connected", refused: [{ room: "!e:hs", reason: "end-to-end encrypted: this agent cannot read it" }] },
      model: { state: "failed", provider: "openai", model: "gpt-4o-mini", lastError: "the provider refused the API key" },
      mcps: [
        { name: "search", state: "failed", lastError: "cannot start: spawn brave-search-mcp-server ENOENT" },
        { name: "fetch", state: "stopped", lastError: "waiting for secret fetch-token" },
      ],
    };
    assert.deepEqual(problemsOf(broken), [
      "Matrix room !e:hs not served: end-to-end encrypted: this agent cannot read it",
      "model gpt-4o-mini failed: the provider refused the API key",
      "MCP server search failed: cannot start: spawn brave-search-mcp-server ENOENT",
      "MCP server fetch stopped: waiting for secret fetch-token",
    ]);
    const away = { conversation: { state: "disconnected", lastError: "the homeserver does not answer (ECONNREFUSED)" }, mcps: [] };
    assert.deepEqual(problemsOf(away), [], "the homeserver away for one report may be back by the next");
    assert.deepEqual(problemsOf(away, away), ["Matrix disconnected: the homeserver does not answer (ECONNREFUSED)"]);
    const notYet = { conversation: { state: "connected", refused: [{ room: "!r:hs", reason: "cannot join: M_FORBIDDEN 403: You are not invited to this room." }] }, mcps: [] };
    assert.deepEqual(problemsOf(notYet), [], "an invitation may be on its way");
    assert.equal(problemsOf(notYet, notYet).length, 1);
    assert.deepEqual(problemsOf({ conversation: { state: "refused", lastError: "trust.requireE2EE is set" }, mcps: [] }), ["Matrix refused: trust.requireE2EE is set"]);
  });

  test("people read each part on its own line, and a table cell in a few words", () => {
    assert.deepEqual(describeRuntime(healthy), [
      "matrix     connected as @newsbot:hs, serving 1 room",
      "model      ready: openai gpt-4o-mini",
      "mcp        search running, 2 tools",
      "counters   3 answered, 1 ignored, tool calls 2 allowed / 0 denied, 0 turns failed",
    ]);
    assert.equal(summarizeRuntime(healthy), "matrix connected · model ready · mcp 1/1 running");
    assert.equal(summarizeRuntime({ conversation: { state: "not configured" }, mcps: [] }), "-");
  });

  test("what the agent last said is kept while it does not answer, and dropped with its container", () => {
    const ready = nextAgentStatus(undefined, converged(healthy), ctx("t1"));
    const failing = nextAgentStatus(ready, { ...emptyOutcome(), error: { message: "unreachable", terminal: false } }, ctx("t2"));
    assert.deepEqual(failing.runtime, healthy);
    assert.equal(nextAgentStatus(ready, { ...emptyOutcome(), converged: true }, ctx("t3")).runtime, null);
  });
});

describe("policy changes", () => {
  const manifest = (approvers: string[], quorum = 1) => ({ apiVersion: "ruriko.dev/v1alpha1", kind: "ApprovalPolicy", metadata: { name: "ops" }, spec: { room: "!r:hs", approvers, quorum, ttl: "24h", remindBefore: "1h", rules: [], gitIdentities: {}, allowSelfApproval: false } }) as unknown as ApprovalPolicyManifest;

  test("a policy not yet in force is a create; an edit names its fields; one gone is a delete; one in force as is, nothing", () => {
    const created = planPolicy("ops", { manifest: manifest(["@a:hs"]), digest: "p1", source: "f1" }, undefined)!;
    assert.deepEqual([created.subject.operation, created.binding.objectKey, created.binding.fromDigest, created.binding.toDigest, created.binding.agent, created.sourceDigest], ["create", "ApprovalPolicy/ops", ABSENT, "p1", "", "f1"]);
    const edited = planPolicy("ops", { manifest: manifest(["@a:hs", "@mallory:hs"], 1), digest: "p2", source: "f2" }, { manifest: manifest(["@a:hs"]), digest: "p1" })!;
    assert.deepEqual([edited.subject.operation, edited.subject.fields, edited.reason], ["update", ["approvers"], "approvers changed"]);
    const removed = planPolicy("ops", undefined, { manifest: manifest(["@a:hs"]), digest: "p1" })!;
    assert.deepEqual([removed.subject.operation, removed.binding.toDigest], ["delete", ABSENT]);
    assert.equal(planPolicy("ops", { manifest: manifest(["@a:hs"]), digest: "p1", source: null }, { manifest: manifest(["@a:hs"]), digest: "p1" }), undefined);
  });
});
