/** Proves the harness: a real container through dockerode, and a real message between two Synapse users. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClient, Direction } from "matrix-js-sdk";
import { logger as sdkLogger } from "matrix-js-sdk/lib/logger.js";
import { ensureAgentImage, TEST_AGENT_IMAGE } from "../helpers/controller-harness.ts";
import { cleanupTestResources, dockerClient, testLabels } from "../helpers/docker.ts";
import { startSynapse, type SynapseHandle } from "../helpers/synapse.ts";

(sdkLogger as unknown as { setLevel(level: string): void }).setLevel("warn");

describe("harness: Docker", () => {
  after(async () => cleanupTestResources(await dockerClient()));

  test("a container from the locally built image starts, answers on 127.0.0.1 and stops", async () => {
    const docker = await dockerClient();
    await ensureAgentImage(docker);
    const container = await docker.createContainer({
      Image: TEST_AGENT_IMAGE,
      Labels: testLabels(),
      ExposedPorts: { "8765/tcp": {} },
      HostConfig: { PortBindings: { "8765/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] } },
    });
    await container.start();
    const port = Number((await container.inspect()).NetworkSettings.Ports["8765/tcp"]![0]!.HostPort);
    let body: unknown;
    for (let i = 0; i < 100 && body === undefined; i++) {
      body = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.json(), () => undefined);
      if (body === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(body, { status: "ok" });
    await container.stop({ t: 5 });
    const state = (await container.inspect()).State;
    assert.equal(state.Running, false);
    assert.equal(state.ExitCode, 0);
  });
});

describe("harness: Synapse", () => {
  let synapse: SynapseHandle;
  before(async () => {
    synapse = await startSynapse();
  });
  after(async () => synapse?.stop());

  test("a message sent by one registered user is read by another", async () => {
    const alice = await synapse.registerUser("alice");
    const bob = await synapse.registerUser("bob");
    assert.equal(alice.userId, "@alice:localhost");
    const a = createClient({ baseUrl: synapse.baseUrl, accessToken: alice.accessToken, userId: alice.userId });
    const b = createClient({ baseUrl: synapse.baseUrl, accessToken: bob.accessToken, userId: bob.userId });
    const { room_id: roomId } = await a.createRoom({ name: "smoke", invite: [bob.userId] });
    await b.joinRoom(roomId);
    const { event_id: eventId } = await a.sendTextMessage(roomId, "hello from alice");
    const page = await b.createMessagesRequest(roomId, null, 20, Direction.Backward);
    const message = page.chunk.find((e) => e.event_id === eventId);
    assert.equal(message?.sender, alice.userId);
    assert.equal((message?.content as { body?: string }).body, "hello from alice");
  });
});
