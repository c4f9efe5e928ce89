/** The runtime's API calls share one connection pool; the credentials still go with every request. */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { sharedConnections } from "../../../src/runtime/kubernetes-connections.ts";
import { loopbackKubeConfigOptions } from "../../helpers/kube-loopback.ts";

test("sequential calls reuse the pool's connections (the client alone opens one per call), each with the user's token", async () => {
  let connections = 0;
  const authorizations: Array<string | undefined> = [];
  const server = createServer((req, res) => {
    authorizations.push(req.headers.authorization);
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ apiVersion: "v1", kind: "PodList", metadata: { resourceVersion: "1" }, items: [] }));
  });
  server.on("connection", () => connections++);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const kc = new KubeConfig();
    kc.loadFromOptions(loopbackKubeConfigOptions((server.address() as { port: number }).port, "t0k"));
    const core = sharedConnections(kc).makeApiClient(CoreV1Api);
    for (let i = 0; i < 10; i++) await core.listNamespacedPod({ namespace: "ns" });
    assert.equal(authorizations.length, 10);
    assert.deepEqual(new Set(authorizations), new Set(["Bearer t0k"]));
    // undici may open a second while the first is being released; never one per call.
    assert.ok(connections <= 2, `${connections} connections for 10 calls`);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test("a user with an exec plugin keeps the client's own connections (its certificates may change)", () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: "https://127.0.0.1:1" }],
    users: [{ name: "u", exec: { command: "true", apiVersion: "client.authentication.k8s.io/v1" } }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  assert.equal(sharedConnections(kc), kc);
});
