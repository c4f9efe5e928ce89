/** Checks across a Gosuto's parts (src/api/references.ts): gateways, approvals, budget; each error at its line. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatManifestError } from "../../../src/api/errors.ts";
import { parseManifestFile } from "../../../src/api/parse.ts";
import { checkAcrossObjects, warningsAbout } from "../../../src/api/references.ts";

/** A Gosuto whose spec is `spec` (indented two spaces); its errors and warnings as `ruriko validate` prints them. */
function check(spec: string): { errors: string[]; warnings: string[] } {
  const text = `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata:\n  name: g\nspec:\n${spec}`;
  const parsed = parseManifestFile("gosutos/g.yaml", new TextEncoder().encode(text));
  assert.deepEqual(parsed.errors.map(formatManifestError), [], "the document itself is schema-valid");
  return { errors: checkAcrossObjects(parsed.objects).map(formatManifestError), warnings: warningsAbout(parsed.objects).map(formatManifestError) };
}

const TARGETS = `  messaging:
    allowedTargets:
      - roomId: "!reports:example.org"
      - alias: "#digest:example.org"
`;

describe("cron gateways", () => {
  test("a complete gateway whose target is an allowed target, by room id or by alias, is valid", () => {
    const r = check(`  gateways:
    - { name: morning, type: cron, schedule: "0 9 * * 1-5", timeZone: Europe/Paris, target: "!reports:example.org", prompt: Report. }
    - { name: often, type: cron, schedule: "*/30 * * * * *", target: "#digest:example.org", prompt: Report. }
    - { name: hourly, type: cron, schedule: "@hourly", target: "#digest:example.org", prompt: Report. }
${TARGETS}`);
    assert.deepEqual(r, { errors: [], warnings: [] });
  });

  test("schedule, prompt and target are required, each named at the gateway's line", () => {
    const r = check(`  gateways:
    - name: bare
      type: cron
${TARGETS}`);
    assert.deepEqual(r.errors, [
      "gosutos/g.yaml:7:7: Gosuto/g: spec.gateways[0].schedule: is required for a cron gateway (when it fires)",
      "gosutos/g.yaml:7:7: Gosuto/g: spec.gateways[0].prompt: is required for a cron gateway (what the agent is asked)",
      "gosutos/g.yaml:7:7: Gosuto/g: spec.gateways[0].target: is required for a cron gateway (the room the result is posted to)",
    ]);
  });

  test("a schedule that does not parse, or never runs, and a zone that does not exist", () => {
    const r = check(`  gateways:
    - name: bad-minute
      type: cron
      schedule: "61 * * * *"
      target: "!reports:example.org"
      prompt: Report.
    - name: february
      type: cron
      schedule: "0 0 30 2 *"
      target: "!reports:example.org"
      prompt: Report.
    - name: nowhere
      type: cron
      schedule: "@daily"
      timeZone: Mars/Olympus_Mons
      target: "!reports:example.org"
      prompt: Report.
${TARGETS}`);
    assert.deepEqual(r.errors, [
      'gosutos/g.yaml:9:7: Gosuto/g: spec.gateways[0].schedule: "61 * * * *" is not a schedule: Invalid value for minute: 61',
      'gosutos/g.yaml:14:7: Gosuto/g: spec.gateways[1].schedule: "0 0 30 2 *" never runs: no date matches it',
      'gosutos/g.yaml:20:7: Gosuto/g: spec.gateways[2].timeZone: "Mars/Olympus_Mons" is not a time zone this runtime knows; name an IANA time zone such as Europe/Paris or UTC',
    ]);
  });

  test("the target must be one of messaging.allowedTargets, written the same way", () => {
    const r = check(`  gateways:
    - { name: elsewhere, type: cron, schedule: "@daily", target: "#reports:example.org", prompt: Report. }
${TARGETS}`);
    assert.deepEqual(r.errors, [
      'gosutos/g.yaml:7:58: Gosuto/g: spec.gateways[0].target: room "#reports:example.org" is not in spec.messaging.allowedTargets; list it there as roomId or alias, written as here',
    ]);
    const none = check(`  gateways:
    - { name: nowhere, type: cron, schedule: "@daily", target: "!reports:example.org", prompt: Report. }
`);
    assert.equal(none.errors.length, 1);
    assert.match(none.errors[0]!, /spec\.gateways\[0\]\.target: room "!reports:example.org" is not in spec\.messaging\.allowedTargets/);
  });

  test("two gateways with one name", () => {
    const r = check(`  gateways:
    - { name: twice, type: cron, schedule: "@daily", target: "!reports:example.org", prompt: A. }
    - { name: twice, type: cron, schedule: "@hourly", target: "!reports:example.org", prompt: B. }
${TARGETS}`);
    assert.deepEqual(r.errors, ['gosutos/g.yaml:8:9: Gosuto/g: spec.gateways[1].name: gateway "twice" is already defined at spec.gateways[0]']);
  });

  test("a webhook gateway is accepted, with a warning that it is ignored", () => {
    const r = check(`  gateways:
    - name: hook
      type: webhook
`);
    assert.deepEqual(r, { errors: [], warnings: ["gosutos/g.yaml:8:7: Gosuto/g: spec.gateways[0].type: webhook gateways are not implemented yet; this one is ignored"] });
  });
});

