/** `ruriko secret …` as an operator runs it, and master-key handling at `serve` start. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Docker from "dockerode";
import { ensureAgentImage, newStateDir, removeInstanceResources, TEST_AGENT_IMAGE, waitFor } from "../helpers/controller-harness.ts";
import { writeTree } from "../helpers/manifest-tree.ts";
import { startServe } from "../helpers/serve-process.ts";
import { openState } from "../../src/store/state.ts";

const CLI = join(import.meta.dirname, "../../src/cli/ruriko.ts");
const VALUE_1 = "sk-cli-value-one-5d2e";
const VALUE_2 = "sk-cli-value-two-8f4a";

describe("ruriko secret", () => {
  let stateDir: string;
  let instance: string;
  let oldKey: string;
  let manifests: string;
  const scratch = mkdtempSync(join(tmpdir(), "ruriko-secret-cli-"));
  const ruriko = (args: string[], opts: { key?: string; input?: string } = {}) =>
    spawnSync(process.execPath, [CLI, ...args, "--state-dir", stateDir], {
      encoding: "utf8",
      timeout: 60_000,
      input: opts.input ?? "",
      env: { ...process.env, RURIKO_MASTER_KEY: opts.key ?? oldKey },
    });

  before(() => {
    ({ stateDir, instance } = newStateDir());
    oldKey = spawnSync(process.execPath, [CLI, "secret", "keygen"], { encoding: "utf8" }).stdout.trim();
  });
  after(async () => {
    await removeInstanceResources(new Docker(), instance);
    for (const d of [stateDir, scratch, manifests]) if (d) rmSync(d, { recursive: true, force: true });
  });

  test("set from stdin, rotate from a file, list and info show metadata only", () => {
    const set = ruriko(["secret", "set", "openai-key"], { input: `${VALUE_1}\n` });
    assert.equal(set.status, 0, set.stderr);
    assert.match(set.stdout, /secret openai-key stored as version 1/);
    const file = join(scratch, "v2");
    writeFileSync(file, VALUE_2);
    const rotate = ruriko(["secret", "rotate", "openai-key", "--from-file", file]);
    assert.equal(rotate.status, 0, rotate.stderr);
    assert.match(rotate.stdout, /version 2/);
    assert.equal(ruriko(["secret", "rotate", "nope"], { input: "x" }).status, 1);

    const list = ruriko(["secret", "list"]);
    assert.match(list.stdout, /^openai-key {2}v2 {2}updated /m);
    const info = JSON.parse(ruriko(["secret", "info", "openai-key", "-o", "json"]).stdout) as { name: string; version: number };
    assert.equal(info.version, 2);
    for (const out of [set.stdout, rotate.stdout, list.stdout, JSON.stringify(info)]) {
      assert.ok(!out.includes(VALUE_1) && !out.includes(VALUE_2));
    }
  });

  test("delete waits for approval, then happens; the audit log has names and versions only", () => {
    ruriko(["secret", "set", "old-token"], { input: "tok-to-delete" });
    const first = ruriko(["secret", "delete", "old-token"]);
    assert.equal(first.status, 0, first.stderr);
    const id = /request ([0-9a-f]+) is pending/.exec(first.stdout)?.[1];
    assert.ok(id, first.stdout);
    assert.match(ruriko(["secret", "list"]).stdout, /old-token/, "not deleted before approval");
    assert.equal(ruriko(["approvals", "approve", id]).status, 0);
    const second = ruriko(["secret", "delete", "old-token"]);
    assert.match(second.stdout, /secret old-token deleted/);
    assert.doesNotMatch(ruriko(["secret", "list"]).stdout, /old-token/);
    const state = openState(stateDir);
    try {
      const audit = state.audit.tail(100);
      const deleted = audit.find((e) => e.action === "secret.delete");
      assert.deepEqual({ secret: (deleted?.payload as { secret?: string }).secret, version: (deleted?.payload as { version?: number }).version }, { secret: "old-token", version: 1 });
      assert.ok(audit.some((e) => e.action === "secret.rotate" && e.actor.startsWith("cli:")));
      assert.ok(!JSON.stringify(audit).includes("tok-to-delete") && !JSON.stringify(audit).includes(VALUE_1));
    } finally {
      state.close();
    }
  });

  test("rekey: the old key is refused at start with a clear error; the new one decrypts everything", async () => {
    await ensureAgentImage(new Docker());
    const newKey = spawnSync(process.execPath, [CLI, "secret", "keygen"], { encoding: "utf8" }).stdout.trim();
    const keyFile = join(scratch, "new.key");
    writeFileSync(keyFile, `${newKey}\n`, { mode: 0o600 });
    const rekeyed = ruriko(["secret", "rekey", "--new-key-file", keyFile]);
    assert.equal(rekeyed.status, 0, rekeyed.stderr);
    assert.match(rekeyed.stdout, /re-encrypted 1 secret\(s\)/);

    manifests = writeTree({
      "a.yaml": `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: keyed}\nspec: {}\n---\napiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: keyed}\nspec: {image: "${TEST_AGENT_IMAGE}", gosuto: keyed}\n`,
      "b.yaml": `apiVersion: ruriko.dev/v1alpha1\nkind: SecretBinding\nmetadata: {name: keyed-openai}\nspec: {agent: keyed, secret: openai-key}\n`,
      "p.yaml": `apiVersion: ruriko.dev/v1alpha1\nkind: ApprovalPolicy\nmetadata: {name: trusted}\nspec:\n  room: "!a:localhost"\n  approvers: ["@a:localhost"]\n  rules: [{match: {kind: SecretBinding, operation: grant}, require: none}]\n`,
    });
    const wrong = spawnSync(process.execPath, [CLI, "serve", "--manifests", manifests, "--state-dir", stateDir, "--http", "127.0.0.1:0"], {
      encoding: "utf8",
      timeout: 30_000,
      env: { ...process.env, RURIKO_MASTER_KEY: oldKey },
    });
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /^ruriko: the master key from RURIKO_MASTER_KEY \(id k[0-9a-f]+\) is not the key this state database is encrypted under/);
    assert.ok(!wrong.stderr.includes(oldKey));

    const serve = await startServe(["--manifests", manifests, "--master-key-file", keyFile], { stateDir, env: { RURIKO_MASTER_KEY: "" } });
    try {
      await waitFor(async () => {
        const agent = (await serve.status())?.agents.find((a) => a.name === "keyed");
        return agent?.phase === "Ready" && agent.agent.secretsDigest !== null;
      }, "the agent Ready with its secret, decrypted under the new key", 90_000);
      assert.ok(!readFileSync(serve.logFile, "utf8").includes(VALUE_2));
    } finally {
      await serve.stop();
    }
  });

  test("a rotation a policy in force gates waits for approval, and serve carries it out the moment it is approved elsewhere; a denied deletion can be asked again", async () => {
    await ensureAgentImage(new Docker());
    const own = newStateDir();
    const key = spawnSync(process.execPath, [CLI, "secret", "keygen"], { encoding: "utf8" }).stdout.trim();
    const cli = (args: string[], input = "") =>
      spawnSync(process.execPath, [CLI, ...args, "--state-dir", own.stateDir], { encoding: "utf8", timeout: 60_000, input, env: { ...process.env, RURIKO_MASTER_KEY: key } });
    const dir = writeTree({
      "a.yaml": `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: rot}\nspec: {}\n---\napiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: rot}\nspec: {image: "${TEST_AGENT_IMAGE}", gosuto: rot, resources: {memory: 128Mi}}\n`,
      "b.yaml": `apiVersion: ruriko.dev/v1alpha1\nkind: SecretBinding\nmetadata: {name: rot-key}\nspec: {agent: rot, secret: rot-key}\n`,
      "p.yaml": `apiVersion: ruriko.dev/v1alpha1\nkind: ApprovalPolicy\nmetadata: {name: guard}\nspec:\n  room: "!a:localhost"\n  approvers: ["@a:localhost"]\n  rules:\n    - {match: {kind: Secret, operation: rotate, names: [rot-key]}, require: approval}\n    - {match: {kind: SecretBinding, operation: grant}, require: none}\n`,
    });
    assert.equal(cli(["secret", "set", "rot-key"], VALUE_1).status, 0);
    const serve = await startServe(["--manifests", dir], { stateDir: own.stateDir, env: { RURIKO_MASTER_KEY: key } });
    const digest = async () => (await serve.status())?.agents.find((a) => a.name === "rot")?.agent.secretsDigest ?? null;
    try {
      await waitFor(async () => (await serve.status())?.agents.find((a) => a.name === "rot")?.phase === "Ready" && (await digest()) !== null, "Ready with version 1", 90_000);
      const v1 = await digest();

      const rotate = cli(["secret", "rotate", "rot-key"], VALUE_2);
      assert.equal(rotate.status, 0, rotate.stderr);
      const id = /request ([0-9a-f]{12}) is pending/.exec(rotate.stdout)?.[1];
      assert.ok(id, rotate.stdout);
      assert.match(cli(["secret", "info", "rot-key"]).stdout, /version {3}1/, "not rotated before approval");
      assert.ok(!rotate.stdout.includes(VALUE_2));

      assert.equal(cli(["approvals", "approve", id]).status, 0);
      await waitFor(() => /version {3}2/.test(cli(["secret", "info", "rot-key"]).stdout), "serve rotated it on the decision");
      await waitFor(async () => (await digest()) !== v1, "the agent holds version 2");

      const first = cli(["secret", "delete", "rot-key"]);
      const deleteId = /request ([0-9a-f]{12}) is pending/.exec(first.stdout)?.[1];
      assert.ok(deleteId, first.stdout);
      assert.equal(cli(["approvals", "deny", deleteId]).status, 0);
      const again = cli(["secret", "delete", "rot-key"]);
      assert.equal(again.status, 0, again.stderr);
      const againId = /request ([0-9a-f]{12}) is pending/.exec(again.stdout)?.[1];
      assert.ok(againId && againId !== deleteId, "asking again after a denial is a new request");
      assert.ok(!readFileSync(serve.logFile, "utf8").includes(VALUE_2));
    } finally {
      await serve.stop();
      await removeInstanceResources(new Docker(), own.instance);
      rmSync(own.stateDir, { recursive: true, force: true });
    }
  });
});
