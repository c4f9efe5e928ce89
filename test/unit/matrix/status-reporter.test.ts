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
  let clock = Date.parse("2026-11-25T00:00:00Z");
  const now = () => clock;
  const reporterFor = () => new StatusReporter({ room: "!status:localhost", outbox: state.outbox, repeatAfterMs: 1000, now });
  return { state, reporter: reporterFor(), reporterFor, tick: (ms: number) => (clock += ms) };
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

  test("a line is in the outbox the moment it is reported, saying itself; nothing waits in memory", () => {
    const { state, reporter } = setup();
    reporter.report({ text: "b <script> is Ready", traceId: "t2" });
    const [m] = state.outbox.list();
    assert.equal(m!.body, "b <script> is Ready [trace t2]");
    assert.equal(m!.html, "b &lt;script&gt; is Ready <sub>trace t2</sub>");
    assert.deepEqual(m!.line, { text: "b <script> is Ready" });
    assert.equal(m!.fixed, false, "open to the lines after it until the deliverer sends it");
    state.close();
  });

  test("a line reported in a transaction that rolls back is not said: it lands with the change or not at all", () => {
    const { state, reporter } = setup();
    assert.throws(() =>
      state.transaction(() => {
        state.audit.append({ traceId: "t", actor: "controller", action: "agent.recreate", target: "Agent/a", payload: {}, result: "ok" });
        reporter.report({ text: "recreated a", traceId: "t" });
        throw new Error("crash before commit");
      }),
    );
    assert.equal(state.outbox.list().length, 0);
    assert.equal(state.audit.tail(10).length, 0);
    state.close();
  });

  test("a repeated failure is said once per window, across restarts too; a recovery lets it be said again", () => {
    const { state, reporter, reporterFor, tick } = setup();
    const stalled = { key: "a|Stalled|X", text: "a is Stalled", traceId: "t" };
    const said = () => state.outbox.list().map((m) => m.line!.text);
    reporter.report(stalled);
    reporter.report(stalled);
    assert.deepEqual(said(), ["a is Stalled"]);
    assert.equal(reporterFor().report(stalled), undefined, "a restarted reporter remembers what the outbox holds");
    reporter.report({ clears: "b", text: "b is Ready", traceId: "t" });
    reporter.report(stalled);
    assert.deepEqual(said(), ["a is Stalled", "b is Ready"], "another agent's recovery clears nothing of a's");
    reporter.report({ clears: "a", text: "a is Ready", traceId: "t" });
    reporter.report(stalled);
    assert.deepEqual(said(), ["a is Stalled", "b is Ready", "a is Ready", "a is Stalled"]);
    tick(500);
    reporter.report(stalled);
    assert.equal(said().length, 4, "suppressed inside the window");
    tick(600);
    reporter.report(stalled);
    assert.equal(said().length, 5, "said again after the window");
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
