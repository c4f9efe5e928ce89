/**
 * Agents under control, on real containers running real Gitai: Gosuto and secrets pushed over ACP,
 * applied without recreating the container, pushed again after a container restart, rotated, unbound; refusals;
 * and at the end, no secret value anywhere it must not be.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { AcpError} from "../../src/acp/client.ts";
import { AcpClient, type AcpEndpoint } from "../../src/acp/client.ts";
import type { AcpStatus } from "../../src/api/generated/types.ts";
import { loadSnapshotFromDirectory } from "../../src/api/load.ts";
import { buildAgentImage } from "../../src/runtime/agent-image.ts";
import { isAwaitingApproval, isReady, startTestController, waitFor, type TestController } from "../helpers/controller-harness.ts";
import { writeTree } from "../helpers/manifest-tree.ts";
import { stringify } from "yaml";

const SECRET_V1 = "sk-first-9b8e41c0d5";
const SECRET_V2 = "sk-second-27aa3f61ee";
const STRICT_IMAGE = "ruriko/gitai:strict-test";

const gosuto = (name: string, prompt: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec:\n  persona: {systemPrompt: ${JSON.stringify(prompt)}}\n`;
const agent = (name: string, image = "ruriko/gitai:dev") => `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec: {image: ${JSON.stringify(image)}, gosuto: ${name}}\n`;
const binding = (name: string, agentName: string, secret: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: SecretBinding\nmetadata: {name: ${name}}\nspec: {agent: ${agentName}, secret: ${secret}, env: OPENAI_API_KEY}\n`;

describe("agents under control over ACP (real Docker, real Gitai)", () => {
  let h: TestController;
  let dir: string;
  const acp = new AcpClient({ retries: 1 });

  const endpoint = async (name: string): Promise<AcpEndpoint> => {
    const [c] = await h.containersOf(name);
    const port = c?.Ports.find((p) => p.IP === "127.0.0.1")?.PublicPort;
    assert.ok(port, `${name} publishes its control port`);
    return { agent: name, baseUrl: `http://127.0.0.1:${port}`, token: h.vault.tokens.get(name)! };
  };
  const agentStatus = async (name: string): Promise<AcpStatus> => acp.status(await endpoint(name), "test");
  const offer = async () => h.offer(dir);
  const gosutoDigest = async (name: string) => (await loadSnapshotFromDirectory(dir)).objects.get(`Gosuto/${name}`)!.digest;

  before(async () => {
    h = await startTestController({ agentPollMs: 1000 });
    dir = writeTree({ "alpha.yaml": `${gosuto("alpha", "be brief")}---\n${agent("alpha")}`, "alpha-openai.yaml": binding("alpha-openai", "alpha", "openai-key") });
  });
  after(async () => {
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("create → Gosuto applied → edited without recreation → pushed again after a restart → rotate → unbind", async () => {
    h.vault.secrets.set("openai-key", Buffer.from(SECRET_V1));
    await offer();

    // Granting a secret waits for approval by default; the Gosuto is applied meanwhile.
    const parked = await h.waitForStatus("alpha", isAwaitingApproval, "the grant parked");
    assert.match(parked!.conditions.find((c) => c.type === "AwaitingApproval")!.message, /grant secret openai-key to agent alpha/);
    assert.equal((await agentStatus("alpha")).gosutoDigest, await gosutoDigest("alpha"));
    assert.deepEqual((await agentStatus("alpha")).secrets, []);
    const [grant] = h.state.approvals.list({ status: "pending" });
    h.state.approvals.vote(grant!.id, { approver: "cli:test", decision: "approve", source: "cli", override: true });

    const ready = await h.waitForStatus("alpha", isReady, "Ready after the grant");
    let inside = await agentStatus("alpha");
    assert.deepEqual(inside.secrets, [{ name: "openai-key", version: 1 }]);
    assert.equal(ready!.gosutoDigest, inside.gosutoDigest);
    assert.equal(ready!.secretsDigest, inside.secretsDigest);
    const containerId = ready!.containerId!;

    // Edit the Gosuto: applied over ACP, same container.
    writeFileSync(join(dir, "alpha.yaml"), `${gosuto("alpha", "be thorough")}---\n${agent("alpha")}`);
    await offer();
    const edited = await gosutoDigest("alpha");
    await h.waitForStatus("alpha", (s) => isReady(s) && s?.gosutoDigest === edited, "the edited Gosuto applied");
    assert.equal((await agentStatus("alpha")).gosutoDigest, edited);
    assert.equal(h.state.status.get("alpha")!.containerId, containerId, "not recreated");
    assert.equal((await h.containersOf("alpha")).length, 1);

    // Drift inside the agent (someone PUTs another config behind Ruriko's back): found by the /status poll, undone.
    const other = await loadSnapshotFromDirectory(writeTree({ "x.yaml": gosuto("alpha", "rogue prompt") }));
    const rogue = other.objects.get("Gosuto/alpha")!;
    await acp.putConfig(await endpoint("alpha"), { gosuto: stringify(rogue.object), digest: rogue.digest }, "rogue");
    assert.equal((await agentStatus("alpha")).gosutoDigest, rogue.digest);
    await waitFor(async () => (await agentStatus("alpha")).gosutoDigest === edited, "the drifted Gosuto put back", 30_000);

    // Restart the container: the agent kept nothing on its volume (a tool could rewrite it); it is handed a new
    // token, and its Gosuto and secrets are pushed again — without asking anyone: they were approved.
    const configures = () => h.state.audit.forTarget("Agent/alpha", 500).filter((e) => e.action === "agent.configure").length;
    const configuresBefore = configures();
    const startedBefore = inside.startedAt;
    await h.docker.getContainer(containerId).restart({ t: 5 });
    await waitFor(async () => {
      try {
        inside = await agentStatus("alpha");
        return inside.startedAt !== startedBefore && inside.secrets.length === 1 && inside.gosutoDigest === edited;
      } catch {
        return false;
      }
    }, "Gosuto and secrets pushed again after the restart", 60_000);
    assert.equal(configures(), configuresBefore + 1, "the Gosuto pushed again, once");
    assert.equal(h.state.status.get("alpha")!.containerId, containerId);
    assert.equal(h.state.approvals.list({ status: "pending" }).length, 0);

    // Rotate: the new version reaches the agent, no restart.
    h.vault.secrets.set("openai-key", Buffer.from(SECRET_V2), "rotate");
    await waitFor(async () => (await agentStatus("alpha")).secrets[0]?.version === 2, "version 2 delivered", 30_000);
    assert.equal((await agentStatus("alpha")).startedAt, inside.startedAt, "no restart for a rotation");

    // Unbind: gone from the agent.
    rmSync(join(dir, "alpha-openai.yaml"));
    await offer();
    await waitFor(async () => (await agentStatus("alpha")).secrets.length === 0, "the secret removed from the agent", 30_000);
    const audit = h.state.audit.forTarget("Agent/alpha", 500).filter((e) => e.action === "agent.secrets");
    assert.ok(audit.some((e) => JSON.stringify(e.payload).includes('"revoked":["openai-key"]')));
    assert.ok(audit.some((e) => JSON.stringify(e.payload).includes('{"name":"openai-key","version":2}')));
  });

  test("an agent holding another token than Ruriko's (state restored from a backup) is restarted to take a new one", async () => {
    const before = await agentStatus("alpha");
    const held = h.vault.tokens.get("alpha")!;
    h.vault.tokens.issue("alpha", new Date()); // what an older backup of the state database would hold instead
    h.controller.queue.add("alpha", "t-token");
    await waitFor(async () => {
      try {
        const now = await agentStatus("alpha");
        return now.startedAt !== before.startedAt && now.gosutoDigest === before.gosutoDigest;
      } catch {
        return false;
      }
    }, "the agent restarted with the new token, its Gosuto pushed again", 60_000);
    await assert.rejects(acp.status({ ...(await endpoint("alpha")), token: held }, "t-old"), (e: AcpError) => e.httpStatus === 401, "the old token is refused");
    assert.ok(h.state.audit.forTarget("Agent/alpha", 50).some((e) => e.action === "agent.token.restart"));
    await h.waitForStatus("alpha", isReady, "Ready");
  });

  test("the real agent answers a wrong token with 401 and an oversized body with 413", async () => {
    const ep = await endpoint("alpha");
    await assert.rejects(acp.status({ ...ep, token: "not-the-token" }, "t"), (e: AcpError) => e.httpStatus === 401);
    const res = await fetch(`${ep.baseUrl}/config`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ep.token}`, "content-type": "application/json" },
      body: JSON.stringify({ gosuto: "x".repeat(1536 * 1024), digest: "sha256:" + "0".repeat(64) }),
    });
    assert.equal(res.status, 413);
  });

  test("a Gosuto the agent refuses (a stricter runtime) → 422 → Stalled with the agent's words, old config kept", async () => {
    // An agent runtime whose schema caps the system prompt: the manifests pass Ruriko, the agent refuses.
    const schema = JSON.parse(readFileSync(new URL("../../schemas/gosuto.schema.json", import.meta.url), "utf8")) as { properties: { spec: { properties: { persona: { properties: { systemPrompt: Record<string, unknown> } } } } } };
    schema.properties.spec.properties.persona.properties.systemPrompt = { type: "string", maxLength: 12 };
    await buildAgentImage(h.docker, STRICT_IMAGE, [{ path: "schemas/gosuto.schema.json", content: JSON.stringify(schema) }]);
    writeFileSync(join(dir, "beta.yaml"), `${gosuto("beta", "short")}---\n${agent("beta", STRICT_IMAGE)}`);
    await offer();
    await h.waitForStatus("beta", isReady, "beta Ready with a short prompt");
    const applied = (await agentStatus("beta")).gosutoDigest;

    writeFileSync(join(dir, "beta.yaml"), `${gosuto("beta", "a prompt far longer than twelve characters")}---\n${agent("beta", STRICT_IMAGE)}`);
    await offer();
    const stalled = await h.waitForStatus("beta", (s) => !!s?.conditions.some((c) => c.type === "Stalled" && c.status === "True"), "Stalled on the refusal");
    const condition = stalled!.conditions.find((c) => c.type === "Stalled")!;
    assert.equal(condition.reason, "GosutoRefused");
    assert.match(condition.message, /spec\.persona\.systemPrompt: must NOT have more than 12 characters/);
    assert.match(stalled!.lastError ?? "", /systemPrompt/);
    assert.equal((await agentStatus("beta")).gosutoDigest, applied, "the previous config stays in force");
  });

  test("the MCP servers the templates name are in the image and start: each lists its tools", async () => {
    const tools = `apiVersion: ruriko.dev/v1alpha1
kind: Gosuto
metadata: {name: tools}
spec:
  mcps:
    - {name: search, command: brave-search-mcp-server}
    - {name: fetch, command: mcp-fetch-server}
    - {name: browser, command: playwright-mcp, args: ["--headless", "--isolated"]}
    - {name: web, command: gitai-http-tool}
  secrets:
    - {name: brave-key, envVar: BRAVE_API_KEY, mcps: [search]}
`;
    h.vault.secrets.set("brave-key", Buffer.from("BSA-not-a-real-key"));
    writeFileSync(join(dir, "tools.yaml"), `${tools}---\n${agent("tools")}---\n${binding("tools-brave", "tools", "brave-key").replace(", env: OPENAI_API_KEY", "")}`);
    await offer();
    await h.waitForStatus("tools", isAwaitingApproval, "the grant parked");
    const [grant] = h.state.approvals.list({ status: "pending", agent: "tools" });
    h.state.approvals.vote(grant!.id, { approver: "cli:test", decision: "approve", source: "cli", override: true });
    h.controller.flushStateChanges();
    await waitFor(async () => {
      const mcps = (await agentStatus("tools").catch(() => undefined))?.mcps ?? [];
      return mcps.length === 4 && mcps.every((m) => m.state === "running");
    }, "every server running", 90_000);
    const mcps = (await agentStatus("tools")).mcps;
    for (const m of mcps) assert.ok((m.tools ?? 0) > 0, `${m.name} lists tools`);
    assert.ok(mcps.find((m) => m.name === "browser")!.tools! > 5, "playwright lists its browser tools (it has no browser to run them with)");
  });

  test("Gitai stops cleanly on SIGTERM", async () => {
    const [c] = await h.containersOf("alpha");
    const container = h.docker.getContainer(c!.Id);
    const exited = container.wait() as Promise<{ StatusCode: number }>;
    await container.stop({ t: 20 });
    assert.equal((await exited).StatusCode, 0, "exit code 0, not killed after the grace period");
    assert.match((await container.logs({ stdout: true, stderr: true })).toString("utf8"), /"signal":"SIGTERM".*"msg":"shutting down"/);
  });

  test("no secret value or token anywhere: logs, state database, docker inspect, container logs, audit log", async () => {
    const tokens = ["alpha", "beta"].map((a) => h.vault.tokens.get(a)!).filter(Boolean);
    assert.equal(tokens.length, 2);
    const needles = [SECRET_V1, SECRET_V2, ...tokens];
    const haystacks: Array<[string, string]> = [["controller log", readFileSync(h.logFile, "utf8")]];
    for (const file of ["ruriko.sqlite", "ruriko.sqlite-wal"]) {
      haystacks.push([file, readFileSync(join(h.stateDir, file), { flag: "a+" }).toString("latin1")]);
    }
    for (const c of await h.containersOf()) {
      const container = h.docker.getContainer(c.Id);
      haystacks.push([`docker inspect ${c.Names[0]}`, JSON.stringify(await container.inspect())]);
      haystacks.push([`docker logs ${c.Names[0]}`, (await container.logs({ stdout: true, stderr: true })).toString("latin1")]);
    }
    haystacks.push(["audit log", JSON.stringify(h.state.audit.tail(10_000))]);
    assert.ok(haystacks[0]![1].includes("secrets delivered"), "the log is the real one");
    for (const [where, text] of haystacks) {
      for (const needle of needles) assert.ok(!text.includes(needle), `${where} must not contain a secret or token`);
    }
  });
});