describe("approvals for requireApproval rules", () => {
  const RULES = `  mcps:
    - { name: web, command: gitai-http-tool }
  capabilities:
    - { name: ask-first, mcp: web, tool: http_get, allow: true, requireApproval: true }
    - { name: deny-all, allow: false }
`;

  test("without an approvals section: enabled, room and approvers are each asked for", () => {
    const because = "capability ask-first (spec.capabilities[0]) has requireApproval";
    assert.deepEqual(check(RULES).errors, [
      `gosutos/g.yaml:5:1: Gosuto/g: spec.approvals.enabled: must be true: ${because}`,
      `gosutos/g.yaml:5:1: Gosuto/g: spec.approvals.room: is required, the room where requests are posted: ${because}`,
      `gosutos/g.yaml:5:1: Gosuto/g: spec.approvals.approvers: must list at least one approver: ${because}`,
    ]);
  });

  test("a disabled section with no approvers points at the fields written", () => {
    const r = check(`${RULES}  approvals:
    enabled: false
    room: "!approvals:example.org"
    approvers: []
`);
    assert.deepEqual(r.errors, [
      "gosutos/g.yaml:12:5: Gosuto/g: spec.approvals.enabled: must be true: capability ask-first (spec.capabilities[0]) has requireApproval",
      "gosutos/g.yaml:14:5: Gosuto/g: spec.approvals.approvers: must list at least one approver: capability ask-first (spec.capabilities[0]) has requireApproval",
    ]);
  });

  test("enabled, with a room and an approver, is valid; no requireApproval rule needs no approvals", () => {
    assert.deepEqual(check(`${RULES}  approvals: { enabled: true, room: "#approvals:example.org", approvers: ["@alice:example.org"] }\n`).errors, []);
    assert.deepEqual(check(`  capabilities:\n    - { name: deny-all, allow: false }\n`).errors, []);
  });
});

describe("a monthly budget", () => {
  test("needs persona.pricing", () => {
    assert.deepEqual(check(`  limits:\n    maxMonthlyCostUSD: 10\n`).errors, [
      "gosutos/g.yaml:7:5: Gosuto/g: spec.limits.maxMonthlyCostUSD: needs spec.persona.pricing (inputPerMTok and outputPerMTok, US dollars per million tokens) to count what the model costs",
    ]);
  });

  test("with pricing, or with no budget (0), is valid", () => {
    assert.deepEqual(check(`  limits:\n    maxMonthlyCostUSD: 10\n  persona:\n    pricing: { inputPerMTok: 0.15, outputPerMTok: 0.6 }\n`).errors, []);
    assert.deepEqual(check(`  limits:\n    maxMonthlyCostUSD: 0\n`).errors, []);
  });
});
