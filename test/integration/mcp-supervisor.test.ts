/** The MCP supervisor with real MCP servers over stdio: environments, tool lists, calls, crashes, restarts. */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { McpSupervisor, type McpServerSpec } from "../../src/gitai/mcp/supervisor.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { waitFor } from "../helpers/controller-harness.ts";

const ROOT = join(import.meta.dirname, "../..");
const node = process.execPath;
const spec = (over: Partial<McpServerSpec> & { name: string }): McpServerSpec => ({ command: node, args: [join(ROOT, "test/fixtures/env-mcp-server.ts")], env: {}, autoRestart: true, waitingFor: [], ...over });
const logger = createLogger({ level: "silent", pretty: false });

describe("MCP supervisor (real servers over stdio)", () => {
  const supervisor = new McpSupervisor({ logger, restart: { baseMs: 50, maxMs: 200, jitter: 0 }, startTimeoutMs: 20_000, callTimeoutMs: 10_000, maxResultBytes: 200 });
  after(() => supervisor.stop());
  const state = (name: string) => supervisor.states().find((s) => s.name === name);

  test("a server sees only its own env and the secrets mapped to it — never Gitai's environment", async () => {
    process.env.GITAI_TEST_PARENT_ONLY = "leak";
    process.env.RURIKO_MATRIX_ACCESS_TOKEN = "syt_not_for_tools";
    try {
      await supervisor.apply([spec({ name: "env", env: { TZ: "UTC", API_KEY: "sk-mapped" } })]);
      await waitFor(() => state("env")?.state === "running", "running", 30_000);
      const names = await supervisor.call("env", "env_names", {});
      assert.ok(names.ok);
      const keys = names.text.split(",");
      assert.ok(keys.includes("TZ") && keys.includes("API_KEY"));
      assert.ok(!keys.includes("GITAI_TEST_PARENT_ONLY") && !keys.includes("RURIKO_MATRIX_ACCESS_TOKEN"), keys.join(","));
      assert.ok(keys.every((k) => ["TZ", "API_KEY", "HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"].includes(k)), `only the SDK's few defaults besides its own: ${keys.join(",")}`);
      assert.deepEqual(await supervisor.call("env", "env_value", { name: "API_KEY" }), { ok: true, text: "sk-mapped" });
      assert.deepEqual(state("env"), { name: "env", state: "running", tools: 4, restarts: 0, lastError: null });
      assert.deepEqual(supervisor.tools().map((t) => `${t.server}/${t.name}`).sort(), ["env/env_names", "env/env_value", "env/pid", "env/sleep"]);
    } finally {
      delete process.env.GITAI_TEST_PARENT_ONLY;
      delete process.env.RURIKO_MATRIX_ACCESS_TOKEN;
    }
  });

  test("a server killed from outside is restarted (autoRestart) and counted; a changed secret restarts only its server", async () => {
    await supervisor.apply([spec({ name: "env", env: { TZ: "UTC", API_KEY: "sk-mapped" } }), spec({ name: "other" })]);
    await waitFor(() => state("other")?.state === "running", "other running", 30_000);
    const pid = Number((await supervisor.call("env", "pid", {}) as { text: string }).text);
    const otherPid = (await supervisor.call("other", "pid", {}) as { text: string }).text;
    process.kill(pid, "SIGKILL");
    await waitFor(() => state("env")?.restarts === 1 && state("env")?.state === "running", "restarted", 30_000);
    assert.match(state("env")!.lastError ?? "", /exited/);
    assert.notEqual((await supervisor.call("env", "pid", {}) as { text: string }).text, String(pid));

    await supervisor.apply([spec({ name: "env", env: { TZ: "UTC", API_KEY: "sk-rotated" } }), spec({ name: "other" })]);
    await waitFor(() => state("env")?.state === "running", "env running with the new secret", 30_000);
    assert.deepEqual(await supervisor.call("env", "env_value", { name: "API_KEY" }), { ok: true, text: "sk-rotated" });
    assert.equal((await supervisor.call("other", "pid", {}) as { text: string }).text, otherPid, "a server whose definition did not change keeps running");
  });

  test("a command that does not exist, a server that dies at start, a server waiting for its secret: each says why", async () => {
    await supervisor.apply([
      spec({ name: "missing", command: "/nonexistent/mcp-server", autoRestart: false }),
      spec({ name: "crashing", command: node, args: ["-e", "console.error('boom: bad config'); process.exit(3)"], autoRestart: false }),
      spec({ name: "waiting", waitingFor: ["search-api-key"] }),
    ]);
    await waitFor(() => state("missing")?.state === "failed" && state("crashing")?.state === "failed", "both failed", 30_000);
    assert.equal(state("missing")!.lastError!, "cannot start: command /nonexistent/mcp-server not found");
    assert.match(state("crashing")!.lastError!, /boom: bad config/);
    assert.deepEqual([state("waiting")!.state, state("waiting")!.lastError], ["stopped", "waiting for secret search-api-key"]);
    assert.equal(state("env"), undefined, "a server no longer wanted is stopped and gone");
    assert.deepEqual(await supervisor.call("missing", "x", {}), { ok: false, error: "MCP server missing is failed: cannot start: command /nonexistent/mcp-server not found" });
    // The secret arrives (Gitai builds the spec again with it): the server starts.
    await supervisor.apply([spec({ name: "waiting", env: { SEARCH_KEY: "k-arrived" } })]);
    await waitFor(() => state("waiting")?.state === "running", "started once its secret arrived", 30_000);
  });

  test("a call that outlasts the call timeout fails with why; the server stays up and answers the next call", async () => {
    // Its own supervisor: a short call timeout, far longer than a call to a local process takes, far shorter than the sleep.
    const quick = new McpSupervisor({ logger, startTimeoutMs: 20_000, callTimeoutMs: 3_000 });
    try {
      await quick.apply([spec({ name: "slow" })]);
      await waitFor(() => quick.states()[0]?.state === "running", "running", 30_000);
      const pid = await quick.call("slow", "pid", {});
      assert.deepEqual(await quick.call("slow", "sleep", { ms: 600_000 }), { ok: false, error: "sleep did not answer within 3 s (the call timeout)" });
      assert.deepEqual(quick.states(), [{ name: "slow", state: "running", tools: 4, restarts: 0, lastError: null }]);
      assert.deepEqual(await quick.call("slow", "pid", {}), pid, "the same process answers the next call");
    } finally {
      await quick.stop();
    }
  });

  test("the shipped HTTP tool reads a loopback page; results are cut at the size cap; the real fetch server lists its tools", async () => {
    const page = createServer((_q, r) => r.end("x".repeat(1000))).listen(0, "127.0.0.1");
    await new Promise((r) => page.once("listening", r));
    const port = (page.address() as { port: number }).port;
    try {
      await supervisor.apply([
        { name: "http", command: node, args: [join(ROOT, "src/gitai/tools/http-tool.ts")], env: {}, autoRestart: true, waitingFor: [] },
        { name: "fetch", command: join(ROOT, "node_modules/.bin/mcp-fetch-server"), args: [], env: {}, autoRestart: false, waitingFor: [] },
      ]);
      await waitFor(() => state("http")?.state === "running" && state("fetch")?.state === "running", "both running", 60_000);
      const result = await supervisor.call("http", "http_get", { url: `http://127.0.0.1:${port}/` });
      assert.ok(result.ok);
      assert.match(result.text, /^HTTP 200/);
      assert.match(result.text, /\[result cut at 200 bytes of \d+\]$/);
      assert.ok(supervisor.tools().some((t) => t.server === "fetch" && t.name === "fetch_markdown"));
    } finally {
      page.close();
    }
  });
});
