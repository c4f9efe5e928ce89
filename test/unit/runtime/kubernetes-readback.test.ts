/**
 * A StatefulSet Ruriko made, read back into the spec that made it (what `serve --adopt-orphans` does on Kubernetes):
 * the spec's digest again, from the template as the API server gives it back; anything edited since, not.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1StatefulSet } from "@kubernetes/client-node";
import type { AgentManifest } from "../../../src/api/generated/types.ts";
import { containerSpecFor } from "../../../src/controller/container-spec.ts";
import { specFromEngine } from "../../../src/controller/engine-adoption.ts";
import { statefulSetFor } from "../../../src/runtime/kubernetes-objects.ts";
import { workloadFacts } from "../../../src/runtime/kubernetes-readback.ts";
import type { ContainerSpec } from "../../../src/runtime/runtime.ts";

const options = { instance: "i1", dataVolumeSize: "1Gi" };
const manifest = (spec: Partial<AgentManifest["spec"]> = {}): AgentManifest =>
  ({ apiVersion: "ruriko.dev/v1alpha1", kind: "Agent", metadata: { name: "newsbot" }, spec: { image: "ruriko/gitai:dev", gosuto: "newsbot", ...spec } }) as AgentManifest;

/** As the API server returns it: a uid, and quantities in canonical form (134217728 → 128Mi, 1000m → 1). */
function asStored(sts: V1StatefulSet, limits?: Record<string, string>): V1StatefulSet {
  const copy = structuredClone(sts);
  copy.metadata!.uid = "uid-1";
  const gitai = copy.spec!.template.spec!.containers[0]!;
  if (limits) gitai.resources = { limits };
  return copy;
}

const readBack = (sts: V1StatefulSet) => {
  const facts = workloadFacts(sts);
  assert.ok(facts, "facts read");
  return specFromEngine("newsbot", facts);
};

describe("a workload read back into its spec", () => {
  test("gives the spec that made it, with its digest, whatever the manifest set", () => {
    for (const m of [
      manifest(),
      manifest({ env: { TZ: "UTC", FEED: "https://example.org/rss" }, resources: { memory: "128Mi", cpus: 0.5, pids: 64 } }),
      manifest({ resources: { memory: "1Gi", cpus: 2 } }),
    ]) {
      const spec = containerSpecFor(m, "rev1");
      const back = readBack(asStored(statefulSetFor(spec, options)));
      assert.equal(back?.specDigest, spec.specDigest, JSON.stringify(m.spec));
      const fields = (s: ContainerSpec | undefined) => s && { agent: s.agent, image: s.image, env: s.env, memoryBytes: s.memoryBytes, cpus: s.cpus, pidsLimit: s.pidsLimit, controlPort: s.controlPort, revision: s.revision };
      assert.deepEqual(fields(back), fields(spec));
    }
  });

  test("reads the limits in the API server's canonical form", () => {
    const spec = containerSpecFor(manifest({ resources: { memory: "128Mi", cpus: 1 } }), "rev1");
    assert.equal(readBack(asStored(statefulSetFor(spec, options), { memory: "128Mi", cpu: "1" }))?.specDigest, spec.specDigest);
    const half = containerSpecFor(manifest({ resources: { memory: "512M", cpus: 0.25 } }), "rev1");
    assert.equal(readBack(asStored(statefulSetFor(half, options), { memory: "512M", cpu: "250m" }))?.specDigest, half.specDigest);
  });

  test("an edited workload gives no spec: it is not adopted as Ruriko's", () => {
    const spec = containerSpecFor(manifest({ env: { TZ: "UTC" } }), "rev1");
    const edited = asStored(statefulSetFor(spec, options));
    edited.spec!.template.spec!.containers[0]!.env!.push({ name: "EXTRA", value: "1" });
    assert.equal(readBack(edited), undefined);
    const otherImage = asStored(statefulSetFor(spec, options));
    otherImage.spec!.template.spec!.containers[0]!.image = "ruriko/gitai:other";
    assert.equal(readBack(otherImage), undefined);
  });

  test("limits it cannot read, or no Gitai container, give no facts", () => {
    const spec = containerSpecFor(manifest(), "rev1");
    assert.equal(workloadFacts(asStored(statefulSetFor(spec, options), { memory: "lots" })), undefined);
    const empty = asStored(statefulSetFor(spec, options));
    empty.spec!.template.spec!.containers = [];
    assert.equal(workloadFacts(empty), undefined);
  });
});
