import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { describeChange, describeTransition } from "../../../src/matrix/status-messages.ts";
import { StatusReporter } from "../../../src/matrix/status-reporter.ts";
import type { Condition } from "../../../src/store/agent-status-store.ts";
import { openState } from "../../../src/store/state.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const condition = (type: Condition["type"], status: Condition["status"], reason: string, message = ""): Condition => ({ type, status, reason, message, lastTransitionTime: "2026-11-25T00:00:00Z" });

function setup() {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-reporter-"));
  dirs.push(dir);
  const state = openState(dir);
  let clock = 0;
  const reporter = new StatusReporter({ room: "!status:localhost", outbox: state.outbox, coalesceMs: 60_000, repeatAfterMs: 1000, now: () => clock });
  return { state, reporter, tick: (ms: number) => (clock += ms) };
}

describe("status reporter", () => {
  test("progress is not news; Ready, Stalled and failures are", () => {
    assert.equal(describeTransition({ agent: "a", traceId: "t", condition: condition("Ready", "False", "Progressing") }), undefined);
    assert.equal(describeTransition({ agent: "a", traceId: "t", condition: condition("Ready", "False", "AwaitingApproval") }), undefined);
    assert.equal(describeTransition({ agent: "a", traceId: "t", condition: condition("Ready", "True", "Converged") })?.text, "a is Ready");
    assert.equal(
      describeTransition({ agent: "a", traceId: "t", condition: condition("Ready", "True", "Converged"), previous: condition("Ready", "False", "GosutoRefused") })?.text,
      "a is Ready again (was GosutoRefused)",
    );
    assert.match(describeTransition({ agent: "a", traceId: "t", condition: condition("Stalled", "True", "RepeatedFailure", "5 consecutive failures") })!.text, /a is Stalled \(RepeatedFailure\): 5 consecutive/);
  });

  test("a burst becomes one message, with every line, HTML-escaped", () => {
    const { state, reporter } = setup();
    reporter.report({ text: "a is Ready", traceId: "t1" });
    reporter.report({ text: "b <script> is Ready", traceId: "t2" });
    assert.equal(state.outbox.list().length, 0, "nothing before the window closes");
    reporter.flush();
    const [m] = state.outbox.list();
    assert.equal(m!.body, "2 changes:\n- a is Ready\n- b <script> is Ready\n[trace t1]");
    assert.ok(m!.html.includes("b &lt;script&gt; is Ready") && !m!.html.includes("<script>"));
    state.close();
  });

  test("a repeated failure is said once per window; a recovery lets it be said again", () => {
    const { state, reporter, tick } = setup();
    const stalled = { key: "a|Stalled|X", text: "a is Stalled", traceId: "t" };
    reporter.report(stalled);
    reporter.report(stalled);
    reporter.flush();
    assert.equal(state.outbox.list().length, 1);
    assert.equal(state.outbox.list()[0]!.body, "a is Stalled [trace t]");
    reporter.report({ clears: "a", text: "a is Ready", traceId: "t" });
    reporter.report(stalled);
    reporter.flush();
    assert.match(state.outbox.list()[1]!.body, /a is Ready\n- a is Stalled/);
    tick(500);
    reporter.report(stalled);
    reporter.flush();
    assert.equal(state.outbox.list().length, 2, "suppressed inside the window");
    tick(600);
    reporter.report(stalled);
    reporter.flush();
    assert.equal(state.outbox.list().length, 3, "said again after the window");
    state.close();
  });

  test("what Ruriko did, in words: actions with their reason, drift told as healed, secrets by name and version", () => {
    const c = { agent: "a", traceId: "t" };
    assert.equal(describeChange({ ...c, what: "container", action: "create", reason: "new agent: create", drift: false }).text, "created a (new agent)");
    assert.equal(describeChange({ ...c, what: "container", action: "recreate", reason: "image changed x:1 → x:2", drift: false, approval: "abc123" }).text, "recreated a (image changed x:1 → x:2, approval abc123)");
    const healed = describeChange({ ...c, what: "container", action: "start", reason: "container exited with code 137: start", drift: true });
    assert.equal(healed.text, "a healed after drift: started (container exited with code 137)");
    assert.equal(healed.key, "a|healed", "a crash loop is told once per window, like any repeated fact");
    assert.equal(describeChange({ ...c, what: "gosuto", gosuto: "g", digest: `sha256:${"ab".repeat(32)}` }).text, "a: Gosuto g applied (abababababab)");
    assert.equal(describeChange({ ...c, what: "secrets", delivered: [{ name: "k", version: 2 }], revoked: ["old"] }).text, "a: secrets updated, holds k v2; revoked old");
  });
});
