/**
 * The approval gate tried as a hostile contributor would, on real Docker with real agents (Gitai over ACP):
 * each way it used to be walked around, now closed. Decisions are taken with `ruriko approvals approve` (its
 * own database connection, as from another process) and reach the controller through the state change feed.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { simpleGit } from "simple-git";
import { AcpClient } from "../../src/acp/client.ts";
import { approvalsDecide } from "../../src/cli/approvals.ts";
import { planFromState } from "../../src/controller/plan-from-state.ts";
import { gitChangeAuthors } from "../../src/sources/change-authors.ts";
import { GitSource } from "../../src/sources/git-source.ts";
import { ManualClock } from "../../src/time/clock.ts";
import { isAwaitingApproval, isReady, startTestController, TEST_AGENT_IMAGE, waitFor, type TestController } from "../helpers/controller-harness.ts";
import { writeTree } from "../helpers/manifest-tree.ts";

const IMAGE_C = "ruriko/gitai:gate-c";
const MISSING_B = "ruriko/gitai:gate-missing-b";

const policy = (name: string, approvers: string[], rules: string, extra = "") => `apiVersion: ruriko.dev/v1alpha1
kind: ApprovalPolicy
metadata: {name: ${name}}
spec:
  room: "!approvals:localhost"
  approvers: ${JSON.stringify(approvers)}
  quorum: 1
  ttl: 1h
${extra}  rules:
${rules}`;
const DEFAULT = policy(
  "default",
  ["@alice:localhost", "@bob:localhost"],
  `    - {match: {kind: Agent, operation: update, fields: [image]}, require: approval}
    - {match: {kind: Gosuto, fields: [capabilities, trust]}, require: approval}
`,
);
const gosuto = (name: string, spec = "{}") => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
// Never: the images here are built on this host, and a missing one must stay missing (no pull from Docker Hub).
const agent = (name: string, image = TEST_AGENT_IMAGE) => `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec: {image: "${image}", imagePullPolicy: Never, gosuto: ${name}, resources: {memory: 128Mi}}\n`;
const binding = (agentName: string, secret: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: SecretBinding\nmetadata: {name: ${agentName}-${secret}}\nspec: {agent: ${agentName}, secret: ${secret}, env: API_KEY}\n`;
const RISKY = `{capabilities: [{name: shell, mcp: "*", tool: shell_exec, allow: true}], trust: {allowedSenders: ["*"]}}`;

const acp = new AcpClient({ retries: 1 });
async function inside(h: TestController, name: string) {
  const [c] = await h.containersOf(name);
  const port = c?.Ports.find((p) => p.IP === "127.0.0.1")?.PublicPort;
  assert.ok(port, `${name} publishes its control port`);
  return acp.status({ agent: name, baseUrl: `http://127.0.0.1:${port}`, token: h.vault.tokens.get(name)! }, "test");
}
const pending = (h: TestController, object: string) => h.state.approvals.list({ status: "pending" }).find((r) => r.objectKey === object);
const approve = (h: TestController, id: string) => assert.equal(approvalsDecide(h.stateDir, id, "approve", {}), 0);
const gosutoDigest = (h: TestController, name: string) => h.controller.snapshot!.objects.get(`Gosuto/${name}`)!.digest;

describe("the approval gate cannot be walked around (real Docker, real Gitai)", () => {
  let h: TestController;
  let dir: string;
  const write = (file: string, text: string) => writeFileSync(join(dir, file), text);

  before(async () => {
    h = await startTestController();
    await h.docker.getImage(TEST_AGENT_IMAGE).tag({ repo: "ruriko/gitai", tag: "gate-c" });
    dir = writeTree({ "policy.yaml": DEFAULT, "alpha.yaml": `${gosuto("alpha")}---\n${agent("alpha")}`, "beta.yaml": `${gosuto("beta")}---\n${agent("beta")}` });
    h.vault.secrets.set("api-key", Buffer.from("sk-gate-test-0001"));
    await h.offer(dir);
    await h.waitForStatus("alpha", isReady, "alpha Ready");
    await h.waitForStatus("beta", isReady, "beta Ready");
  });
  after(async () => {
    await h?.stop();
    await h?.docker.getImage(IMAGE_C).remove().catch(() => {});
  });

  test("1. a Gosuto that enables shell_exec and trusts everyone waits for approval; plan shows it and whom it needs", async () => {
    const before = gosutoDigest(h, "alpha");
    write("alpha.yaml", `${gosuto("alpha", RISKY)}---\n${agent("alpha")}`);
    await h.offer(dir);
    await h.waitForStatus("alpha", isAwaitingApproval, "the Gosuto push parked");
    const request = pending(h, "Gosuto/alpha")!;
    assert.equal(request.agent, "alpha");
    assert.match(request.summary, /^Gosuto\/alpha for agent alpha: capabilities, trust changed$/);
    assert.deepEqual(request.approvers, ["@alice:localhost", "@bob:localhost"]);
    assert.equal((await inside(h, "alpha")).gosutoDigest, before, "the agent still holds the approved Gosuto");

    const plan = planFromState(h.controller.snapshot!, await h.runtime.list(), h.state);
    const item = plan.items.find((i) => i.action === "gosuto" && i.agent === "alpha")!;
    assert.deepEqual([item.verdict, item.object, item.fields, item.request?.id], ["park", "Gosuto/alpha", ["capabilities", "trust"], request.id]);
    assert.deepEqual(item.approval.required && item.approval.approvers, ["@alice:localhost", "@bob:localhost"]);

    approve(h, request.id);
    const after = gosutoDigest(h, "alpha");
    await waitFor(async () => (await inside(h, "alpha")).gosutoDigest === after, "the approved Gosuto pushed");
    await waitFor(() => h.state.approvals.get(request.id)!.status === "applied", "the request applied");
  });

  test("2. a revision cannot bring its own policy: its grant and its removal are asked of the policies in force", async () => {
    // `a-yolo` sorts first, names the author alone and exempts every grant: were it in force, it would decide.
    write("yolo.yaml", policy("a-yolo", ["@mallory:localhost"], `    - {match: {kind: SecretBinding, operation: grant}, require: none}\n    - {match: {kind: Agent}, require: none}\n`));
    write("grant.yaml", binding("beta", "api-key"));
    await h.offer(dir);
    await waitFor(() => !!pending(h, "SecretBinding/beta-api-key") && !!pending(h, "ApprovalPolicy/a-yolo"), "the grant and the policy both parked");
    assert.deepEqual(pending(h, "SecretBinding/beta-api-key")!.approvers, ["@alice:localhost", "@bob:localhost"]);
    assert.deepEqual(pending(h, "ApprovalPolicy/a-yolo")!.approvers, ["@alice:localhost", "@bob:localhost"], "a new policy is asked of the policies in force");
    assert.equal(h.state.policies.get("a-yolo"), undefined, "not in force while its change waits");
    await waitFor(async () => (await inside(h, "beta")).secrets.length === 0 && isAwaitingApproval(h.state.status.get("beta")), "beta waits, without the secret");

    rmSync(join(dir, "beta.yaml"));
    rmSync(join(dir, "grant.yaml"));
    await h.offer(dir);
    await waitFor(() => !!h.state.approvals.list({ status: "pending" }).find((r) => r.agent === "beta" && r.operation === "delete"), "the removal parked");
    const removal = h.state.approvals.list({ status: "pending" }).find((r) => r.agent === "beta" && r.operation === "delete")!;
    assert.deepEqual(removal.approvers, ["@alice:localhost", "@bob:localhost"], "not the author's new policy");
    assert.equal((await h.containersOf("beta"))[0]?.State, "running");
    assert.equal(h.state.policies.get("a-yolo"), undefined, "still not in force, though the rest of its revision was applied");
    rmSync(join(dir, "yolo.yaml"));
    await h.offer(dir);
    await waitFor(() => !pending(h, "ApprovalPolicy/a-yolo"), "the policy's request retired when it left the manifests");
  });

  test("3+8. an approved change that cannot be applied stays Stalled without a retry loop, is retired when the change moves on, and never used again", async () => {
    write("alpha.yaml", `${gosuto("alpha", RISKY)}---\n${agent("alpha", MISSING_B)}`);
    await h.offer(dir, "rev-b");
    await waitFor(() => !!pending(h, "Agent/alpha"), "the image change parked");
    const toB = pending(h, "Agent/alpha")!;
    const since = new Date().toISOString();
    approve(h, toB.id);
    const stalled = await h.waitForStatus("alpha", (s) => s?.conditions.some((c) => c.type === "Stalled" && c.status === "True" && c.reason === "ImageMissing") ?? false, "Stalled on the missing image");
    assert.match(stalled!.lastError!, /gate-missing-b is not present on this host/);
    assert.equal((await h.containersOf("alpha"))[0]?.Image, TEST_AGENT_IMAGE, "the running agent was left as it was");
    // No loop: the failure waits for the next revision or resync (the old gate re-ran an approved change every 2 s).
    // Every trigger there is is taken in (decisions read from the state feed now) and run to the end (the queue
    // idle); then no retry may be armed: a reconcile that fails is retried with backoff, a terminal one is not.
    h.controller.flushStateChanges();
    await h.controller.queue.idle();
    assert.equal(h.controller.queue.failuresOf("alpha"), 0, "no backoff retry armed");
    assert.equal(h.state.status.get("alpha")!.conditions.find((c) => c.type === "Reconciling")?.message, "retried on the next revision or resync");
    const attempts = h.state.audit.forTarget("Agent/alpha", 100).filter((e) => e.action === "agent.recreate" && e.result === "error" && e.ts > since);
    assert.equal(attempts.length, 1, "one attempt, not a retry every few seconds");
    assert.equal(h.state.approvals.get(toB.id)!.status, "approved");

    write("alpha.yaml", `${gosuto("alpha", RISKY)}---\n${agent("alpha", IMAGE_C)}`);
    await h.offer(dir, "rev-c");
    await waitFor(() => h.state.approvals.get(toB.id)!.status === "superseded", "the stale approval retired");
    await waitFor(() => !!pending(h, "Agent/alpha"), "the new change asked");
    const toC = pending(h, "Agent/alpha")!;

    // The old change comes back (a revert): it is asked again, never applied on the old approval.
    write("alpha.yaml", `${gosuto("alpha", RISKY)}---\n${agent("alpha", MISSING_B)}`);
    await h.offer(dir, "rev-b-again");
    await waitFor(() => h.state.approvals.get(toC.id)!.status === "superseded" && !!pending(h, "Agent/alpha"), "a fresh request");
    const again = pending(h, "Agent/alpha")!;
    assert.notEqual(again.id, toB.id);
    assert.equal(again.toDigest, toB.toDigest, "the same change, a new request");
    assert.equal(h.state.approvals.get(toB.id)!.status, "superseded");
    write("alpha.yaml", `${gosuto("alpha", RISKY)}---\n${agent("alpha")}`);
    await h.offer(dir, "rev-back");
    await h.waitForStatus("alpha", isReady, "alpha back to Ready");
  });

  test("4. a revoke retires the grant: the binding added back unchanged asks again", async () => {
    write("grant.yaml", binding("alpha", "api-key"));
    await h.offer(dir);
    await waitFor(() => !!pending(h, "SecretBinding/alpha-api-key"), "the grant parked");
    const first = pending(h, "SecretBinding/alpha-api-key")!;
    approve(h, first.id);
    await waitFor(async () => (await inside(h, "alpha")).secrets.length === 1, "the secret delivered");

    rmSync(join(dir, "grant.yaml"));
    await h.offer(dir);
    await waitFor(async () => (await inside(h, "alpha")).secrets.length === 0, "the secret revoked");

    write("grant.yaml", binding("alpha", "api-key"));
    await h.offer(dir);
    await waitFor(() => !!pending(h, "SecretBinding/alpha-api-key"), "asked again");
    assert.notEqual(pending(h, "SecretBinding/alpha-api-key")!.id, first.id);
    // The reconcile that asked again, and anything it or a decision triggered, has run to the end.
    h.controller.flushStateChanges();
    await h.controller.queue.idle();
    assert.deepEqual((await inside(h, "alpha")).secrets, [], "not delivered on the old approval");
    rmSync(join(dir, "grant.yaml"));
    await h.offer(dir);
  });
});

describe("a lapsed change is asked again when proposed again (time driven by the test)", () => {
  let h: TestController;
  let dir: string;
  const clock = new ManualClock(Date.now());
  before(async () => {
    h = await startTestController({ clock });
    await h.docker.getImage(TEST_AGENT_IMAGE).tag({ repo: "ruriko/gitai", tag: "gate-c" });
    dir = writeTree({ "policy.yaml": DEFAULT, "alpha.yaml": `${gosuto("alpha")}---\n${agent("alpha")}` });
    await h.offer(dir);
    await h.waitForStatus("alpha", isReady, "alpha Ready");
  });
  after(async () => {
    await h?.stop();
  });

  test("5. expired → blocked while the same proposal stands; touched, it gets a new request; an approval never applied in time expires too", async () => {
    writeFileSync(join(dir, "alpha.yaml"), `${gosuto("alpha")}---\n${agent("alpha", IMAGE_C)}`);
    await h.offer(dir, "rev-1");
    await waitFor(() => !!pending(h, "Agent/alpha"), "parked");
    const first = pending(h, "Agent/alpha")!;
    clock.advance(2 * 3_600_000);
    assert.equal(h.state.approvals.get(first.id)!.status, "expired", "expired on the deadline's timer, not when someone looked");
    await h.waitForStatus("alpha", (s) => s?.conditions.some((c) => c.type === "Ready" && c.reason === "ApprovalExpired") ?? false, "ApprovalExpired");

    await h.offer(dir, "rev-2");
    await h.controller.queue.idle();
    assert.equal(pending(h, "Agent/alpha"), undefined, "a revision that does not touch it is not a new proposal");

    writeFileSync(join(dir, "alpha.yaml"), `# asked again\n${gosuto("alpha")}---\n${agent("alpha", IMAGE_C)}`);
    await h.offer(dir, "rev-3");
    await waitFor(() => !!pending(h, "Agent/alpha"), "a fresh request");
    const second = pending(h, "Agent/alpha")!;
    assert.notEqual(second.id, first.id);
    assert.equal(second.toDigest, first.toDigest);

    // Approved while the agent cannot take it, and not carried out before its time: it expires, never applied later.
    writeFileSync(join(dir, "alpha.yaml"), `${gosuto("alpha")}---\n${agent("alpha", MISSING_B)}`);
    await h.offer(dir, "rev-4");
    await waitFor(() => !!pending(h, "Agent/alpha") && pending(h, "Agent/alpha")!.id !== second.id, "the missing image asked");
    const doomed = pending(h, "Agent/alpha")!;
    approve(h, doomed.id);
    await h.waitForStatus("alpha", (s) => s?.conditions.some((c) => c.reason === "ImageMissing") ?? false, "Stalled");
    clock.advance(2 * 3_600_000);
    assert.equal(h.state.approvals.get(doomed.id)!.status, "expired");
    assert.match(h.state.approvals.get(doomed.id)!.reason!, /not carried out/);
  });
});

describe("no self-approval (a real git repository)", () => {
  let h: TestController;
  let source: GitSource;
  const base = mkdtempSync(join(tmpdir(), "ruriko-gate-git-"));
  after(async () => {
    await source?.stop();
    await h?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  test("an approver's vote does not count on a change they committed; another approver's does", async () => {
    const bare = join(base, "origin.git");
    const work = join(base, "work");
    await simpleGit().init(true, [bare, "--initial-branch=main"]);
    await simpleGit().clone(bare, work);
    const git = simpleGit(work);
    await git.checkoutLocalBranch("main");
    const commit = async (files: Record<string, string>, who: string) => {
      for (const [p, c] of Object.entries(files)) {
        mkdirSync(join(work, p, ".."), { recursive: true });
        writeFileSync(join(work, p), c);
      }
      await git.add(["-A"]).raw(["-c", `user.name=${who}`, "-c", `user.email=${who.toLowerCase()}@example.org`, "commit", "-m", `change by ${who}`]);
      await git.push("origin", "main");
    };
    const selfPolicy = policy("default", ["@alice:localhost", "@bob:localhost"], `    - {match: {kind: Gosuto, fields: [capabilities]}, require: approval}\n`, `  gitIdentities: {"@alice:localhost": [alice@example.org]}\n`);
    await commit({ "policy.yaml": selfPolicy, "alpha.yaml": `${gosuto("alpha")}---\n${agent("alpha")}` }, "Ops");

    const workDir = join(base, "checkout");
    const late: { h?: TestController } = {};
    h = await startTestController({
      authors: gitChangeAuthors({ workDir, path: ".", snapshot: () => late.h?.controller.snapshot, appliedRevisions: { agent: (name) => late.h?.state.status.get(name)?.appliedRevision ?? null, policy: () => null } }),
    });
    late.h = h;
    source = new GitSource({ url: bare, workDir, intervalMs: 3_600_000 });
    await source.start((s) => h.controller.offer(s));
    await h.waitForStatus("alpha", isReady, "alpha Ready");

    await commit({ "alpha.yaml": `${gosuto("alpha", RISKY)}---\n${agent("alpha")}` }, "Alice");
    await source.refresh("test");
    await waitFor(() => !!pending(h, "Gosuto/alpha"), "parked");
    const request = pending(h, "Gosuto/alpha")!;
    assert.deepEqual(request.authors, [{ name: "Alice", email: "alice@example.org" }]);
    assert.deepEqual(request.excluded, ["@alice:localhost"]);
    const own = h.state.approvals.vote(request.id, { approver: "@alice:localhost", decision: "approve", source: "matrix:$a" });
    assert.deepEqual(own.outcome === "ignored" && own.reason, "self-approval");
    assert.equal(h.state.approvals.get(request.id)!.status, "pending");
    assert.equal(h.state.approvals.vote(request.id, { approver: "@bob:localhost", decision: "approve", source: "matrix:$b" }).outcome, "decided");
    h.controller.flushStateChanges();
    await waitFor(() => h.state.approvals.get(request.id)!.status === "applied", "applied on bob's approval");
  });
});
