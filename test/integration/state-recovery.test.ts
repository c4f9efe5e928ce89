/**
 * The state database defends itself, as an operator meets it: `ruriko serve` processes on real SQLite files and a
 * real Docker engine. A lost database is refused (or adopted on request, approvals intact), a corrupt one stops
 * serve (never a zombie answering /healthz), a lock held beside serve is not a failure, and a backup restored
 * while the engine moved on applies nothing twice.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import Database from "better-sqlite3";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import Docker from "dockerode";
import { LABELS, MANAGED_BY } from "../../src/runtime/runtime.ts";
import { STATE_DB_FILE } from "../../src/store/state.ts";
import { cleanupTestResources, testLabels } from "../helpers/docker.ts";
import { ensureAgentImage, newStateDir, removeInstanceResources, TEST_AGENT_IMAGE, waitFor } from "../helpers/controller-harness.ts";
import { startServe, type ServeProcess } from "../helpers/serve-process.ts";
import { corruptTablePage, touchDatabase } from "../helpers/sqlite-damage.ts";
import { freePort } from "../helpers/synapse.ts";

const CLI = join(import.meta.dirname, "../../src/cli/ruriko.ts");
const docker = new Docker();
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await cleanupTestResources(docker);
});

const ruriko = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 120_000 });
const gosuto = (name: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: {}\n`;
const agent = (name: string, image: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec: {image: "${image}", gosuto: ${name}}\n`;
const POLICY = `apiVersion: ruriko.dev/v1alpha1
kind: ApprovalPolicy
metadata: {name: default}
spec:
  room: "!approvals:localhost"
  approvers: ["@alice:localhost"]
  rules: [{match: {kind: Agent, operation: update, fields: [image]}, require: approval}]
`;

function fixture() {
  const { stateDir, instance } = newStateDir();
  const manifests = mkdtempSync(join(tmpdir(), "ruriko-recovery-"));
  cleanups.push(async () => {
    await removeInstanceResources(docker, instance);
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(manifests, { recursive: true, force: true });
  });
  return { stateDir, instance, manifests, db: join(stateDir, STATE_DB_FILE) };
}

async function containersOf(instance: string) {
  return docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABELS.instance}=${instance}`] }) });
}

/** The instance id in a state database. */
function instanceOf(stateDir: string): string {
  const db = new Database(join(stateDir, STATE_DB_FILE), { readonly: true });
  try {
    return (db.prepare("SELECT value FROM meta WHERE key = 'instance_id'").get() as { value: string }).value;
  } finally {
    db.close();
  }
}

const phaseOf = async (serve: ServeProcess, name: string) => (await serve.status())?.agents.find((a) => a.name === name)?.phase;

/**
 * Runs `ruriko serve` until it exits, or until /healthz answers 200 (then it did not refuse: it is killed). What
 * it printed, its exit code, and whether it was ever healthy.
 */
