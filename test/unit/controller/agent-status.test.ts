import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ApprovalPolicyManifest } from "../../../src/api/generated/types.ts";
import { emptyOutcome, nextAgentStatus, transitionsOf } from "../../../src/controller/agent-status.ts";
import { ABSENT } from "../../../src/controller/changes.ts";
import { planPolicy } from "../../../src/controller/policy-reconciler.ts";
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
