/** ApprovalPolicy rules the gate could never enforce are validation errors that name the file, line and field. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatManifestError } from "../../../src/api/errors.ts";
import { loadSnapshotFromDirectory } from "../../../src/api/load.ts";
import { writeTree } from "../../helpers/manifest-tree.ts";

const policyWith = (rules: string) => `apiVersion: ruriko.dev/v1alpha1
kind: ApprovalPolicy
metadata: {name: default}
spec:
  room: "!a:localhost"
  approvers: ["@alice:localhost"]
  gitIdentities: {"@alice:localhost": [alice@example.org]}
  rules:
${rules}`;

async function errorsOf(rules: string): Promise<string[]> {
  const snapshot = await loadSnapshotFromDirectory(writeTree({ "policies/default.yaml": policyWith(rules) }));
  return snapshot.errors.map(formatManifestError);
}

describe("ApprovalPolicy rules", () => {
  test("every rule the gate enforces is accepted: each kind's operations and fields", async () => {
    const errors = await errorsOf(`    - {match: {kind: Agent, operation: update, fields: [image, env, resources, matrix, state]}, require: approval}
    - {match: {kind: Agent, operation: stop}, require: approval}
    - {match: {kind: Gosuto, fields: [capabilities, trust, persona]}, require: approval}
    - {match: {kind: SecretBinding, operation: revoke}, require: approval}
    - {match: {kind: Secret, operation: rotate, names: [openai-key]}, require: approval}
    - {match: {kind: ApprovalPolicy, fields: [approvers, rules]}, require: approval}
    - {match: {operation: grant}, require: none}
`);
    assert.deepEqual(errors, []);
  });

  test("an operation that never happens to the kind, a field no change carries, a rule that could never hold: each refused where it stands", async () => {
    const errors = await errorsOf(`    - {match: {kind: Gosuto, operation: delete}, require: approval}
    - {match: {kind: SecretBinding, operation: grant, fields: [env]}, require: approval}
    - {match: {kind: Agent, fields: [drift]}, require: approval}
    - {match: {kind: Agent, operation: delete}, require: none}
    - {match: {kind: Secret, operation: delete, fields: [value]}, require: approval}
`);
    assert.deepEqual(errors, [
      'policies/default.yaml:9:30: ApprovalPolicy/default: spec.rules[0].match.operation: a Gosuto change is never "delete" (it is one of: create, update)',
      "policies/default.yaml:10:55: ApprovalPolicy/default: spec.rules[1].match.fields: SecretBinding changes carry no fields",
      'policies/default.yaml:11:38: ApprovalPolicy/default: spec.rules[2].match.fields[0]: no Agent change carries the field "drift" (one of: image, env, resources, matrix, state)',
      "policies/default.yaml:12:49: ApprovalPolicy/default: spec.rules[3].require: deleting an agent always needs approval; this rule could never be honoured",
      "policies/default.yaml:13:49: ApprovalPolicy/default: spec.rules[4].match.fields: Secret changes carry no fields",
    ]);
  });

  test("git identities belong to Matrix user ids", async () => {
    const snapshot = await loadSnapshotFromDirectory(writeTree({ "p.yaml": policyWith("    []\n").replace('{"@alice:localhost": [alice@example.org]}', "{alice: [alice@example.org]}") }));
    assert.match(snapshot.errors.map(formatManifestError).join("\n"), /p\.yaml:\d+:\d+: ApprovalPolicy\/default: spec\.gitIdentities/);
  });
});
