/** `ruriko plan`, `status` and `approvals` as an operator runs them, against real Docker and a real state database. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { isAwaitingApproval, isReady, startTestController, TEST_AGENT_IMAGE, type TestController } from "../helpers/controller-harness.ts";
import { writeTree } from "../helpers/manifest-tree.ts";

const CLI = join(import.meta.dirname, "../../src/cli/ruriko.ts");
const ruriko = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60_000 });

const gosuto = (name: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: {}\n`;
const agent = (name: string, image = TEST_AGENT_IMAGE) => `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec: {image: "${image}", gosuto: ${name}}\n`;
const policy = `apiVersion: ruriko.dev/v1alpha1
kind: ApprovalPolicy
metadata: {name: default}
spec:
  room: "!approvals:localhost"
  approvers: ["@alice:localhost"]
  rules: [{match: {kind: Agent, operation: update, fields: [image]}, require: approval}]
`;

describe("operator commands", () => {
  let h: TestController;
  let dir: string;
  before(async () => {
    h = await startTestController();
    dir = writeTree({ "p.yaml": policy, "one.yaml": `${gosuto("one")}---\n${agent("one")}`, "two.yaml": `${gosuto("two")}---\n${agent("two")}` });
    await h.offer(dir);
    await h.waitForStatus("one", isReady, "one Ready");
    await h.waitForStatus("two", isReady, "two Ready");
  });
  after(async () => h?.stop());

  test("plan on a converged tree says there is nothing to do", () => {
    const r = ruriko("plan", "--manifests", dir, "--state-dir", h.stateDir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /nothing to do: everything is converged/);
  });

  test("plan explains each action and which need approval, in text, markdown and JSON", () => {
    writeFileSync(join(dir, "one.yaml"), `${gosuto("one")}---\n${agent("one", "ruriko/gitai:next")}`);
    rmSync(join(dir, "two.yaml"));
    writeFileSync(join(dir, "three.yaml"), `${gosuto("three")}---\n${agent("three")}`);

    const text = ruriko("plan", "--manifests", dir, "--state-dir", h.stateDir);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /recreate one: image changed ruriko\/gitai:dev → ruriko\/gitai:next\n\s+needs approval: yes \(1 of @alice:localhost; policy default requires approval for Agent update fields image\)/);
    assert.match(text.stdout, /create\s+three: new agent: create\n/);
    assert.match(text.stdout, /remove\s+two: not in desired state: remove\n\s+needs approval: yes \(1 of @alice:localhost; deleting an agent always needs approval\)/);
    assert.match(text.stdout, /gosuto\s+three: Gosuto\/three: first applied\n/, "the new agent's Gosuto is part of the plan");
    assert.match(text.stdout, /4 change\(s\), 2 needing approval\./);

    const md = ruriko("plan", "--manifests", dir, "--state-dir", h.stateDir, "--output", "markdown");
    assert.match(md.stdout, /^\| `three` \| create \| new agent: create \| no \|$/m);
    assert.match(md.stdout, /^\| `two` \| remove \| not in desired state: remove \| ⚠️ yes/m);

    const json = JSON.parse(ruriko("plan", "--manifests", dir, "--state-dir", h.stateDir, "--output", "json").stdout) as { items: Array<{ agent: string; action: string; approval: { required: boolean } }> };
    assert.deepEqual(
      json.items.map((i) => [i.agent, i.action, i.approval.required]),
      [["one", "recreate", true], ["three", "create", false], ["three", "gosuto", false], ["two", "remove", true]],
    );
  });

  test("plan refuses an invalid tree with its errors", () => {
    const bad = writeTree({ "a.yaml": agent("a") });
    const r = ruriko("plan", "--manifests", bad, "--state-dir", h.stateDir);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /a\.yaml:\d+:\d+: Agent\/a: spec\.gosuto: refers to Gosuto "a", which is not defined/);
  });

  test("status and approvals after serve parks the risky changes", async () => {
    await h.offer(dir);
    await h.waitForStatus("three", isReady, "three created without approval");
    await h.waitForStatus("one", isAwaitingApproval, "one parked");
    await h.waitForStatus("two", isAwaitingApproval, "two parked");

    const status = ruriko("status", "--state-dir", h.stateDir);
    assert.equal(status.status, 0, status.stderr);
    assert.match(status.stdout, /^one\s+AwaitingApproval\s+running/m);
    assert.match(status.stdout, /^three\s+Ready\s+running/m);
    assert.match(status.stdout, /2 pending approval\(s\):/);
    const json = JSON.parse(ruriko("status", "--state-dir", h.stateDir, "--output", "json").stdout) as { agents: Array<{ name: string; phase: string }> };
    assert.deepEqual(json.agents.map((a) => [a.name, a.phase]), [["one", "AwaitingApproval"], ["three", "Ready"], ["two", "AwaitingApproval"]]);

    const list = ruriko("approvals", "list", "--state-dir", h.stateDir);
    const ids = [...list.stdout.matchAll(/^([0-9a-f]{12})\s+pending/gm)].map((m) => m[1]!);
    assert.equal(ids.length, 2, list.stdout);
    const removal = h.state.approvals.list({ agent: "two", status: "pending" })[0]!;
    const show = ruriko("approvals", "show", removal.id.slice(0, 6), "--state-dir", h.stateDir);
    assert.match(show.stdout, /^status\s+pending/m);
    assert.match(show.stdout, /^operation delete on Agent\/two/m);
    assert.match(show.stdout, /^approvers @alice:localhost; quorum 1/m);

    const deny = ruriko("approvals", "deny", removal.id, "--state-dir", h.stateDir, "--reason", "still needed");
    assert.equal(deny.status, 0, deny.stderr);
    assert.match(deny.stdout, /denied by cli:/);
    const again = ruriko("approvals", "approve", removal.id, "--state-dir", h.stateDir);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already denied/);
    await h.waitForStatus("two", (s) => s?.conditions.find((c) => c.type === "Ready")?.reason === "ApprovalDenied", "two shows the denial");
    assert.equal((await h.containersOf("two"))[0]!.State, "running");
    const audit = h.state.audit.byTrace(removal.traceId);
    const denial = audit.find((e) => e.action === "approval.denied");
    assert.match(denial!.actor, /^cli:/);
    assert.equal(denial!.payload.reason, "still needed");
  });
});