async function serveUntilExit(args: string[], stateDir: string): Promise<{ exitCode: number | null; healthy: boolean; output: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, "serve", "--state-dir", stateDir, "--http", `127.0.0.1:${port}`, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let done: number | null | undefined;
  void exited.then((code) => (done = code));
  let healthy = false;
  while (done === undefined) {
    if (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status === 200, () => false)) {
      healthy = true;
      child.kill("SIGKILL");
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { exitCode: await exited, healthy, output };
}

describe("state database: lost, corrupt, locked, restored", () => {
  test("an emptied database beside its instance's containers is refused; --adopt-orphans takes them over and a change waiting for approval still waits", async () => {
    await ensureAgentImage(docker);
    const { stateDir, instance, manifests, db } = fixture();
    writeFileSync(join(manifests, "policy.yaml"), POLICY);
    writeFileSync(join(manifests, "keeper.yaml"), `${gosuto("keeper")}---\n${agent("keeper", TEST_AGENT_IMAGE)}`);

    const first = await startServe(["--manifests", manifests], { stateDir });
    cleanups.push(() => first.stop());
    await waitFor(async () => (await phaseOf(first, "keeper")) === "Ready", "keeper Ready", 90_000);
    writeFileSync(join(manifests, "keeper.yaml"), `${gosuto("keeper")}---\n${agent("keeper", "ruriko/gitai:adopt-next")}`);
    await waitFor(async () => (await phaseOf(first, "keeper")) === "AwaitingApproval", "the image change parked", 60_000);
    const [before] = await containersOf(instance);
    await first.stop();

    truncateSync(db, 0);
    const refused = await serveUntilExit(["--manifests", manifests], stateDir);
    assert.equal(refused.healthy, false, `serve must not start over on an emptied database:\n${refused.output}`);
    assert.equal(refused.exitCode, 1, refused.output);
    assert.match(refused.output, new RegExp(`belongs to Ruriko instance ${instance}`));
    assert.match(refused.output, /is empty \(0 bytes\)/);
    assert.match(refused.output, new RegExp(`ruriko-${instance}-keeper \\(agent keeper, running, ${TEST_AGENT_IMAGE.replace(/[/.]/g, "\\$&")}\\)`));
    assert.match(refused.output, /--adopt-orphans/);
    assert.equal(statSync(db).size, 0, "nothing written in place of the lost database");
    assert.deepEqual((await containersOf(instance)).map((c) => [c.Id, c.State]), [[before!.Id, "running"]], "nothing started or removed");

    const adopted = await startServe(["--manifests", manifests, "--adopt-orphans"], { stateDir });
    cleanups.push(() => adopted.stop());
    await waitFor(async () => (await phaseOf(adopted, "keeper")) === "AwaitingApproval", "the image change waits again, after adoption", 90_000);
    const after = await containersOf(instance);
    assert.deepEqual(after.map((c) => [c.Id, c.Image]), [[before!.Id, TEST_AGENT_IMAGE]], "the container was adopted, not recreated or replaced by the parked image");
    const pending = JSON.parse(ruriko("approvals", "list", "-o", "json", "--state-dir", stateDir).stdout) as Array<{ agent: string; operation: string; summary: string }>;
    assert.deepEqual(pending.map((r) => [r.agent, r.operation]), [["keeper", "update"]]);
    assert.match(pending[0]!.summary, /image changed ruriko\/gitai:dev → ruriko\/gitai:adopt-next/);
    assert.match(readFileSync(adopted.logFile, "utf8"), new RegExp(`adopted the containers of instance ${instance}: ruriko-${instance}-keeper`));
  });

  test("a new state directory starts as before beside another instance's containers", async () => {
    await ensureAgentImage(docker);
    const other = `other${Date.now().toString(36)}`;
    const foreign = await docker.createContainer({
      Image: TEST_AGENT_IMAGE,
      name: `ruriko-${other}-stranger`,
      Labels: { ...testLabels(), [LABELS.managedBy]: MANAGED_BY, [LABELS.instance]: other, [LABELS.agent]: "stranger", [LABELS.specDigest]: "sha256:x" },
    });
    const stateDir = mkdtempSync(join(tmpdir(), "ruriko-fresh-"));
    const manifests = mkdtempSync(join(tmpdir(), "ruriko-fresh-m-"));
    cleanups.push(async () => {
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(manifests, { recursive: true, force: true });
    });
    const serve = await startServe(["--manifests", manifests], { stateDir });
    cleanups.push(() => serve.stop());
    assert.equal((await fetch(`${serve.url}/healthz`)).status, 200);
    const instance = instanceOf(stateDir);
    cleanups.push(() => removeInstanceResources(docker, instance));
    assert.notEqual(instance, other);
    await serve.stop();
    assert.equal((await foreign.inspect()).State.Status, "created", "another instance's container is not touched");
  });

  test("a corrupt page at start: serve refuses, exits non-zero and is never healthy", async () => {
    const { stateDir, manifests, db } = fixture();
    const first = await startServe(["--manifests", manifests], { stateDir });
    await first.stop();
    corruptTablePage(db, "agent_status");
    const run = await serveUntilExit(["--manifests", manifests], stateDir);
    assert.equal(run.healthy, false, `serve must not run on a corrupt database:\n${run.output}`);
    assert.equal(run.exitCode, 1, run.output);
    assert.match(run.output, new RegExp(`state database ${db.replace(/[/.]/g, "\\$&")}: PRAGMA quick_check.*\\(SQLITE_CORRUPT\\); Ruriko will not run on it\\. Restore a backup`));
  });

  test("a corrupt page met at run time: /healthz fails and serve exits non-zero", async () => {
    const { stateDir, manifests, db } = fixture();
    const serve = await startServe(["--manifests", manifests], { stateDir });
    cleanups.push(() => serve.stop());
    const exited = new Promise<number | null>((resolve) => serve.child.once("exit", (code) => resolve(code)));
    await waitFor(async () => (await fetch(`${serve.url}/readyz`)).status === 200, "serve ready");

    corruptTablePage(db, "revisions");
    touchDatabase(db);
    // The status report reads the latest revision: the first statement to meet the damaged page.
    assert.equal((await fetch(`${serve.url}/api/v1/status`)).status, 500);
    const health = await fetch(`${serve.url}/healthz`).then((r) => r.status, () => "connection refused: already exiting");
    assert.notEqual(health, 200);
    assert.equal(await exited, 1);
    assert.match(readFileSync(serve.logFile, "utf8"), /the state database failed \(SQLITE_CORRUPT: database disk image is malformed\); stopping/);
  });

  test("a write lock held beside serve longer than its busy timeout is not a storage failure: serve waits its turn", async () => {
    const { stateDir, manifests, db } = fixture();
    writeFileSync(join(manifests, "a.yaml"), gosuto("a"));
    const serve = await startServe(["--manifests", manifests], { stateDir });
    cleanups.push(() => serve.stop());
    await waitFor(async () => (await fetch(`${serve.url}/readyz`)).status === 200, "serve ready");
    const firstRevision = (await serve.status())!.source.appliedRevision;

    // What a long `ruriko` command does: hold the write lock.
    const cli = new Database(db);
    cli.exec("BEGIN IMMEDIATE");
    try {
      writeFileSync(join(manifests, "b.yaml"), gosuto("b"));
      await waitFor(async () => /database is locked/.test(readFileSync(serve.logFile, "utf8")), "serve meets the lock (SQLITE_BUSY)", 60_000);
      assert.equal((await fetch(`${serve.url}/healthz`)).status, 200, "busy is not a failure");
    } finally {
      cli.exec("ROLLBACK");
      cli.close();
    }
    await waitFor(async () => (await serve.status())?.source.appliedRevision !== firstRevision, "the new revision taken once the lock is gone", 60_000);
    assert.equal(serve.child.exitCode, null, "still running");
    assert.equal((await fetch(`${serve.url}/healthz`)).status, 200);
  });

  test("backup while serve runs, restore after the engine moved on: nothing applied twice, and what the backup could not know is gone", async () => {
    await ensureAgentImage(docker);
    await docker.getImage(TEST_AGENT_IMAGE).tag({ repo: "ruriko/gitai", tag: "restore-b" });
    const { stateDir, instance, manifests } = fixture();
    const backup = join(mkdtempSync(join(tmpdir(), "ruriko-backups-")), "state.sqlite");
    writeFileSync(join(manifests, "policy.yaml"), POLICY);
    writeFileSync(join(manifests, "keeper.yaml"), `${gosuto("keeper")}---\n${agent("keeper", TEST_AGENT_IMAGE)}`);

    const first = await startServe(["--manifests", manifests], { stateDir });
    cleanups.push(() => first.stop());
    await waitFor(async () => (await phaseOf(first, "keeper")) === "Ready", "keeper Ready", 90_000);
    writeFileSync(join(manifests, "keeper.yaml"), `${gosuto("keeper")}---\n${agent("keeper", "ruriko/gitai:restore-b")}`);
    await waitFor(async () => (await phaseOf(first, "keeper")) === "AwaitingApproval", "the image change parked", 60_000);

    const taken = ruriko("backup", backup, "--state-dir", stateDir);
    assert.equal(taken.status, 0, taken.stderr);
    assert.match(taken.stdout, new RegExp(`backed up instance ${instance} \\(schema \\d+, \\d+ bytes\\) to ${backup.replace(/[/.]/g, "\\$&")}`));

    // After the backup: the change is approved and applied (a new container), and a secret is stored.
    const [request] = JSON.parse(ruriko("approvals", "list", "-o", "json", "--state-dir", stateDir).stdout) as Array<{ id: string }>;
    assert.equal(ruriko("approvals", "approve", request!.id, "--state-dir", stateDir).status, 0);
    await waitFor(async () => (await phaseOf(first, "keeper")) === "Ready" && (await containersOf(instance))[0]?.Image === "ruriko/gitai:restore-b", "the approved image applied", 90_000);
    const [applied] = await containersOf(instance);
    const valueFile = join(stateDir, "value.txt");
    writeFileSync(valueFile, "after the backup");
    assert.equal(ruriko("secret", "set", "set-after-backup", "--from-file", valueFile, "--state-dir", stateDir).status, 0);
    await first.stop();

    const restored = ruriko("restore", backup, "--state-dir", stateDir);
    assert.equal(restored.status, 0, restored.stderr);
    assert.match(restored.stdout, new RegExp(`restored instance ${instance}`));

    const second = await startServe(["--manifests", manifests], { stateDir });
    cleanups.push(() => second.stop());
    await waitFor(async () => (await phaseOf(second, "keeper")) === "Ready", "keeper Ready after the restore", 90_000);
    assert.deepEqual((await containersOf(instance)).map((c) => [c.Id, c.Image]), [[applied!.Id, "ruriko/gitai:restore-b"]], "the container made after the backup is kept, not recreated");
    const pending = JSON.parse(ruriko("approvals", "list", "-o", "json", "--state-dir", stateDir).stdout) as unknown[];
    assert.deepEqual(pending, [], "the change applied after the backup is not asked again");
    const all = JSON.parse(ruriko("approvals", "list", "--all", "-o", "json", "--state-dir", stateDir).stdout) as Array<{ id: string; status: string }>;
    assert.equal(all.find((r) => r.id === request!.id)?.status, "superseded", "the request the backup knew as pending is retired, its change being in force");
    const secrets = JSON.parse(ruriko("secret", "list", "-o", "json", "--state-dir", stateDir).stdout) as Array<{ name: string }>;
    assert.equal(secrets.some((s) => s.name === "set-after-backup"), false, "a secret stored after the backup is not in it");
    assert.match(readFileSync(second.logFile, "utf8"), new RegExp(`restored from a backup: took over ruriko-${instance}-keeper`));
    await second.stop();
    const state = new Database(join(stateDir, STATE_DB_FILE), { readonly: true });
    try {
      const actions = (state.prepare("SELECT action FROM audit_log WHERE action LIKE 'state.%'").all() as Array<{ action: string }>).map((r) => r.action);
      assert.deepEqual(actions, ["state.restored"]);
    } finally {
      state.close();
    }
    assert.ok(existsSync(backup));
  });
});
