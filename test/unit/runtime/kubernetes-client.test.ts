/**
 * The Kubernetes client loaded without the API groups and models Ruriko never uses: the trims recognise the
 * installed client's generated files (a client upgrade that changes them fails here, not silently in memory), and
 * what is loaded still works: requests of the kept groups, responses deserialized into the client's models.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { AppsV1Api, CoreV1Api, KubeConfig, untrimmed } from "../../../src/runtime/kubernetes-client.ts";
import { lazyModels, trimIndex, trimObjectParamApi, trimObservableApi } from "../../../src/runtime/kubernetes-client-trim.ts";
import { loopbackKubeConfigOptions } from "../../helpers/kube-loopback.ts";

const GEN = join(dirname(createRequire(import.meta.url).resolve("@kubernetes/client-node")), "gen");
const read = (file: string) => readFileSync(join(GEN, file), "utf8");
const GROUPS = ["CoreV1", "AppsV1"];

describe("the trims, on the installed client's generated files", () => {
  test("gen/index.js: no models, only the kept groups' API classes", () => {
    const out = trimIndex(read("index.js"), GROUPS)!;
    assert.ok(out, "recognised");
    assert.doesNotMatch(out, /models\/all\.js/);
    assert.match(out, /export \{ ObjectCoreV1Api as CoreV1Api, ObjectAppsV1Api as AppsV1Api \} from '\.\/types\/ObjectParamAPI\.js';/);
    assert.match(out, /createConfiguration/);
    assert.doesNotMatch(out, /BatchV1Api/);
  });

  test("ObservableAPI.js and ObjectParamAPI.js: the kept groups' sections only", () => {
    const observable = trimObservableApi(read("types/ObservableAPI.js"), GROUPS)!;
    assert.ok(observable, "recognised");
    assert.deepEqual([...observable.matchAll(/from "\.\.\/apis\/(\w+)\.js"/g)].map((m) => m[1]).sort(), ["AppsV1Api", "CoreV1Api"]);
    assert.match(observable, /^import \{ mergeConfiguration \} from '\.\.\/configuration\.js';/, "the file's own imports stay");
    const object = trimObjectParamApi(read("types/ObjectParamAPI.js"), GROUPS)!;
    assert.ok(object, "recognised");
    assert.deepEqual([...object.matchAll(/^export class (\w+)/gm)].map((m) => m[1]).sort(), ["ObjectAppsV1Api", "ObjectCoreV1Api"]);
    assert.ok(observable.length + object.length < (read("types/ObservableAPI.js").length + read("types/ObjectParamAPI.js").length) / 3);
  });

  test("ObjectSerializer.js: no model imported at load, each one named in the lazy type map", () => {
    const source = read("models/ObjectSerializer.js");
    const out = lazyModels(source)!;
    assert.ok(out, "recognised");
    assert.doesNotMatch(out, /^(import|export) .* from '\.\.\/models\//m);
    const models = [...source.matchAll(/^import \{ (\w+) \} from '\.\.\/models\/\w+\.js';$/gm)].length;
    assert.ok(models > 700);
    assert.equal(Object.keys(JSON.parse(/^for \(const \[key, \[file, name\]\] of Object\.entries\((.*)\)\) \{$/m.exec(out)![1]!) as object).length, models);
  });

  test("text of another shape is left alone (loaded whole)", () => {
    assert.equal(trimIndex("export * from './x.js';", GROUPS), undefined);
    assert.equal(trimObservableApi("export class X {}", GROUPS), undefined);
    assert.equal(trimObjectParamApi(read("types/ObjectParamAPI.js"), ["NoSuchV1"]), undefined);
    assert.equal(lazyModels("let typeMap = {};"), undefined);
    // A model still named outside the type map would be an undefined binding once its import is gone.
    assert.equal(lazyModels(read("models/ObjectSerializer.js") + "\nconsole.log(V1Pod);\n"), undefined);
  });
});

test("loaded trimmed, the kept groups' calls work and their answers are the client's models", async () => {
  assert.deepEqual(untrimmed, []);
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(`${req.method} ${req.url}`);
    res.setHeader("content-type", "application/json");
    const metadata = { name: "p", namespace: "ns", creationTimestamp: "2026-01-01T00:00:00Z" };
    res.end(JSON.stringify(req.url?.startsWith("/apis/apps") ? { kind: "StatefulSet", apiVersion: "apps/v1", metadata, spec: { replicas: 1, selector: {}, template: {} } } : { kind: "Pod", apiVersion: "v1", metadata }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const kc = new KubeConfig();
    kc.loadFromOptions(loopbackKubeConfigOptions((server.address() as { port: number }).port, "t"));
    const pod = await kc.makeApiClient(CoreV1Api).readNamespacedPod({ name: "p", namespace: "ns" });
    const sts = await kc.makeApiClient(AppsV1Api).readNamespacedStatefulSet({ name: "p", namespace: "ns" });
    assert.deepEqual(paths, ["GET /api/v1/namespaces/ns/pods/p", "GET /apis/apps/v1/namespaces/ns/statefulsets/p"]);
    // Deserialized by the model's attribute types (a Date), loaded when first met.
    assert.ok(pod.metadata?.creationTimestamp instanceof Date);
    assert.equal(sts.spec?.replicas, 1);
  } finally {
    server.close();
  }
});
