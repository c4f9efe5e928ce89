import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ApprovalPolicyManifest } from "../../../src/api/generated/types.ts";
import { requirementFor, type GateSubject } from "../../../src/approvals/policy.ts";

const policy = (name: string, spec: Partial<ApprovalPolicyManifest["spec"]>): ApprovalPolicyManifest =>
  ({
    apiVersion: "ruriko.dev/v1alpha1",
    kind: "ApprovalPolicy",
    metadata: { name },
    spec: { room: "!approvals:localhost", approvers: ["@alice:localhost", "@bob:localhost"], quorum: 2, ttl: "2h", remindBefore: "30m", rules: [], ...spec },
  }) as ApprovalPolicyManifest;

const subject = (over: Partial<GateSubject>): GateSubject => ({ kind: "Agent", name: "newsbot", operation: "update", fields: [], drift: false, driftMode: "heal", ...over });

describe("approval policy evaluation", () => {
  test("deleting an agent always needs approval, even with no policy or a rule saying none", () => {
    const none = requirementFor(subject({ operation: "delete" }), []);
    assert.equal(none.required, true);
    assert.deepEqual(none.required && [none.policy, none.approvers, none.quorum], [null, [], 1]);
    const exempt = requirementFor(subject({ operation: "delete" }), [policy("default", { rules: [{ match: { kind: "Agent", operation: "delete" }, require: "none" }] })]);
    assert.equal(exempt.required, true);
    assert.equal(exempt.required && exempt.policy, "default");
  });

  test("granting a secret needs approval by default; only an explicit rule exempts it", () => {
    const grant = subject({ kind: "SecretBinding", name: "newsbot-openai", operation: "grant" });
    const byDefault = requirementFor(grant, []);
    assert.equal(byDefault.required, true);
    assert.match(byDefault.why, /granting a secret/);
    const unrelated = requirementFor(grant, [policy("default", { rules: [{ match: { kind: "Agent" }, require: "none" }] })]);
    assert.equal(unrelated.required && unrelated.policy, "default", "a rule about other kinds does not exempt a grant");
    assert.equal(requirementFor(grant, [policy("trusted", { rules: [{ match: { kind: "SecretBinding", operation: "grant" }, require: "none" }] })]).required, false);
    assert.equal(requirementFor(subject({ kind: "SecretBinding", name: "newsbot-openai", operation: "revoke" }), []).required, false, "taking a secret away is not risky");
  });

  test("the first matching rule decides, with the policy's approvers, quorum and times", () => {
    const p = policy("default", {
      rules: [
        { match: { kind: "Agent", operation: "update", fields: ["image"] }, require: "approval" },
        { match: { kind: "Agent" }, require: "none" },
      ],
    });
    const image = requirementFor(subject({ fields: ["image"] }), [p]);
    assert.deepEqual(image.required && [image.policy, image.room, image.quorum, image.ttlMs, image.remindBeforeMs], ["default", "!approvals:localhost", 2, 7_200_000, 1_800_000]);
    assert.equal(requirementFor(subject({ fields: ["env"] }), [p]).required, false);
  });

  test("names narrow a rule", () => {
    const p = policy("prod", { rules: [{ match: { kind: "Agent", operation: "create", names: ["payments"] }, require: "approval" }] });
    assert.equal(requirementFor(subject({ operation: "create", name: "payments" }), [p]).required, true);
    assert.equal(requirementFor(subject({ operation: "create", name: "newsbot" }), [p]).required, false);
  });

  test("drift repair follows the agent's drift mode, not the rules", () => {
    const p = policy("default", { rules: [{ match: { kind: "Agent" }, require: "approval" }] });
    assert.equal(requirementFor(subject({ operation: "start", drift: true, driftMode: "heal" }), [p]).required, false);
    assert.equal(requirementFor(subject({ operation: "start", drift: true, driftMode: "approve" }), [p]).required, true);
  });
});
