/**
 * `ruriko bootstrap` against a real Synapse, run as an operator runs it: the first run creates Ruriko's account,
 * the status and approval rooms and invites the operator; the second changes nothing; a lost token file is made
 * good by logging in again; and what it prints is all `serve` needs, from the environment alone.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { matrixApi, timeline, type MatrixUser } from "../helpers/matrix-chat.ts";
import { startServe, type ServeProcess } from "../helpers/serve-process.ts";
import { startSynapse, type SynapseHandle } from "../helpers/synapse.ts";
import { writeTree } from "../helpers/manifest-tree.ts";
import { generateMasterKeyText } from "../../src/secrets/crypto.ts";

const CLI = join(import.meta.dirname, "../../src/cli/ruriko.ts");

/** The environment of the test, without any RURIKO_… variable of the machine's, plus `env`. */
function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("RURIKO_"))), ...env };
}

function bootstrap(args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, [CLI, "bootstrap", ...args], { encoding: "utf8", timeout: 120_000, env: cleanEnv(env) });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `KEY=value` lines of stdout, comments left out. */
const envLines = (stdout: string) => Object.fromEntries(stdout.split("\n").filter((l) => /^RURIKO_[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));

describe("ruriko bootstrap (real Synapse)", () => {
  let synapse: SynapseHandle;
  let dir: string;
  let secretFile: string;
  let tokenFile: string;
  let alice: MatrixUser;
  let env: Record<string, string>;
  let args: string[];
  let first: ReturnType<typeof bootstrap>;
  let serve: ServeProcess | undefined;

  const resolve = async (alias: string) => (await matrixApi(synapse.baseUrl, alice.accessToken, "GET", `/directory/room/${encodeURIComponent(alias)}`)).room_id as string;
  const membership = async (token: string, roomId: string, userId: string) =>
    (await matrixApi(synapse.baseUrl, token, "GET", `/rooms/${encodeURIComponent(roomId)}/state/m.room.member/${encodeURIComponent(userId)}`)).membership;
  const devices = async (token: string) => ((await matrixApi(synapse.baseUrl, token, "GET", "/devices")).devices as unknown[]).length;

  before(async () => {
    synapse = await startSynapse();
    alice = await synapse.registerUser("alice");
    dir = mkdtempSync(join(tmpdir(), "ruriko-bootstrap-"));
    secretFile = join(dir, "registration-secret");
    writeFileSync(secretFile, `${synapse.registrationSharedSecret}\n`, { mode: 0o600 });
    tokenFile = join(dir, "secrets", "matrix-token");
    env = { RURIKO_MATRIX_REGISTRATION_SECRET_FILE: secretFile, RURIKO_OPERATOR: alice.userId };
    args = ["--matrix-homeserver", synapse.baseUrl, "--token-file", tokenFile];
    first = bootstrap(args, env);
  });
  after(async () => {
    await serve?.stop();
    await synapse?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the first run creates the account, both rooms, and invites the operator to both", async () => {
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, /^created account @ruriko:localhost$/m);
    assert.match(first.stderr, /^created room #ruriko-status:localhost \(!\S+\), inviting @alice:localhost$/m);
    assert.match(first.stderr, /^created room #ruriko-approvals:localhost \(!\S+\), inviting @alice:localhost$/m);
    assert.match(first.stderr, new RegExp(`^wrote the access token to ${tokenFile}$`, "m"));
    assert.doesNotMatch(first.stderr, /nothing changed/);

    assert.deepEqual(envLines(first.stdout), {
      RURIKO_MATRIX_HOMESERVER: synapse.baseUrl,
      RURIKO_MATRIX_USER: "@ruriko:localhost",
      RURIKO_STATUS_ROOM: "#ruriko-status:localhost",
      RURIKO_MATRIX_ACCESS_TOKEN_FILE: tokenFile,
    });
    assert.match(first.stdout, /^# ApprovalPolicy spec\.room: "#ruriko-approvals:localhost" \(!\S+\)/m);

    assert.equal(statSync(tokenFile).mode & 0o777, 0o600, "the token file is its owner's only");
    const token = readFileSync(tokenFile, "utf8").trim();
    assert.ok(!first.stdout.includes(token) && !first.stderr.includes(token), "the token is never printed when it has a file");
    assert.equal((await matrixApi(synapse.baseUrl, token, "GET", "/account/whoami")).user_id, "@ruriko:localhost");

    for (const alias of ["#ruriko-status:localhost", "#ruriko-approvals:localhost"]) {
      const roomId = await resolve(alias);
      assert.equal(await membership(token, roomId, "@ruriko:localhost"), "join", `Ruriko is in ${alias}`);
      assert.equal(await membership(token, roomId, alice.userId), "invite", `the operator is invited to ${alias}`);
    }
  });

  test("a second run changes nothing, and says so", async () => {
    const token = readFileSync(tokenFile, "utf8");
    const mtime = statSync(tokenFile).mtimeMs;
    const rooms = [await resolve("#ruriko-status:localhost"), await resolve("#ruriko-approvals:localhost")];
    const second = bootstrap(args, env);
    assert.equal(second.status, 0, second.stderr);
    assert.equal(second.stderr.trim(), "nothing changed: @ruriko:localhost, #ruriko-status:localhost and #ruriko-approvals:localhost exist, and @alice:localhost is invited to or in both");
    assert.equal(second.stdout, first.stdout, "the same configuration");
    assert.equal(readFileSync(tokenFile, "utf8"), token);
    assert.equal(statSync(tokenFile).mtimeMs, mtime, "the token file is not rewritten");
    assert.deepEqual([await resolve("#ruriko-status:localhost"), await resolve("#ruriko-approvals:localhost")], rooms);
    assert.equal(await devices(token.trim()), 1, "no new login, no new device");
  });

  test("once the operator joined, and with the registration secret gone, still nothing changes", async () => {
    for (const alias of ["#ruriko-status:localhost", "#ruriko-approvals:localhost"]) await matrixApi(synapse.baseUrl, alice.accessToken, "POST", `/join/${encodeURIComponent(alias)}`, {});
    const again = bootstrap(args, { RURIKO_OPERATOR: alice.userId });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /^nothing changed/);
  });

  test("a new operator is invited to both rooms; the others are left as they are", async () => {
    const bob = await synapse.registerUser("bob");
    const run = bootstrap(args, { ...env, RURIKO_OPERATOR: `${alice.userId},${bob.userId}` });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(run.stderr.trim().split("\n"), ["invited @bob:localhost to #ruriko-status:localhost", "invited @bob:localhost to #ruriko-approvals:localhost"]);
    const token = readFileSync(tokenFile, "utf8").trim();
    assert.equal(await membership(token, await resolve("#ruriko-status:localhost"), alice.userId), "join");
  });

  test("without a token file it logs in again (a password derived from the registration secret) and prints the token, warning", async () => {
    const run = bootstrap(["--matrix-homeserver", synapse.baseUrl], env);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /^logged in as @ruriko:localhost \(a new access token\)$/m);
    assert.match(run.stderr, /warning: the access token is printed on stdout/);
    assert.doesNotMatch(run.stderr, /created|invited/);
    const printed = envLines(run.stdout).RURIKO_MATRIX_ACCESS_TOKEN!;
    assert.equal((await matrixApi(synapse.baseUrl, printed, "GET", "/account/whoami")).user_id, "@ruriko:localhost");
    // Given back as RURIKO_MATRIX_ACCESS_TOKEN, it is kept: nothing changes.
    const kept = bootstrap(["--matrix-homeserver", synapse.baseUrl], { ...env, RURIKO_MATRIX_ACCESS_TOKEN: printed });
    assert.equal(kept.status, 0, kept.stderr);
    assert.match(kept.stderr, /^nothing changed/);
    assert.ok(!kept.stdout.includes(printed));
  });

  test("a secret given twice, or in a file that cannot be read, stops it before anything is done", () => {
    const both = bootstrap(args, { ...env, RURIKO_MATRIX_REGISTRATION_SECRET: "x" });
    assert.equal(both.status, 1);
    assert.match(both.stderr, /^ruriko: both RURIKO_MATRIX_REGISTRATION_SECRET and RURIKO_MATRIX_REGISTRATION_SECRET_FILE are set: set one of them$/m);
    const missing = bootstrap(args, { ...env, RURIKO_MATRIX_REGISTRATION_SECRET_FILE: join(dir, "nope") });
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /RURIKO_MATRIX_REGISTRATION_SECRET_FILE=.*nope: the file cannot be read \(ENOENT\)/);
    assert.ok(!both.stderr.includes(synapse.registrationSharedSecret) && !missing.stderr.includes(synapse.registrationSharedSecret));
  });

  test("what it printed is all serve needs: configured by the environment alone, it reports to the status room", async () => {
    const approvals = /^# ApprovalPolicy spec\.room: "([^"]+)"/m.exec(first.stdout)![1]!;
    const manifests = writeTree({
      "policy.yaml": `apiVersion: ruriko.dev/v1alpha1\nkind: ApprovalPolicy\nmetadata: {name: default}\nspec:\n  room: "${approvals}"\n  approvers: ["${alice.userId}"]\n`,
    });
    const stateDir = mkdtempSync(join(tmpdir(), "ruriko-bootstrap-state-"));
    serve = await startServe([], {
      stateDir,
      env: { ...envLines(first.stdout), RURIKO_MANIFESTS: manifests, RURIKO_ALLOW_EMPTY: "true", RURIKO_MASTER_KEY: generateMasterKeyText() },
    });
    const statusRoom = await resolve("#ruriko-status:localhost");
    const deadline = Date.now() + 60_000;
    let said: string[] = [];
    while (Date.now() < deadline) {
      said = (await timeline(synapse.baseUrl, alice, statusRoom)).filter((m) => m.sender === "@ruriko:localhost").map((m) => m.body);
      if (said.some((b) => /revision \S+ applied/.test(b))) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(said.some((b) => /revision \S+ applied/.test(b)), `the status room heard the revision; it heard ${JSON.stringify(said)}\n${serve.logTail()}`);
  });
});
