/**
 * Where a granted secret goes inside the agent, end to end: Gitai in-process, configured over its real ACP server
 * as Ruriko does, starting real MCP servers over stdio (the env fixture). The Gosuto's `secrets[]` decides which
 * servers see which secret; what each server really received is read from its process's environment
 * (/proc/PID/environ), not from anything Gitai says about itself.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import { AcpClient, type AcpEndpoint } from "../../src/acp/client.ts";
import { digestOf } from "../../src/api/digest.ts";
import type { AcpStatus } from "../../src/api/generated/types.ts";
import { parseManifestFile } from "../../src/api/parse.ts";
import { startGitai, type Gitai } from "../../src/gitai/gitai.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { waitFor } from "../helpers/controller-harness.ts";

const FIXTURE = join(import.meta.dirname, "../fixtures/env-mcp-server.ts");
const TOKEN = "gitai-secret-mapping-token";
/** Set in this process (so in Gitai's): no tool server may see it. */
const PARENT_ONLY = "GITAI_SECRET_MAPPING_PARENT_ONLY";

describe("Gosuto secrets[]: a granted secret reaches only the MCP servers it names", () => {
  // Unique per run: the servers' command lines carry it, so this test finds its own processes and nobody else's.
  const run = randomBytes(4).toString("hex");
  const acp = new AcpClient({ retries: 0 });
  let gitai: Gitai;
  let dataDir: string;
  let ep: AcpEndpoint;

  const status = () => acp.status(ep, "test") as Promise<AcpStatus>;
  const server = async (name: string) => (await status()).mcps.find((m) => m.name === name);
  /** The processes of a server: none while it waits, one while it runs (two for a moment while one replaces another). */
  const pidsOf = (name: string): number[] => {
    const found = spawnSync("pgrep", ["-f", `mapping-${run}-${name}$`], { encoding: "utf8" });
    if (found.status !== 0 && found.status !== 1) throw new Error(`pgrep failed: ${found.stderr}`);
    return found.stdout.trim().split("\n").filter(Boolean).map(Number);
  };
  const pidOf = (name: string): number => {
    const pids = pidsOf(name);
    assert.equal(pids.length, 1, `one process for ${name}: ${pids.join(", ")}`);
    return pids[0]!;
  };
  /** Its one process is another than `old`. */
  const replaced = (name: string, old: number) => {
    const pids = pidsOf(name);
    return pids.length === 1 && pids[0] !== old;
  };
  /** What the server's process was started with: its environment, from the kernel. */
  const envOf = (pid: number) =>
    Object.fromEntries(
      readFileSync(`/proc/${pid}/environ`, "utf8")
        .split("\0")
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
    );
  const running = async (name: string) => (await server(name))?.state === "running";

  const config = () => {
    const mcp = (name: string) => `    - {name: ${name}, command: ${process.execPath}, args: ["${FIXTURE}", "mapping-${run}-${name}"]}\n`;
    const text = `apiVersion: ruriko.dev/v1alpha1
kind: Gosuto
metadata: {name: mapper}
spec:
  mcps:
${mcp("search")}${mcp("wiki")}${mcp("plain")}  secrets:
    - {name: search-key, envVar: SEARCH_KEY, mcps: [search, wiki]}
    - {name: wiki-token, envVar: WIKI_TOKEN, mcps: [wiki]}
  capabilities:
    - {name: deny-all, allow: false}
`;
    const [obj] = parseManifestFile("g.yaml", Buffer.from(text)).objects;
    assert.ok(obj, text);
    return { gosuto: stringify(obj.object), digest: obj.digest };
  };
  const grant = (secrets: Record<string, string>) => acp.putSecrets(ep, { secrets, versions: Object.fromEntries(Object.keys(secrets).map((k) => [k, 1])), digest: digestOf(secrets) }, "t");

  before(async () => {
    process.env[PARENT_ONLY] = "never-for-tools";
    dataDir = mkdtempSync(join(tmpdir(), "gitai-secret-mapping-"));
    writeFileSync(join(dataDir, "acp-token"), TOKEN, { mode: 0o600 });
    gitai = await startGitai({ host: "127.0.0.1", port: 0, agent: "mapper", dataDir, logger: createLogger({ level: "silent", pretty: false }), parts: { mcp: { startTimeoutMs: 30_000 } } });
    ep = { agent: "mapper", baseUrl: `http://127.0.0.1:${gitai.port}`, token: TOKEN };
  });
  after(async () => {
    await gitai?.close();
    delete process.env[PARENT_ONLY];
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test("a server whose secret is not held yet is stopped and says which; the others start", async () => {
    await acp.putConfig(ep, config(), "t");
    await waitFor(async () => (await running("plain")) && (await server("search"))?.state === "stopped" && (await server("wiki"))?.state === "stopped", "plain running, the others waiting", 60_000);
    const s = await status();
    assert.deepEqual(
      s.mcps.map((m) => [m.name, m.state, m.lastError]),
      [
        ["plain", "running", null],
        ["search", "stopped", "waiting for secret search-key"],
        ["wiki", "stopped", "waiting for secrets search-key, wiki-token"],
      ],
    );
    assert.deepEqual([pidsOf("search"), pidsOf("wiki")], [[], []], "a server waiting for its secret has no process");
  });

  test("as secrets arrive, each server starts once it holds all of its own, with exactly its own", async () => {
    const plainPid = pidOf("plain");
    await grant({ "search-key": "sk-search-1" });
    await waitFor(async () => running("search"), "search started with its secret", 60_000);
    assert.deepEqual([(await server("wiki"))?.state, (await server("wiki"))?.lastError], ["stopped", "waiting for secret wiki-token"]);

    await grant({ "search-key": "sk-search-1", "wiki-token": "wt-1", "unmapped-key": "never-in-a-server" });
    await waitFor(async () => running("wiki"), "wiki started once both its secrets arrived", 60_000);
    assert.equal(pidOf("plain"), plainPid, "a server no secret maps to is untouched");

    const env = { search: envOf(pidOf("search")), wiki: envOf(pidOf("wiki")), plain: envOf(pidOf("plain")) };
    assert.deepEqual([env.search.SEARCH_KEY, env.search.WIKI_TOKEN], ["sk-search-1", undefined]);
    assert.deepEqual([env.wiki.SEARCH_KEY, env.wiki.WIKI_TOKEN], ["sk-search-1", "wt-1"]);
    assert.deepEqual([env.plain.SEARCH_KEY, env.plain.WIKI_TOKEN], [undefined, undefined]);
    for (const [name, e] of Object.entries(env)) {
      assert.equal(e[PARENT_ONLY], undefined, `${name} never sees Gitai's own environment`);
      assert.ok(!Object.values(e).includes("never-in-a-server"), `${name} never sees a secret mapped to no server`);
      assert.ok(!Object.values(e).includes(TOKEN), `${name} never sees the ACP token`);
    }
    // Granted but mapped nowhere: still held and listed (the SecretBinding grants; the Gosuto only routes).
    assert.deepEqual((await status()).secrets?.map((x) => x.name), ["search-key", "unmapped-key", "wiki-token"]);
  });

  test("rotating a secret restarts exactly the servers it is mapped to, with the new value", async () => {
    const before = { search: pidOf("search"), wiki: pidOf("wiki"), plain: pidOf("plain") };
    await grant({ "search-key": "sk-search-1", "wiki-token": "wt-2", "unmapped-key": "never-in-a-server" });
    await waitFor(async () => (await running("wiki")) && replaced("wiki", before.wiki), "wiki restarted", 60_000);
    assert.equal(envOf(pidOf("wiki")).WIKI_TOKEN, "wt-2");
    assert.deepEqual([pidOf("search"), pidOf("plain")], [before.search, before.plain], "servers that do not use wiki-token keep running");

    const wiki = pidOf("wiki");
    await grant({ "search-key": "sk-search-2", "wiki-token": "wt-2", "unmapped-key": "rotated-but-unmapped" });
    await waitFor(
      async () => (await running("search")) && (await running("wiki")) && replaced("search", before.search) && replaced("wiki", wiki),
      "search and wiki restarted",
      60_000,
    );
    assert.deepEqual([envOf(pidOf("search")).SEARCH_KEY, envOf(pidOf("wiki")).SEARCH_KEY], ["sk-search-2", "sk-search-2"]);
    assert.equal(pidOf("plain"), before.plain, "the unmapped secret's rotation restarted nothing");
  });

  test("a secret taken away stops its servers again, waiting for it", async () => {
    await grant({ "search-key": "sk-search-2" });
    await waitFor(async () => (await server("wiki"))?.state === "stopped", "wiki stopped", 60_000);
    assert.equal((await server("wiki"))?.lastError, "waiting for secret wiki-token");
    await waitFor(async () => pidsOf("wiki").length === 0, "wiki's process gone", 30_000);
    assert.ok(await running("search"));
  });
});
