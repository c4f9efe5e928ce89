/**
 * The model server a Gosuto names (persona.baseUrl), checked as the agent will see it when Ruriko delivers the
 * Gosuto: a loopback URL in bridge or network:NAME mode is the agent's own container, and the operator is told (the
 * log, the audit entry of the delivery). The delivery is the real one: Ruriko's agent sync against an in-process
 * Gitai's ACP server, into a real SQLite audit log.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { AcpClient } from "../../../src/acp/client.ts";
import type { AgentManifest } from "../../../src/api/generated/types.ts";
import { loadSnapshotFromDirectory } from "../../../src/api/load.ts";
import { desiredGosutoOf } from "../../../src/controller/agent-config.ts";
import { agentModelUrlOf } from "../../../src/controller/agent-network.ts";
import { AgentSync } from "../../../src/controller/agent-sync.ts";
import { startGitai, type Gitai } from "../../../src/gitai/gitai.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import type { AgentNetworkMode, ObservedContainer } from "../../../src/runtime/runtime.ts";
import { generateMasterKeyText } from "../../../src/secrets/crypto.ts";
import { openVault, type Vault } from "../../../src/secrets/vault.ts";
import { openState, type StateStores } from "../../../src/store/state.ts";
import { writeTree } from "../../helpers/manifest-tree.ts";

const gosuto = (baseUrl?: string) => ({ apiVersion: "ruriko.dev/v1alpha1", kind: "Gosuto", metadata: { name: "newsbot" }, spec: { persona: { systemPrompt: "hi", ...(baseUrl ? { baseUrl } : {}) } } });

describe("persona.baseUrl as the agent sees it", () => {
  test("host mode: loopback is the host's, as the operator means it", () => {
    assert.deepEqual(agentModelUrlOf("host", gosuto("http://127.0.0.1:11434/v1")), { url: "http://127.0.0.1:11434/v1" });
  });

  test("bridge and network:NAME: loopback is the agent's own container, and says so with what to do", () => {
    for (const mode of ["bridge", "network:agents"] as const) {
      const seen = agentModelUrlOf(mode, gosuto("http://localhost:11434/v1"))!;
      assert.equal(seen.url, "http://localhost:11434/v1", "handed over unchanged");
      assert.match(seen.problem!, new RegExp(`^persona.baseUrl http://localhost:11434/v1 is a loopback address: with --agent-network ${mode} an agent reaches its own container there, not this host's; name the model server as agents reach it`));
    }
  });

  test("a name on the agents' network, a public API, or none at all: nothing to say", () => {
    assert.deepEqual(agentModelUrlOf("network:agents", gosuto("http://ollama:11434/v1")), { url: "http://ollama:11434/v1" });
    assert.deepEqual(agentModelUrlOf("bridge", gosuto("https://api.openai.com/v1")), { url: "https://api.openai.com/v1" });
    assert.equal(agentModelUrlOf("bridge", gosuto()), undefined);
    assert.equal(agentModelUrlOf("bridge", { spec: {} }), undefined);
  });

  test("a credential in the URL is not repeated in the warning", () => {
    const seen = agentModelUrlOf("bridge", gosuto("http://user:s3cr3t-pw@127.0.0.1:8080/v1"))!;
    assert.equal(seen.url, "http://user:s3cr3t-pw@127.0.0.1:8080/v1");
    assert.doesNotMatch(seen.problem!, /s3cr3t/);
    assert.match(seen.problem!, /http:\/\/\*\*\*@127\.0\.0\.1:8080\/v1 is a loopback address/);
  });
});

describe("delivering a Gosuto whose model server is on loopback (a real Gitai over ACP)", () => {
  let stateDir: string;
  let dataDir: string;
  let state: StateStores;
  let vault: Vault;
  let gitai: Gitai;
  const lines: Array<{ level: number; msg: string }> = [];
  const log = createLogger({
    level: "info",
    pretty: false,
    destination: new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line) as { level: number; msg: string });
        cb();
      },
    }),
  });

  before(async () => {
    stateDir = mkdtempSync(join(tmpdir(), "ruriko-model-url-"));
    dataDir = mkdtempSync(join(tmpdir(), "gitai-model-url-"));
    state = openState(stateDir);
    vault = openVault(state, { stateDir, env: { RURIKO_MASTER_KEY: generateMasterKeyText() } });
    // Gitai takes its token from its data volume once, as Ruriko's runtime hands it over.
    writeFileSync(join(dataDir, "acp-token"), vault.tokens.issue("newsbot"), { mode: 0o600 });
    gitai = await startGitai({ host: "127.0.0.1", port: 0, agent: "newsbot", dataDir, logger: createLogger({ level: "silent", pretty: false }) });
  });
  after(async () => {
    await gitai?.close();
    state?.close();
    for (const dir of [stateDir, dataDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Delivers the Gosuto of `baseUrl` with the agent networked as `mode`; the audit entry of the delivery. */
  async function deliver(mode: AgentNetworkMode, baseUrl: string, traceId: string) {
    const dir = writeTree({ "newsbot.yaml": `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: newsbot}\nspec:\n  persona: {systemPrompt: "${traceId}", baseUrl: "${baseUrl}"}\n` });
    const manifest = { apiVersion: "ruriko.dev/v1alpha1", kind: "Agent", metadata: { name: "newsbot" }, spec: { image: "ruriko/gitai:test", gosuto: "newsbot" } } as AgentManifest;
    const desired = desiredGosutoOf(await loadSnapshotFromDirectory(dir), manifest)!;
    rmSync(dir, { recursive: true, force: true });
    const never = () => Promise.reject(new Error("the agent holds the token on record"));
    const sync = new AgentSync({
      acp: new AcpClient({ retries: 0 }),
      secrets: vault.secrets,
      tokens: vault.tokens,
      matrixAccounts: state.matrixAccounts,
      audit: state.audit,
      transaction: state.transaction,
      handOverToken: never,
      restartWithNewToken: never,
      agentNetwork: mode,
      agentStartGraceMs: 5000,
      now: () => new Date(),
    });
    // The observed container is reached at its 127.0.0.1 port in every mode (as one made before a mode switch is).
    const observed: ObservedContainer = { id: "in-process", name: "newsbot", agent: "newsbot", image: "ruriko/gitai:test", state: "running", exitCode: 0, oomKilled: false, specDigest: "", revision: "", controlHostPort: gitai.port };
    const synced = await sync.sync({ manifest, observed, applied: { gosuto: desired, matrixUserId: null, grants: [] }, bindings: [], bootWaitMs: 5000, traceId, log });
    assert.equal(synced.report?.gosutoDigest, desired.digest, "delivered");
    return state.audit.byTrace(traceId).find((e) => e.action === "agent.configure")!;
  }

  test("bridge: delivered, and the operator is told in the log and the audit entry", async () => {
    const entry = await deliver("bridge", "http://127.0.0.1:11434/v1", "model-bridge");
    assert.match(String(entry.payload.warning), /^persona.baseUrl http:\/\/127.0.0.1:11434\/v1 is a loopback address: with --agent-network bridge/);
    const warned = lines.filter((l) => l.level === 40 && l.msg.includes("persona.baseUrl"));
    assert.equal(warned.length, 1);
    assert.match(warned[0]!.msg, /^configure newsbot: Gosuto newsbot: persona.baseUrl http:\/\/127.0.0.1:11434\/v1 is a loopback address/);
  });

  test("host: the same URL is the host's; nothing to say", async () => {
    const before = lines.length;
    const entry = await deliver("host", "http://127.0.0.1:11434/v1", "model-host");
    assert.equal(entry.payload.warning, undefined);
    assert.equal(lines.slice(before).filter((l) => l.level === 40).length, 0);
  });
});
