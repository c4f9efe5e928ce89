/**
 * The gate as a pure function over (change, policies in force, requests and votes): every rule of
 * docs/approvals.md, and each way the old gate could be walked around.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ApprovalPolicyManifest } from "../../../src/api/generated/types.ts";
import { requestsToRetire, selfApprovers, verdictFor, verdictsFor, type ProposedChange } from "../../../src/approvals/gate.ts";
import { MAX_TTL_MS, requirementFor, type RequiredApproval } from "../../../src/approvals/policy.ts";
import { judgeVote } from "../../../src/approvals/votes.ts";
import type { ApprovalRequest } from "../../../src/store/approval-store.ts";

const policy = (name: string, spec: Partial<ApprovalPolicyManifest["spec"]> = {}): ApprovalPolicyManifest =>
  ({
    apiVersion: "ruriko.dev/v1alpha1",
    kind: "ApprovalPolicy",
    metadata: { name },
    spec: { room: "!approvals:localhost", approvers: ["@alice:localhost", "@bob:localhost"], quorum: 1, ttl: "1h", remindBefore: "10m", rules: [], ...spec },
  }) as ApprovalPolicyManifest;

const gosutoRule = policy("default", { rules: [{ match: { kind: "Gosuto", fields: ["capabilities", "trust"] }, require: "approval" }] });

const change = (over: Partial<ProposedChange["binding"]> & { kind?: ProposedChange["subject"]["kind"]; operation?: string; fields?: string[]; source?: string | null } = {}): ProposedChange => {
  const kind = over.kind ?? "Gosuto";
  const operation = over.operation ?? "update";
  return {
    subject: { kind, name: "newsbot", operation, fields: over.fields ?? ["capabilities"], drift: false },
    binding: { agent: "newsbot", objectKey: `${kind}/newsbot`, operation, fromDigest: over.fromDigest ?? "d1", toDigest: over.toDigest ?? "d2" },
    summary: `${kind}/newsbot: change`,
    sourceDigest: over.source === undefined ? "file-1" : over.source,
  };
};

const required = (c: ProposedChange, policies = [gosutoRule]) => {
  const r = requirementFor(c.subject, policies);
  assert.ok(r.required);
  return r;
};

let nextId = 0;
const requestFor = (c: ProposedChange, r: RequiredApproval, over: Partial<ApprovalRequest> = {}): ApprovalRequest => ({
  id: `r${nextId++}`,
  ...c.binding,
  revision: "rev",
  summary: c.summary,
  policy: r.policy,
  room: r.room,
  approvers: r.approvers,
  quorum: r.quorum,
  status: "pending",
  createdAt: "2026-01-01T00:00:00.000Z",
  expiresAt: "2026-01-01T01:00:00.000Z",
  remindAt: null,
  decidedAt: null,
  decidedBy: null,
  reason: null,
  traceId: "t",
  requirementDigest: r.digest,
  sourceDigest: c.sourceDigest,
  authors: [],
  excluded: [],
  retiredAt: null,
  ...over,
});

describe("the gate: which changes need whom (policies in force)", () => {
  test("a Gosuto capabilities or trust edit needs the in-force policy's approvers; a persona edit does not", () => {
    const r = required(change({ fields: ["capabilities"] }));
    assert.deepEqual([r.policy, r.approvers, r.quorum], ["default", ["@alice:localhost", "@bob:localhost"], 1]);
    assert.equal(requirementFor(change({ fields: ["persona"] }).subject, [gosutoRule]).required, false);
  });

  test("the gate reads only the policies it is given (those in force): a revision's own policy has no say", () => {
    // The revision brings `yolo` exempting every grant; only `default` is in force.
    const yolo = policy("a-yolo", { approvers: ["@mallory:localhost"], rules: [{ match: { kind: "SecretBinding", operation: "grant" }, require: "none" }] });
    const grant = change({ kind: "SecretBinding", operation: "grant", fields: [], fromDigest: "absent" });
    assert.equal(requirementFor(grant.subject, [policy("default")]).required, true);
    assert.equal(requirementFor(grant.subject, [policy("default"), yolo]).required, false, "were it in force, it would decide");
  });

  test("defaults: only agent delete, secret grant and secret delete need approval; a policy change needs its own approvers", () => {
    const none: ApprovalPolicyManifest[] = [policy("default")];
    const need = (kind: ProposedChange["subject"]["kind"], operation: string) => requirementFor({ kind, name: "x", operation, fields: [], drift: false }, none).required;
    assert.deepEqual(
      [need("Agent", "create"), need("Agent", "update"), need("Agent", "delete"), need("Gosuto", "update"), need("SecretBinding", "grant"), need("SecretBinding", "revoke"), need("Secret", "delete"), need("Secret", "rotate")],
      [false, false, true, false, true, false, true, false],
    );
    const own = policy("ops", { approvers: ["@carol:localhost"], quorum: 1 });
    const edit = requirementFor({ kind: "ApprovalPolicy", name: "ops", operation: "update", fields: ["rules"], drift: false }, [policy("default"), own]);
    assert.deepEqual(edit.required && edit.approvers, ["@carol:localhost"], "a policy's own approvers decide its changes");
    const added = requirementFor({ kind: "ApprovalPolicy", name: "new", operation: "create", fields: ["rules"], drift: false }, [policy("default"), own]);
    assert.equal(added.required && added.policy, "default", "a new policy: the first policy in force");
    const bootstrap = requirementFor({ kind: "ApprovalPolicy", name: "new", operation: "create", fields: [], drift: false }, []);
    assert.deepEqual(bootstrap.required && [bootstrap.policy, bootstrap.approvers], [null, []], "nobody in force: only the local operator");
    const exempt = requirementFor({ kind: "ApprovalPolicy", name: "ops", operation: "update", fields: [], drift: false }, [policy("default", { rules: [{ match: { kind: "ApprovalPolicy" }, require: "none" }] })]);
    assert.equal(exempt.required, false, "a rule in force may exempt policy changes");
  });

  test("a broad `require: none` (no kind) never exempts what is risky by default; one naming the kind does", () => {
    const broad = policy("default", { rules: [{ match: { names: ["scratch"] }, require: "none" }] });
    const grant = { kind: "SecretBinding" as const, name: "scratch", operation: "grant", fields: [], drift: false };
    assert.equal(requirementFor(grant, [broad]).required, true);
    assert.equal(requirementFor({ kind: "ApprovalPolicy", name: "scratch", operation: "create", fields: [], drift: false }, [broad]).required, true);
    assert.equal(requirementFor({ kind: "Agent", name: "scratch", operation: "update", fields: ["image"], drift: false }, [broad]).required, false, "it still exempts what goes by default");
    const named = policy("default", { rules: [{ match: { kind: "SecretBinding", names: ["scratch"] }, require: "none" }] });
    assert.equal(requirementFor(grant, [named]).required, false);
  });

  test("any duration the schema accepts is a TTL; a reminder at or past the TTL is none", () => {
    const huge = requirementFor(change().subject, [policy("default", { ttl: "99999999999999999999d", rules: gosutoRule.spec.rules })]);
    assert.equal(huge.required && huge.ttlMs, MAX_TTL_MS);
    assert.ok(huge.required && Number.isFinite(new Date(Date.now() + huge.ttlMs).getTime()));
    const ms = requirementFor(change().subject, [policy("default", { ttl: "1500ms", remindBefore: "2h", rules: gosutoRule.spec.rules })]);
    assert.deepEqual(ms.required && [ms.ttlMs, ms.remindBeforeMs], [1500, 7_200_000]);
  });

  test("the requirement digest moves with who decides, not with the TTL", () => {
    const a = required(change(), [gosutoRule]);
    const b = required(change(), [policy("default", { ...gosutoRule.spec, ttl: "2h" })]);
    const c = required(change(), [policy("default", { ...gosutoRule.spec, approvers: ["@alice:localhost"] })]);
    assert.equal(a.digest, b.digest);
    assert.notEqual(a.digest, c.digest);
  });
});

describe("the gate: run, park or block, bound to the change and the policy in force", () => {
  const c = change();
  const r = required(c);

  test("a change that needs nobody runs; one that needs approval and has no request parks for a new one", () => {
    assert.equal(verdictFor(change({ fields: ["persona"] }), requirementFor(change({ fields: ["persona"] }).subject, [gosutoRule]), []).verdict, "run");
    const v = verdictFor(c, r, []);
    assert.deepEqual([v.verdict, v.verdict === "park" && v.request], ["park", undefined]);
  });

  test("approved → runs with that approval; pending → parks on it", () => {
    const approved = requestFor(c, r, { status: "approved" });
    const run = verdictFor(c, r, [approved]);
    assert.equal(run.verdict === "run" && run.approval?.id, approved.id);
    const pending = requestFor(c, r);
    const park = verdictFor(c, r, [pending]);
    assert.equal(park.verdict === "park" && park.request?.id, pending.id);
  });

  test("an approval asked of other people (the policy in force changed since) is not this change's approval", () => {
    const other = required(c, [policy("default", { ...gosutoRule.spec, approvers: ["@mallory:localhost"] })]);
    const v = verdictFor(c, r, [requestFor(c, other, { status: "approved" })]);
    assert.deepEqual([v.verdict, v.verdict === "park" && v.request], ["park", undefined]);
  });

  test("denied or expired blocks the same proposal; proposed again (its file touched) it parks for a new request", () => {
    for (const status of ["denied", "expired"] as const) {
      const decided = requestFor(c, r, { status });
      assert.equal(verdictFor(c, r, [decided]).verdict, "block");
      const again = change({ source: "file-2" });
      const v = verdictFor(again, r, [decided]);
      assert.deepEqual([v.verdict, v.verdict === "park" && v.request], ["park", undefined]);
    }
  });

  test("an applied or superseded request is never used again", () => {
    for (const status of ["applied", "superseded"] as const) assert.deepEqual(verdictFor(c, r, [requestFor(c, r, { status })]).verdict, "park");
  });

  test("retired: pending and approved requests of a change no longer planned (a stale approval is never used later)", () => {
    const old = change({ toDigest: "d-old" });
    const approvedOld = requestFor(old, r, { status: "approved" });
    const pendingOld = requestFor(old, r);
    const current = requestFor(c, r);
    const planned = [{ change: c, verdict: verdictFor(c, r, [current]) }];
    assert.deepEqual(requestsToRetire([approvedOld, pendingOld, current], planned).map((x) => x.id).sort(), [approvedOld.id, pendingOld.id].sort());
  });

  test("retired: a request for the same change asked under another requirement; a denial once the change is proposed again", () => {
    const other = required(c, [policy("default", { ...gosutoRule.spec, quorum: 2 })]);
    const stale = requestFor(c, other);
    const denied = requestFor(c, r, { status: "denied" });
    const plannedSame = [{ change: c, verdict: verdictFor(c, r, [denied]) }];
    assert.deepEqual(requestsToRetire([stale, denied], plannedSame).map((x) => x.id), [stale.id], "the denial still blocks the same proposal");
    const touched = change({ source: "file-2" });
    const plannedAgain = [{ change: touched, verdict: verdictFor(touched, r, [denied]) }];
    assert.deepEqual(requestsToRetire([denied], plannedAgain).map((x) => x.id), [denied.id], "proposed again: the denial no longer blocks");
    assert.deepEqual(requestsToRetire([denied], []).map((x) => x.id), [denied.id], "the change left the plan: when it comes back it is new");
  });

  test("verdictsFor: one verdict per change, from the requests of exactly that change", () => {
    const a = change();
    const b = change({ kind: "SecretBinding", operation: "grant", fields: [], fromDigest: "absent", toDigest: "b1" });
    const approved = requestFor(a, r, { status: "approved" });
    const verdicts = verdictsFor([a, b], [gosutoRule], (binding) => (binding.objectKey === a.binding.objectKey ? [approved] : []));
    assert.deepEqual(verdicts.map((v) => v.verdict), ["run", "park"]);
  });
});

describe("the gate: votes", () => {
  const r = required(change(), [policy("default", { ...gosutoRule.spec, quorum: 2, gitIdentities: { "@alice:localhost": ["Alice@Example.org"] } })]);

  test("an approver who wrote the change cannot approve it, whoever they commit as; unless the policy allows it", () => {
    assert.deepEqual(selfApprovers(r, [{ name: "Alice Liddell", email: "alice@example.org" }]), ["@alice:localhost"]);
    assert.deepEqual(selfApprovers(r, [{ name: "Bob", email: "bob@example.org" }]), []);
    assert.deepEqual(selfApprovers(r, []), []);
    const allowed = required(change(), [policy("default", { ...gosutoRule.spec, allowSelfApproval: true, gitIdentities: { "@alice:localhost": ["alice@example.org"] } })]);
    assert.deepEqual(selfApprovers(allowed, [{ name: "", email: "alice@example.org" }]), []);
  });

  test("listed approvers count once; the author's approval does not, their denial does; quorum decides; the first decision wins", () => {
    const request = { status: "pending", expiresAt: "2026-01-01T01:00:00.000Z", approvers: ["@alice:localhost", "@bob:localhost", "@carol:localhost"], excluded: ["@alice:localhost"], quorum: 2 };
    const now = Date.parse("2026-01-01T00:30:00.000Z");
    assert.deepEqual(judgeVote(request, [], { approver: "@mallory:localhost", decision: "approve" }, now), { accepted: false, reason: "not-an-approver" });
    assert.deepEqual(judgeVote(request, [], { approver: "@alice:localhost", decision: "approve" }, now), { accepted: false, reason: "self-approval" });
    assert.deepEqual(judgeVote(request, [], { approver: "@alice:localhost", decision: "deny" }, now), { accepted: true, result: "denied", approvals: 0 });
    assert.deepEqual(judgeVote(request, [], { approver: "@bob:localhost", decision: "approve" }, now), { accepted: true, result: "recorded", approvals: 1 });
    const bob = [{ approver: "@bob:localhost", decision: "approve" as const }];
    assert.deepEqual(judgeVote(request, bob, { approver: "@bob:localhost", decision: "approve" }, now), { accepted: false, reason: "duplicate" });
    assert.deepEqual(judgeVote(request, bob, { approver: "@carol:localhost", decision: "approve" }, now), { accepted: true, result: "approved", approvals: 2 });
    assert.deepEqual(judgeVote({ ...request, status: "approved" }, bob, { approver: "@carol:localhost", decision: "deny" }, now), { accepted: false, reason: "not-pending" });
    assert.deepEqual(judgeVote(request, [], { approver: "@carol:localhost", decision: "approve" }, Date.parse(request.expiresAt)), { accepted: false, reason: "expired" });
    assert.deepEqual(judgeVote(request, [], { approver: "cli:root", decision: "approve", override: true }, now), { accepted: true, result: "approved", approvals: 1 }, "the local operator decides alone");
  });
});
