/** Requests to the API server named as the API server names them, and each one counted as it is sent. */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";
import { AppsV1Api, CoreV1Api, KubeConfig, Watch } from "@kubernetes/client-node";
import { sharedConnections } from "../../../src/runtime/kubernetes-connections.ts";
import { countedRequests, requestKindOf, type ApiRequestKind } from "../../../src/runtime/kubernetes-requests.ts";
import { loopbackKubeConfigOptions } from "../../helpers/kube-loopback.ts";

const S = "https://127.0.0.1:6443";

test("verb and resource of each kind of path", () => {
  const cases: Array<[string, string, ApiRequestKind]> = [
    ["GET", `${S}/api/v1/namespaces/ns/pods?labelSelector=a%3Db`, { verb: "list", resource: "pods" }],
    ["GET", `${S}/api/v1/namespaces/ns/pods?watch=true&resourceVersion=5`, { verb: "watch", resource: "pods" }],
    ["GET", `${S}/api/v1/namespaces/ns/pods/agent-0`, { verb: "get", resource: "pods" }],
    ["POST", `${S}/api/v1/namespaces/ns/secrets`, { verb: "create", resource: "secrets" }],
    ["PUT", `${S}/api/v1/namespaces/ns/secrets/h`, { verb: "update", resource: "secrets" }],
    ["PATCH", `${S}/apis/apps/v1/namespaces/ns/statefulsets/s/scale`, { verb: "patch", resource: "statefulsets/scale" }],
    ["DELETE", `${S}/apis/apps/v1/namespaces/ns/statefulsets/s`, { verb: "delete", resource: "statefulsets" }],
    ["DELETE", `${S}/api/v1/namespaces/ns/persistentvolumeclaims`, { verb: "deletecollection", resource: "persistentvolumeclaims" }],
    ["GET", `${S}/api/v1/namespaces/ns/pods/p/portforward?ports=8765`, { verb: "get", resource: "pods/portforward" }],
    ["GET", `${S}/api/v1/namespaces/ns`, { verb: "get", resource: "namespaces" }],
    ["GET", `${S}/api/v1/nodes`, { verb: "list", resource: "nodes" }],
    ["GET", `${S}/api/v1`, { verb: "discovery", resource: "" }],
    ["GET", `${S}/apis/apps/v1`, { verb: "discovery", resource: "" }],
    ["GET", `${S}/version`, { verb: "discovery", resource: "" }],
    // A server under a path of its own (behind a management proxy); a method in lower case.
    ["get", `${S}/k8s/clusters/c-1/api/v1/namespaces/ns/pods`, { verb: "list", resource: "pods" }],
    ["POST", `${S}/k8s/clusters/c-1/apis/apps/v1/namespaces/ns/statefulsets`, { verb: "create", resource: "statefulsets" }],
  ];
  for (const [method, url, kind] of cases) assert.deepEqual(requestKindOf(method, url), kind, `${method} ${url}`);
});

test("the client's calls and watches are each counted once, and still reach the server with the user's token", async () => {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
    res.setHeader("content-type", "application/json");
    if (req.url?.includes("watch=true")) {
      res.end(`${JSON.stringify({ type: "ADDED", object: { metadata: { name: "p", resourceVersion: "2" } } })}\n`);
      return;
    }
    if (req.method === "POST") res.end(JSON.stringify({ apiVersion: "apps/v1", kind: "StatefulSet", metadata: { name: "s" } }));
    else res.end(JSON.stringify({ apiVersion: "v1", kind: "PodList", metadata: { resourceVersion: "1" }, items: [] }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const kc = new KubeConfig();
    kc.loadFromOptions(loopbackKubeConfigOptions((server.address() as { port: number }).port, "t0k"));
    const counted: ApiRequestKind[] = [];
    const config = sharedConnections(countedRequests(kc, (kind) => counted.push(kind)));
    await config.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: "ns" });
    await config.makeApiClient(AppsV1Api).createNamespacedStatefulSet({ namespace: "ns", body: { metadata: { name: "s" } } });
    await new Promise<void>((resolve, reject) => {
      void new Watch(config).watch("/api/v1/namespaces/ns/pods", {}, () => {}, (err) => (err ? reject(err) : resolve()));
    });
    assert.deepEqual(counted, [
      { verb: "list", resource: "pods" },
      { verb: "create", resource: "statefulsets" },
      { verb: "watch", resource: "pods" },
    ]);
    assert.equal(seen.length, 3);
    assert.ok(seen.every((s) => s.endsWith("Bearer t0k")), seen.join("\n"));
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
