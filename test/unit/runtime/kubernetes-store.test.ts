/** The watch's store: newest object wins, deletions take only what was deleted, a list replaces all but newer writes. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { compareResourceVersions, ObjectStore } from "../../../src/runtime/kubernetes-store.ts";

const pod = (name: string, resourceVersion: string, uid = `uid-${name}`, agent = name): V1Pod => ({ metadata: { name, uid, resourceVersion, labels: { agent } } });
const byAgent = () => new ObjectStore<V1Pod>((p) => p.metadata?.labels?.agent);

describe("compareResourceVersions", () => {
  test("integers are ordered by value, not as text", () => {
    assert.ok(compareResourceVersions("9", "10")! < 0);
    assert.ok(compareResourceVersions("100", "99")! > 0);
    assert.equal(compareResourceVersions("42", "42"), 0);
  });
  test("anything else is unordered", () => {
    assert.equal(compareResourceVersions("a1", "2"), undefined);
    assert.equal(compareResourceVersions(undefined, "2"), undefined);
    assert.equal(compareResourceVersions("", ""), undefined);
  });
});

describe("ObjectStore", () => {
  test("a newer version replaces what is held; an older or the same one changes nothing", () => {
    const store = byAgent();
    assert.deepEqual(store.put(pod("a", "5")), { before: undefined, after: pod("a", "5") });
    assert.equal(store.put(pod("a", "4")), undefined, "a watch event behind Ruriko's own write");
    assert.equal(store.put(pod("a", "5")), undefined, "the watch delivering Ruriko's own write");
    const change = store.put(pod("a", "12"));
    assert.equal(change?.before?.metadata?.resourceVersion, "5");
    assert.equal(store.get("a")?.metadata?.resourceVersion, "12");
  });

  test("unordered versions: the one arriving is taken when it differs", () => {
    const store = byAgent();
    store.put(pod("a", "x1"));
    assert.ok(store.put(pod("a", "x0")));
    assert.equal(store.get("a")?.metadata?.resourceVersion, "x0");
  });

  test("a deletion takes the object of its uid only, not a newer one of the same name", () => {
    const store = byAgent();
    store.put(pod("a", "20", "new"));
    assert.equal(store.delete(pod("a", "15", "old")), undefined);
    assert.equal(store.get("a")?.metadata?.uid, "new");
    assert.equal(store.delete(pod("a", "21", "new"))?.before?.metadata?.uid, "new");
    assert.equal(store.get("a"), undefined);
    assert.equal(store.delete(pod("a", "22", "new")), undefined, "already gone");
  });

  test("read as absent: dropped only if what is held is still what the read began with", () => {
    const store = byAgent();
    const seen = pod("a", "3");
    store.put(seen);
    store.put(pod("a", "4"));
    assert.equal(store.forget("a", seen), undefined, "an event arrived during the read: newer than the read");
    assert.ok(store.get("a"));
    assert.ok(store.forget("a", store.get("a")));
    assert.equal(store.get("a"), undefined);
    assert.equal(store.forget("a", undefined), undefined);
  });

  test("a list replaces what is held, except objects written after the list was taken", () => {
    const store = byAgent();
    store.put(pod("gone", "3"));
    store.put(pod("kept", "4"));
    store.put(pod("written-after", "11"));
    const changes = store.replace([pod("kept", "4"), pod("new", "9")], "10");
    assert.deepEqual(
      changes.map((c) => `${c.before?.metadata?.name ?? "-"}→${c.after?.metadata?.name ?? "-"}`).sort(),
      ["-→new", "gone→-"],
    );
    assert.deepEqual([...store.values()].map((p) => p.metadata?.name).sort(), ["kept", "new", "written-after"]);
  });

  test("an index finds an agent's objects, and follows changes of the key", () => {
    const store = byAgent();
    store.put(pod("a-0", "1", "u1", "alpha"));
    store.put(pod("b-0", "1", "u2", "beta"));
    assert.deepEqual([...store.indexed("alpha")].map((p) => p.metadata?.name), ["a-0"]);
    store.put(pod("a-0", "2", "u1", "gamma"));
    assert.deepEqual([...store.indexed("alpha")], []);
    assert.deepEqual([...store.indexed("gamma")].map((p) => p.metadata?.name), ["a-0"]);
    store.delete(pod("a-0", "3", "u1", "gamma"));
    assert.deepEqual([...store.indexed("gamma")], []);
    store.replace([], "10");
    assert.deepEqual([...store.indexed("beta")], []);
    assert.equal(store.size, 0);
  });
});
