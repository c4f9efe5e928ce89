/** The Docker client serve uses: dockerode whole, except the two transports it loads and Ruriko never uses. */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { test } from "node:test";
import { openDockerClient } from "../../../src/runtime/docker-client.ts";

test("dockerode is loaded without ssh2 and gRPC, and asking for either says it is not supported", async () => {
  const docker = await openDockerClient();
  assert.equal(typeof docker.listContainers, "function");
  const loaded = Object.keys(createRequire(import.meta.url).cache);
  assert.ok(loaded.some((f) => f.includes("/node_modules/dockerode/")), "dockerode itself is loaded");
  assert.ok(loaded.some((f) => f.includes("/node_modules/docker-modem/")), "and its modem");
  for (const unused of ["/node_modules/ssh2/", "/node_modules/@grpc/grpc-js/", "/node_modules/@grpc/proto-loader/"]) {
    assert.ok(!loaded.some((f) => f.includes(unused)), `${unused} is not loaded`);
  }
  const Client = docker.constructor as new (options: object) => typeof docker;
  await assert.rejects(new Client({ protocol: "ssh", host: "docker.example" }).version(), /Docker over SSH is not supported by Ruriko/);
});
