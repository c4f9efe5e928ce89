/** `ruriko serve` as a process: git source end to end, crash recovery, engine outages. */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import Docker from "dockerode";
import { simpleGit } from "simple-git";
import { LABELS } from "../../src/runtime/runtime.ts";
import { ensureAgentImage, newStateDir, removeInstanceResources, TEST_AGENT_IMAGE, waitFor } from "../helpers/controller-harness.ts";
import { startServe } from "../helpers/serve-process.ts";

const docker = new Docker();
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const gosuto = (name: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: {}\n`;
const agent = (name: string, env = "UTC") =>
  `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec:\n  image: ${TEST_AGENT_IMAGE}\n  gosuto: ${name}\n  env: {TZ: ${env}}\n  resources: {memory: 128Mi}\n`;

async function containers(instance: string, all = true) {
  return docker.listContainers({ all, filters: JSON.stringify({ label: [`${LABELS.instance}=${instance}`] }) });
}

function fixture() {
  const { stateDir, instance } = newStateDir();
  cleanups.push(async () => {
    await removeInstanceResources(docker, instance);
    rmSync(stateDir, { recursive: true, force: true });
  });
  return { stateDir, instance };
}

describe("ruriko serve", () => {
  test("git source end to end: commits converge, the webhook fetches at once, an invalid commit changes nothing", async () => {
    await ensureAgentImage(docker);
    const { stateDir, instance } = fixture();
    const base = mkdtempSync(join(tmpdir(), "ruriko-gitsrv-"));
    cleanups.push(async () => rmSync(base, { recursive: true, force: true }));
    const bare = join(base, "origin.git");
    const work = join(base, "work");
    await simpleGit().init(true, [bare, "--initial-branch=main"]);
    await simpleGit().clone(bare, work);
    const git = simpleGit(work);
    await git.addConfig("user.name", "Ops").addConfig("user.email", "ops@example.org").checkoutLocalBranch("main");
    const commit = async (files: Record<string, string>, message: string) => {
      for (const [p, c] of Object.entries(files)) {
        mkdirSync(join(work, p, ".."), { recursive: true });
        writeFileSync(join(work, p), c);
      }
      await git.add(["-A"]).commit(message);
      await git.push("origin", "main");
      return (await git.revparse(["HEAD"])).trim();
    };
    const first = await commit({ "fleet/gosutos/g1.yaml": gosuto("g1"), "fleet/agents/g1.yaml": agent("g1") }, "add g1");

    const secret = "webhook-test-secret";
    // A long interval: only the webhook can make the second commit show up in time.
    const serve = await startServe(["--git", `file://${bare}`, "--branch", "main", "--path", "fleet", "--git-interval", "3600"], { stateDir, env: { RURIKO_WEBHOOK_SECRET: secret } });
    cleanups.push(() => serve.stop());
    await waitFor(async () => (await serve.status())?.agents.find((a) => a.name === "g1")?.phase === "Ready", "g1 Ready from the first commit");
    assert.equal((await serve.status())!.source.appliedRevision, first);

    const second = await commit({ "fleet/agents/g1.yaml": agent("g1", "Asia/Tokyo") }, "g1 to Tokyo time");
    const body = JSON.stringify({ ref: "refs/heads/main", after: second });
    const hook = await fetch(`${serve.url}/api/v1/webhooks/git`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-github-event": "push", "x-hub-signature-256": `sha256=${createHmac("sha256", secret).update(body).digest("hex")}` },
      body,
    });
    assert.equal(hook.status, 202);
    await waitFor(async () => (await serve.status())?.agents.find((a) => a.name === "g1")?.appliedRevision === second, "second commit applied");
    const [g1] = await containers(instance);
    assert.ok((await docker.getContainer(g1!.Id).inspect()).Config.Env.includes("TZ=Asia/Tokyo"));

    const forged = await fetch(`${serve.url}/api/v1/webhooks/git`, { method: "POST", headers: { "x-github-event": "push", "x-hub-signature-256": "sha256=00" }, body });
    assert.equal(forged.status, 401);

    const bad = await commit({ "fleet/agents/g1.yaml": agent("g1").replace("memory: 128Mi", "memory: plenty") }, "broken edit");
    await fetch(`${serve.url}/api/v1/webhooks/git`, {
      method: "POST",
      headers: { "x-github-event": "push", "x-hub-signature-256": `sha256=${createHmac("sha256", secret).update(body).digest("hex")}` },
      body,
    });
    await waitFor(async () => (await serve.status())?.source.rejectedRevision === bad, "bad commit refused");
    const status = (await serve.status())!;
    assert.equal(status.source.appliedRevision, second);
    assert.match(status.source.errors[0]!.text, /^agents\/g1\.yaml:\d+:\d+: Agent\/g1: spec\.resources\.memory: must be a size like 512Mi$/);
    const [still] = await containers(instance);
    assert.equal(still!.Id, g1!.Id);
    assert.equal(still!.State, "running");
    const cli = execFileSync(process.execPath, [join(import.meta.dirname, "../../src/cli/ruriko.ts"), "status", "--state-dir", stateDir], { encoding: "utf8" });
    assert.match(cli, /REFUSED/);
    assert.match(cli, /spec\.resources\.memory: must be a size like 512Mi/);
  });

  test("kill -9 while ten agents converge, then restart: no duplicate and no orphan container", async () => {
    await ensureAgentImage(docker);
    const { stateDir, instance } = fixture();
    const dir = mkdtempSync(join(tmpdir(), "ruriko-ten-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const names = Array.from({ length: 10 }, (_, i) => `crash-${i}`);
    for (const n of names) writeFileSync(join(dir, `${n}.yaml`), `${gosuto(n)}---\n${agent(n)}`);

    const first = await startServe(["--manifests", dir, "--concurrency", "4"], { stateDir });
    await waitFor(async () => (await containers(instance)).length >= 3, "some containers created", 60_000);
    await first.kill();

    const second = await startServe(["--manifests", dir, "--concurrency", "4"], { stateDir });
    cleanups.push(() => second.stop());
    await waitFor(async () => {
      const s = await second.status();
      return !!s && names.every((n) => s.agents.find((a) => a.name === n)?.phase === "Ready");
    }, "all ten Ready after the restart", 120_000);
    const list = await containers(instance);
    assert.equal(list.length, 10, "exactly one container per agent");
    assert.deepEqual(list.map((c) => c.Labels[LABELS.agent]).sort(), [...names].sort());
    assert.ok(list.every((c) => c.State === "running"));
  });

  test("dockerd stopped and started while serve runs: it recovers and heals", async () => {
    await ensureAgentImage(docker);
    const { stateDir, instance } = fixture();
    const dir = mkdtempSync(join(tmpdir(), "ruriko-outage-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "a.yaml"), `${gosuto("outage")}---\n${agent("outage")}`);
    const serve = await startServe(["--manifests", dir, "--resync", "5"], { stateDir });
    cleanups.push(() => serve.stop());
    const explained = (wait: Promise<void>) => wait.catch((error: Error) => Promise.reject(new Error(`${error.message}\n--- serve log (last lines) ---\n${serve.logTail()}`)));
    await explained(waitFor(async () => (await serve.status())?.agents.find((a) => a.name === "outage")?.phase === "Ready", "Ready before the outage"));

    const pid = execFileSync("pidof", ["dockerd"], { encoding: "utf8" }).trim().split(/\s+/)[0]!;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    process.kill(Number(pid), "SIGTERM");
    await waitFor(async () => !(await docker.ping().then(() => true, () => false)), "dockerd down", 60_000);
    // While the engine is away, serve keeps answering.
    assert.equal((await fetch(`${serve.url}/healthz`)).status, 200);
    await new Promise((r) => setTimeout(r, 2000));
    const log = openSync(join(stateDir, "dockerd-restart.log"), "a");
    spawn(cmdline[0]!, cmdline.slice(1), { detached: true, stdio: ["ignore", log, log] }).unref();
    await waitFor(async () => docker.ping().then(() => true, () => false), "dockerd back", 60_000);

    // The engine stopped the container when it went down; Ruriko starts it again.
    await explained(waitFor(async () => (await containers(instance)).some((c) => c.State === "running"), "container running again", 90_000));
    await explained(waitFor(async () => (await serve.status())?.agents.find((a) => a.name === "outage")?.phase === "Ready", "Ready after the outage", 60_000));
    assert.equal(serve.child.exitCode, null, "serve did not crash");
    assert.equal((await containers(instance)).length, 1);
  });
});
