/**
 * The agent poll as a probe (controller/agent-probe.ts), against a real agent in Docker: a quiet agent's answers
 * cost no reconcile (its status is not written again), and what changes inside the agent — a Gosuto put behind
 * Ruriko's back — is still found at the next poll and put right. The poll's timer is left far off; the test asks
 * for each round itself, so nothing depends on timing.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import { AcpClient, type AcpEndpoint } from "../../src/acp/client.ts";
import { loadSnapshotFromDirectory } from "../../src/api/load.ts";
import { isReady, startTestController, waitFor, type TestController } from "../helpers/controller-harness.ts";
import { agentYaml, GOSUTO_NEWSBOT, writeTree } from "../helpers/manifest-tree.ts";

describe("the agent probe", () => {
  let h: TestController;
  let dir: string;
  const acp = new AcpClient({ retries: 1 });
  const endpoint = async (): Promise<AcpEndpoint> => {
    const [c] = await h.containersOf("newsbot");
    const port = c?.Ports.find((p) => p.IP === "127.0.0.1")?.PublicPort;
    assert.ok(port, "the agent publishes its control port");
    return { agent: "newsbot", baseUrl: `http://127.0.0.1:${port}`, token: h.vault.tokens.get("newsbot")! };
  };
  /** One round of the poll, and whatever it enqueued carried out. */
  const pollRound = async () => {
    await h.controller.probeAgents();
    await h.controller.queue.idle();
  };

  before(async () => {
    h = await startTestController({ agentPollMs: 3_600_000 });
    dir = writeTree({ "gosutos/newsbot.yaml": GOSUTO_NEWSBOT, "agents/newsbot.yaml": agentYaml("newsbot") });
  });
  after(async () => {
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a quiet agent is asked, not reconciled; a Gosuto changed inside it is found and put back", async () => {
    await h.offer(dir);
    const ready = await h.waitForStatus("newsbot", isReady, "Ready");
    const applied = ready!.gosutoDigest;
    assert.ok(applied);
    // The first answer of a container is news once (the Matrix identity it holds was not known).
    await pollRound();
    const quiet = h.state.status.get("newsbot")!;
    await pollRound();
    await pollRound();
    assert.equal(h.state.status.get("newsbot")!.updatedAt, quiet.updatedAt, "two quiet polls wrote no status: no reconcile ran");

    const rogue = (await loadSnapshotFromDirectory(writeTree({ "g.yaml": GOSUTO_NEWSBOT.replace("deny-all", "rogue-rule") }))).objects.get("Gosuto/newsbot")!;
    assert.notEqual(rogue.digest, applied);
    await acp.putConfig(await endpoint(), { gosuto: stringify(rogue.object), digest: rogue.digest }, "rogue");
    assert.equal((await acp.status(await endpoint(), "test")).gosutoDigest, rogue.digest);
    await pollRound();
    await waitFor(async () => (await acp.status(await endpoint(), "test")).gosutoDigest === applied, "the applied Gosuto put back", 30_000);
    assert.ok(isReady(h.state.status.get("newsbot")));
  });
});
