/**
 * The loader's store (src/api/object-store.ts): what goes in comes out the same — objects in their key order,
 * digests, what the checks of each found, positions (of a duplicate too) — in this thread or another.
 */
import assert from "node:assert/strict";
import { MessageChannel } from "node:worker_threads";
import { describe, test } from "node:test";
import { ObjectStore, objectsOf, fileDigestsOf, type StoredTree } from "../../../src/api/object-store.ts";
import { DEFAULT_PARSE_LIMITS, fileSources, parseManifestFile, type LoadedObject } from "../../../src/api/parse.ts";
import { checkObject } from "../../../src/api/references.ts";
import { sha256 } from "../../../src/api/digest.ts";

const FILES: Record<string, string> = {
  "a.yaml": `apiVersion: ruriko.dev/v1alpha1
kind: Gosuto
metadata: {name: g}
spec:
  gateways: [{name: hook, type: webhook}]
  persona: {systemPrompt: "Zé 日本 \\u00e9"}
---
apiVersion: ruriko.dev/v1alpha1
kind: Agent
metadata: {name: a}
spec: {image: "ruriko/gitai:0.1.0", gosuto: g, env: {Z: "1", A: "2"}}
`,
  "b.yaml": `apiVersion: ruriko.dev/v1alpha1
kind: SecretBinding
metadata: {name: b}
spec: {agent: a, secret: s}
---
apiVersion: ruriko.dev/v1alpha1
kind: SecretBinding
metadata: {name: b}
spec: {agent: a, secret: t}
`,
};

function fill(): { store: ObjectStore; loaded: LoadedObject[] } {
  const store = new ObjectStore();
  const loaded: LoadedObject[] = [];
  for (const [file, text] of Object.entries(FILES)) {
    const bytes = new TextEncoder().encode(text);
    const parsed = parseManifestFile(file, bytes);
    assert.deepEqual(parsed.errors, []);
    store.addFile(file, sha256(bytes), bytes);
    for (const object of parsed.objects) store.add(object, checkObject(object));
    loaded.push(...parsed.objects);
  }
  store.addFile("empty.yaml", sha256(""), undefined);
  return { store, loaded };
}

function assertSame(stored: readonly LoadedObject[], loaded: readonly LoadedObject[]): void {
  assert.equal(stored.length, loaded.length);
  stored.forEach((s, i) => {
    const l = loaded[i]!;
    assert.deepEqual([s.key, s.kind, s.name, s.digest, s.source.file], [l.key, l.kind, l.name, l.digest, l.source.file]);
    assert.equal(JSON.stringify(s.object), JSON.stringify(l.object), "the same content, keys in the same order");
    assert.deepEqual(s.checks, checkObject(l));
    for (const path of [undefined, "spec", "metadata.name"]) assert.deepEqual(s.source.locate(path), l.source.locate(path), `${s.key} ${path}`);
  });
}

describe("the object store", () => {
  test("gives back what was added", () => {
    const { store, loaded } = fill();
    const contents = store.contents();
    assertSame(objectsOf(contents, fileSources(DEFAULT_PARSE_LIMITS)), loaded);
    assert.deepEqual([...fileDigestsOf(contents).keys()], ["a.yaml", "b.yaml", "empty.yaml"]);
    assert.equal(fileDigestsOf(contents).get("empty.yaml"), sha256(""));
  });

  test("a duplicate in one file is found at its own document", () => {
    const objects = objectsOf(fill().store.contents(), fileSources(DEFAULT_PARSE_LIMITS));
    const [first, second] = objects.filter((o) => o.key === "SecretBinding/b");
    assert.deepEqual(first!.source.locate("spec.secret"), { line: 4, column: 18 });
    assert.deepEqual(second!.source.locate("spec.secret"), { line: 9, column: 18 });
  });

  test("reading an object again gives the same content, however many were read in between", () => {
    const objects = objectsOf(fill().store.contents(), fileSources(DEFAULT_PARSE_LIMITS));
    const before = objects.map((o) => JSON.stringify(o.object));
    for (let round = 0; round < 3; round++) for (const o of objects) assert.equal(o.object.kind, o.kind);
    assert.deepEqual(objects.map((o) => JSON.stringify(o.object)), before);
  });

  test("crosses to another thread with its buffers transferred, not copied", async () => {
    const { store, loaded } = fill();
    const contents = store.contents();
    const { port1, port2 } = new MessageChannel();
    const received = new Promise<StoredTree>((resolve) => port2.once("message", resolve));
    port1.postMessage(contents, contents.chunks);
    const there = await received;
    port1.close();
    assert.equal(contents.chunks[0]!.byteLength, 0, "transferred away");
    assertSame(objectsOf(there, fileSources(DEFAULT_PARSE_LIMITS)), loaded);
  });

  test("holds an object larger than a chunk", () => {
    const store = new ObjectStore();
    const prompt = "é".repeat(400_000);
    const text = `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: big}\nspec: {persona: {systemPrompt: "${prompt}"}}\n`;
    const bytes = new TextEncoder().encode(text);
    const parsed = parseManifestFile("big.yaml", bytes);
    store.addFile("big.yaml", sha256(bytes), bytes);
    store.add(parsed.objects[0]!, checkObject(parsed.objects[0]!));
    assertSame(objectsOf(store.contents(), fileSources(DEFAULT_PARSE_LIMITS)), parsed.objects);
  });
});
