import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import type { AcpError} from "../../../src/acp/client.ts";
import { AcpClient, type AcpEndpoint } from "../../../src/acp/client.ts";
import { digestOf } from "../../../src/api/digest.ts";
import { parseManifestFile } from "../../../src/api/parse.ts";
import { startAcpServer, type AcpServer } from "../../../src/gitai/acp/server.ts";
import { createLogger } from "../../../src/observability/logger.ts";

const SECRET_VALUE = "sk-acp-unit-7c1d9e";
const TOKEN = "unit-test-token-0123456789";

function gosutoDoc(prompt: string): { yaml: string; digest: string } {
  const text = `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: unit}\nspec:\n  persona: {systemPrompt: ${JSON.stringify(prompt)}}\n`;
  const [obj] = parseManifestFile("g.yaml", Buffer.from(text)).objects;
  return { yaml: stringify(obj!.object), digest: obj!.digest };
}

describe("Gitai ACP server", () => {
  let dataDir: string;
  let server: AcpServer;
  let logs = "";
  let ep: AcpEndpoint;
  const acp = new AcpClient({ retries: 0 });
  const sink = new Writable({ write(chunk, _enc, cb) { logs += chunk.toString(); cb(); } });
  const start = async () => {
    server = await startAcpServer({ host: "127.0.0.1", port: 0, agent: "unit", dataDir, logger: createLogger({ level: "debug", pretty: false, destination: sink }) });
    ep = { agent: "unit", baseUrl: `http://127.0.0.1:${server.port}`, token: TOKEN };
  };

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "gitai-data-"));
    writeFileSync(join(dataDir, "acp-token"), `${TOKEN}\n`, { mode: 0o600 });
    await start();
  });
  after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test("health is open; everything else needs the bearer token, answered 401 in JSON", async () => {
    assert.deepEqual(await acp.health({ ...ep, token: "" }, "t-health"), { status: "ok" });
    await assert.rejects(acp.status({ ...ep, token: "wrong" }, "t-401"), (e: AcpError) => e.code === "unauthorized" && e.httpStatus === 401);
    const res = await fetch(`${ep.baseUrl}/status`);
    assert.equal(res.status, 401);
    assert.match(((await res.json()) as { error: string }).error, /bearer token/);
  });

  test("PUT /config applies a valid Gosuto and reports its digest; an invalid one is refused with 422 and the old stays", async () => {
    const first = gosutoDoc("be brief");
    assert.deepEqual(await acp.putConfig(ep, { gosuto: first.yaml, digest: first.digest }, "t-config"), { digest: first.digest });
    assert.equal((await acp.status(ep, "t")).gosutoDigest, first.digest);

    const invalid = "apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: unit}\nspec: {limits: {maxTokensPerRun: -5}}\n";
    await assert.rejects(
      acp.putConfig(ep, { gosuto: invalid, digest: digestOf({}) }, "t-bad"),
      (e: AcpError) => e.code === "refused" && e.httpStatus === 422 && e.details.some((d) => /spec\.limits/.test(d)),
    );
    const second = gosutoDoc("be thorough");
    await assert.rejects(acp.putConfig(ep, { gosuto: second.yaml, digest: first.digest }, "t-mismatch"), /digest mismatch/);
    assert.equal((await acp.status(ep, "t")).gosutoDigest, first.digest);
  });

  test("the token is taken once per process: its file is gone once read, and a file that appears later is deleted unread", async () => {
    assert.equal(existsSync(join(dataDir, "acp-token")), false);
    // As a tool server running as the agent's user could: plant a token of its own.
    writeFileSync(join(dataDir, "acp-token"), "planted-by-a-tool", { mode: 0o600 });
    await assert.rejects(acp.status({ ...ep, token: "planted-by-a-tool" }, "t-planted"), (e: AcpError) => e.code === "unauthorized");
    assert.equal(existsSync(join(dataDir, "acp-token")), false);
    assert.equal((await acp.status(ep, "t-still")).agent, "unit", "the token Ruriko gave still works");
    assert.match(logs, /a token file appeared while the agent holds a token: deleted unread/);
  });

  test("a restarted process holds nothing: no Gosuto (a file a tool could rewrite), no token until one is handed over", async () => {
    assert.notEqual((await acp.status(ep, "t")).gosutoDigest, null);
    await server.close();
    await start();
    await assert.rejects(acp.status(ep, "t-restarted"), (e: AcpError) => e.code === "unauthorized");
    writeFileSync(join(dataDir, "acp-token"), TOKEN, { mode: 0o600 });
    const after = await acp.status(ep, "t");
    assert.equal(after.gosutoDigest, null, "Ruriko pushes the Gosuto again");
    assert.equal(after.secretsDigest, null, "secrets are memory only");
    assert.deepEqual(readdirSync(dataDir), [], "nothing written to the volume");
  });

  test("PUT /secrets holds values in memory; /status shows names, versions and digest only; a new set drops the rest", async () => {
    const digest = digestOf({ secrets: [["openai", 1, "r1"]] });
    await acp.putSecrets(ep, { secrets: { openai: SECRET_VALUE, other: "x-other" }, versions: { openai: 1, other: 3 }, digest }, "t-secrets");
    const status = await acp.status(ep, "t");
    assert.equal(status.secretsDigest, digest);
    assert.deepEqual(status.secrets, [{ name: "openai", version: 1 }, { name: "other", version: 3 }]);
    assert.ok(!JSON.stringify(status).includes(SECRET_VALUE));
    const d2 = digestOf({ secrets: [] });
    await acp.putSecrets(ep, { secrets: {}, versions: {}, digest: d2 }, "t-revoke");
    assert.deepEqual((await acp.status(ep, "t")).secrets, []);
  });

  test("PUT /matrix holds the identity in memory; /status names it, never the token; null drops it", async () => {
    const MATRIX_TOKEN = "syt_unit_matrix_token_5b2f";
    const digest = digestOf({ matrix: ["http://127.0.0.1:8008", "@unit:localhost", "r1"] });
    assert.equal((await acp.status(ep, "t")).matrix, null);
    await acp.putMatrix(ep, { identity: { homeserver: "http://127.0.0.1:8008", userId: "@unit:localhost", accessToken: MATRIX_TOKEN }, digest }, "t-matrix");
    const status = await acp.status(ep, "t");
    assert.deepEqual(status.matrix, { homeserver: "http://127.0.0.1:8008", userId: "@unit:localhost", digest });
    assert.ok(!JSON.stringify(status).includes(MATRIX_TOKEN));
    await assert.rejects(acp.putMatrix(ep, { identity: null, digest }, "t-half"), (e: AcpError) => e.code === "refused");
    await assert.rejects(acp.putMatrix(ep, { identity: { homeserver: "ftp://x", userId: "unit", accessToken: "" }, digest }, "t-bad"), (e: AcpError) => e.code === "refused" && e.details.length >= 3);
    await acp.putMatrix(ep, { identity: null, digest: null }, "t-drop");
    assert.equal((await acp.status(ep, "t")).matrix, null);
    assert.ok(!logs.includes(MATRIX_TOKEN), "the token is never logged");
  });

  test("an oversized body is 413, a malformed one 422", async () => {
    const big = await fetch(`${ep.baseUrl}/secrets`, {
      method: "PUT",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ secrets: { a: "x".repeat(2 * 1024 * 1024) }, versions: {}, digest: digestOf(1) }),
    });
    assert.equal(big.status, 413);
    assert.match(((await big.json()) as { error: string }).error, /larger than/);
    const bad = await fetch(`${ep.baseUrl}/config`, { method: "PUT", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: JSON.stringify({ gosuto: 5 }) });
    assert.equal(bad.status, 422);
  });

  test("every request is logged with its trace id, and no log line holds a secret or the token", async () => {
    await acp.status(ep, "trace-abc-123");
    const lines = logs.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(lines.some((l) => l.traceId === "trace-abc-123" && l.path === "/status" && l.status === 200));
    assert.ok(lines.some((l) => l.traceId === "t-secrets" && l.msg === "secrets replaced"));
    assert.ok(!logs.includes(SECRET_VALUE) && !logs.includes("x-other") && !logs.includes(TOKEN));
  });
});
