/**
 * The pure half of the Kubernetes runtime: a ContainerSpec as a StatefulSet (hardened as the Docker container is),
 * the handover Secret, and a StatefulSet and its pod read back as the ObservedContainer the planner judges.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1Pod, V1StatefulSet } from "@kubernetes/client-node";
import { acpAddressOf } from "../../../src/controller/agent-network.ts";
import {
  ANNOTATIONS,
  handoverSecretFor,
  heldPod,
  heldWorkload,
  isEdited,
  observedFrom,
  podGone,
  podOwner,
  podStart,
  podTransition,
  resourceLimits,
  workloadGone,
  statefulSetFor,
  workloadName,
} from "../../../src/runtime/kubernetes-objects.ts";
import { LABELS, type ContainerSpec } from "../../../src/runtime/runtime.ts";

const spec: ContainerSpec = {
  agent: "newsbot",
  image: "ruriko/gitai:dev",
  env: { TZ: "UTC" },
  memoryBytes: 512 * 1024 * 1024,
  cpus: 0.5,
  pidsLimit: 256,
  specDigest: "sha256:abc",
  revision: "rev1",
  controlPort: 8765,
};
const options = { instance: "i1", dataVolumeSize: "1Gi", storageClass: "ruriko-local" };

describe("statefulSetFor", () => {
  const sts = statefulSetFor(spec, options);
  const pod = sts.spec!.template.spec!;
  const gitai = pod.containers[0]!;

  test("one replica's worth of workload, created with 0 replicas (created, not started), labelled as owned", () => {
    assert.equal(sts.spec!.replicas, 0);
    assert.equal(sts.metadata!.name, "ruriko-i1-newsbot");
    assert.deepEqual(sts.metadata!.labels, { [LABELS.managedBy]: "ruriko", [LABELS.instance]: "i1", [LABELS.agent]: "newsbot" });
    assert.equal(sts.metadata!.annotations![LABELS.specDigest], "sha256:abc");
    assert.equal(sts.metadata!.annotations![LABELS.revision], "rev1");
    assert.deepEqual(sts.spec!.selector.matchLabels, { [LABELS.managedBy]: "ruriko", [LABELS.instance]: "i1", [LABELS.agent]: "newsbot" });
    assert.equal(sts.metadata!.annotations![ANNOTATIONS.generation], "1");
  });

  test("hardened: non-root 65532, fsGroup, read-only root, no capabilities, no escalation, seccomp, no SA token", () => {
    assert.equal(pod.securityContext!.runAsNonRoot, true);
    assert.equal(pod.securityContext!.runAsUser, 65532);
    assert.equal(pod.securityContext!.fsGroup, 65532);
    assert.equal(pod.securityContext!.seccompProfile!.type, "RuntimeDefault");
    assert.equal(pod.automountServiceAccountToken, false);
    for (const c of [gitai, pod.initContainers![0]!]) {
      assert.equal(c.securityContext!.readOnlyRootFilesystem, true);
      assert.equal(c.securityContext!.allowPrivilegeEscalation, false);
      assert.deepEqual(c.securityContext!.capabilities!.drop, ["ALL"]);
    }
  });

  test("resources, pull policy, env, data claim with its storage class, /tmp in memory", () => {
    assert.deepEqual(gitai.resources!.limits, { memory: String(512 * 1024 * 1024), cpu: "500m" });
    assert.equal(gitai.imagePullPolicy, "IfNotPresent");
    assert.deepEqual(gitai.env, [
      { name: "TZ", value: "UTC" },
      { name: "RURIKO_AGENT", value: "newsbot" },
    ]);
    const claim = sts.spec!.volumeClaimTemplates![0]!;
    assert.equal(claim.spec!.storageClassName, "ruriko-local");
    assert.equal(claim.spec!.resources!.requests!.storage, "1Gi");
    assert.equal(sts.spec!.persistentVolumeClaimRetentionPolicy!.whenDeleted, "Retain");
    assert.deepEqual(gitai.volumeMounts!.map((m) => m.mountPath).sort(), ["/data", "/tmp"]);
    assert.equal(pod.volumes!.find((v) => v.name === "tmp")!.emptyDir!.medium, "Memory");
    assert.equal(statefulSetFor(spec, { instance: "i1", dataVolumeSize: "1Gi" }).spec!.volumeClaimTemplates![0]!.spec!.storageClassName, undefined);
  });

  test("the handover Secret is mounted into the init container only, never into Gitai's", () => {
    assert.ok(!gitai.volumeMounts!.some((m) => m.name === "handover"));
    assert.ok(pod.initContainers![0]!.volumeMounts!.some((m) => m.name === "handover" && m.readOnly));
    // An init container's requests count for the whole pod: small, so that the node's CPU is not reserved by it.
    assert.deepEqual(pod.initContainers![0]!.resources!.requests, { memory: "16Mi", cpu: "10m" });
    assert.equal(pod.volumes!.find((v) => v.name === "handover")!.secret!.secretName, "ruriko-i1-newsbot-handover");
    assert.equal(pod.volumes!.find((v) => v.name === "handover")!.secret!.optional, true, "made with the token, after the workload");
  });

  test("no limit: no resources", () => {
    assert.equal(resourceLimits({}), undefined);
    assert.equal(statefulSetFor({ ...spec, memoryBytes: undefined as never, cpus: undefined as never }, options).spec!.template.spec!.containers[0]!.resources, undefined);
  });
});

test("workload names stay within a StatefulSet's limit, distinct and stable", () => {
  const long = "a".repeat(60);
  const a = workloadName("instance1", long);
  assert.ok(a.length <= 52, a);
  assert.equal(a, workloadName("instance1", long));
  assert.notEqual(a, workloadName("instance1", `${long.slice(0, 59)}b`));
  assert.equal(workloadName("i1", "x"), "ruriko-i1-x");
});

test("the handover Secret carries the file base64-encoded, labelled as owned", () => {
  const s = handoverSecretFor("i1", "newsbot", { "acp-token": Buffer.from("t0k") });
  assert.equal(s.data!["acp-token"], Buffer.from("t0k").toString("base64"));
  assert.equal(s.metadata!.labels![LABELS.instance], "i1");
});

function workload(over: { replicas?: number; generation?: number; recorded?: string; started?: boolean } = {}): V1StatefulSet {
  const sts = statefulSetFor(spec, options);
  sts.metadata!.uid = "uid-1";
  sts.metadata!.generation = over.generation ?? 1;
  sts.metadata!.annotations = { ...sts.metadata!.annotations, [ANNOTATIONS.generation]: over.recorded ?? String(over.generation ?? 1), ...(over.started ? { [ANNOTATIONS.started]: "true" } : {}) };
  sts.spec!.replicas = over.replicas ?? 1;
  return sts;
}

function pod(state: "running" | "waiting" | "terminated", over: { restartCount?: number; reason?: string; exitCode?: number; image?: string; deleting?: boolean; owner?: string } = {}): V1Pod {
  const s =
    state === "running"
      ? { running: { startedAt: new Date("2026-01-01T00:00:00Z") } }
      : state === "waiting"
        ? { waiting: { reason: "CrashLoopBackOff" } }
        : { terminated: { exitCode: over.exitCode ?? 1, reason: over.reason ?? "Error", finishedAt: new Date("2026-01-01T00:01:00Z") } };
  return {
    metadata: {
      name: "ruriko-i1-newsbot-0",
      uid: "pod-1",
      ownerReferences: [{ apiVersion: "apps/v1", kind: "StatefulSet", name: "ruriko-i1-newsbot", uid: over.owner ?? "uid-1" }],
      ...(over.deleting ? { deletionTimestamp: new Date() } : {}),
    },
    spec: { containers: [{ name: "gitai", image: over.image ?? spec.image }] },
    status: {
      podIP: "10.89.0.7",
      containerStatuses: [
        {
          name: "gitai",
          image: spec.image,
          imageID: "",
          ready: state === "running",
          restartCount: over.restartCount ?? 0,
          state: s,
          ...(over.reason && state !== "terminated" ? { lastState: { terminated: { exitCode: over.exitCode ?? 137, reason: over.reason } } } : {}),
        },
      ],
    },
  };
}

describe("observedFrom", () => {
  test("running: the workload's uid, the template's image, the label's digest, the pod's address", () => {
    const o = observedFrom(workload(), pod("running"), { address: "http://10.89.0.7:8765" })!;
    assert.equal(o.id, "uid-1");
    assert.equal(o.state, "running");
    assert.equal(o.specDigest, "sha256:abc");
    assert.equal(o.startedAt, "2026-01-01T00:00:00.000Z");
    assert.deepEqual(acpAddressOf("bridge", o), { ok: true, value: "http://10.89.0.7:8765" });
  });

  test("0 replicas: created until first started, exited after; no address", () => {
    assert.equal(observedFrom(workload({ replicas: 0 }), undefined)!.state, "created");
    const stopped = observedFrom(workload({ replicas: 0, started: true }), undefined, { address: "http://x" })!;
    assert.equal(stopped.state, "exited");
    assert.equal(stopped.controlAddress, undefined);
  });

  test("the cluster at work (no pod, crash loop, terminating) reads as restarting, with the last exit and OOM", () => {
    assert.equal(observedFrom(workload(), undefined)!.state, "restarting");
    const oom = observedFrom(workload(), pod("waiting", { restartCount: 2, reason: "OOMKilled", exitCode: 137 }))!;
    assert.equal(oom.state, "restarting");
    assert.equal(oom.oomKilled, true);
    assert.equal(oom.exitCode, 137);
    assert.equal(observedFrom(workload(), pod("running", { deleting: true }))!.state, "restarting");
  });

  test("an edit behind Ruriko's back (another generation, or another image in the pod) matches no digest", () => {
    assert.equal(isEdited(workload(), pod("running")), false);
    assert.equal(isEdited(workload({ generation: 3, recorded: "2" }), undefined), true);
    assert.equal(isEdited(workload(), pod("running", { image: "evil:1" })), true);
    assert.notEqual(observedFrom(workload({ generation: 3, recorded: "2" }), undefined)!.specDigest, "sha256:abc");
  });
});

test("pod transitions map to Docker's events", () => {
  assert.equal(podTransition(undefined, pod("running")), "start");
  assert.equal(podTransition(pod("running"), pod("terminated", { exitCode: 2 })), "die");
  assert.equal(podTransition(pod("running"), pod("terminated", { reason: "OOMKilled", exitCode: 137 })), "oom");
  assert.equal(podTransition(pod("running"), undefined), "die");
  assert.equal(podTransition(pod("waiting", { restartCount: 1 }), pod("running", { restartCount: 1 })), "start");
  assert.equal(podTransition(pod("running"), pod("running")), undefined);
});

describe("the waits' judgements", () => {
  const waiting = (reason: string, message?: string): V1Pod => {
    const p = pod("waiting");
    p.status!.containerStatuses![0]!.state = { waiting: { reason, ...(message ? { message } : {}) } };
    return p;
  };

  test("a start is done when Gitai runs in a pod of this workload that is not being deleted", () => {
    assert.deepEqual(podStart(pod("running"), "uid-1"), { state: "running" });
    assert.deepEqual(podStart(undefined, "uid-1"), { state: "pending", reason: "no pod yet" });
    assert.equal(podStart(pod("running", { owner: "uid-0" }), "uid-1").state, "pending", "the old workload's pod, before the new one's");
    assert.equal(podStart(pod("running", { deleting: true }), "uid-1").state, "pending", "the pod a token handover deleted");
  });

  test("the kubelet's reason is kept; a missing image under Never, or a malformed one, is hopeless", () => {
    assert.deepEqual(podStart(waiting("ContainerCreating"), "uid-1"), { state: "pending", reason: "ContainerCreating" });
    assert.deepEqual(podStart(waiting("ErrImageNeverPull", "not present"), "uid-1"), { state: "cannot", reason: "ErrImageNeverPull: not present" });
    assert.equal(podStart(waiting("InvalidImageName"), "uid-1").state, "cannot");
    assert.equal(podStart(waiting("ImagePullBackOff"), "uid-1").state, "pending", "a pull may still succeed");
    const init = pod("waiting");
    init.status!.containerStatuses = [];
    init.status!.initContainerStatuses = [{ name: "handover", image: "", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason: "PodInitializing" } } }];
    assert.deepEqual(podStart(init, "uid-1"), { state: "pending", reason: "PodInitializing" });
  });

  test("a pod is gone for a workload when there is none, or it belongs to another one", () => {
    assert.equal(podGone(undefined, "uid-1"), true);
    assert.equal(podGone(pod("running"), "uid-1"), false);
    assert.equal(podGone(pod("running", { deleting: true }), "uid-1"), false, "terminating is not gone");
    assert.equal(podGone(pod("running", { owner: "uid-2" }), "uid-1"), true);
  });

  test("a workload is gone when none of its name is held, or a newer one (another uid) is", () => {
    assert.equal(workloadGone(undefined, "uid-1"), true);
    assert.equal(workloadGone(workload(), "uid-1"), false);
    assert.equal(workloadGone(workload(), "uid-0"), true);
  });
});

test("a held object reads as the whole one: every judgement above, the events' fields, the ACP port, the template", () => {
  const full = (p: V1Pod): V1Pod => {
    // What the API server adds that nothing reads: managedFields, the pod spec's volumes, conditions.
    p.metadata = { ...p.metadata, namespace: "agents", resourceVersion: "7", labels: { [LABELS.agent]: "newsbot" }, managedFields: [{ manager: "kubelet", operation: "Update" }] };
    p.spec = { ...p.spec!, nodeName: "n1", volumes: [{ name: "tmp", emptyDir: {} }], containers: p.spec!.containers.map((c) => ({ ...c, ports: [{ containerPort: 9000 }], env: [{ name: "TZ", value: "UTC" }] })) };
    p.status = { ...p.status, phase: "Running", conditions: [{ type: "Ready", status: "True" }], initContainerStatuses: [{ name: "handover", image: "", imageID: "", ready: true, restartCount: 0, state: { terminated: { exitCode: 0 } } }] };
    return p;
  };
  const workloads = [workload(), workload({ replicas: 0 }), workload({ replicas: 0, started: true }), workload({ generation: 3, recorded: "2" })];
  const pods = [undefined, pod("running"), pod("waiting", { restartCount: 2, reason: "OOMKilled", exitCode: 137 }), pod("terminated", { exitCode: 2 }), pod("running", { deleting: true }), pod("running", { image: "evil:1" }), pod("running", { owner: "uid-0" })].map((p) => p && full(p));
  const held = <T>(o: T, hold: (o: T) => T): T => {
    const copy = structuredClone(o);
    const kept = hold(copy);
    assert.deepEqual(copy, o, "the object given is left as it is");
    return kept;
  };
  for (const sts of workloads) {
    const heldSts = held({ ...sts, status: { replicas: 1, availableReplicas: 1 } }, heldWorkload);
    assert.deepEqual(heldSts.spec, sts.spec, "the spec whole: a workload's facts are read back from its template");
    assert.equal(heldSts.status, undefined);
    assert.equal(workloadGone(heldSts, "uid-1"), workloadGone(sts, "uid-1"));
    const { name, uid, generation, labels, annotations } = sts.metadata!;
    assert.deepEqual(heldSts.metadata, { ...heldSts.metadata, name, uid, generation, labels, annotations });
    for (const p of pods) {
      const heldP = p && held(p, heldPod);
      assert.deepEqual(observedFrom(heldSts, heldP, { address: "http://x" }), observedFrom(sts, p, { address: "http://x" }));
      assert.equal(isEdited(heldSts, heldP), isEdited(sts, p));
      assert.deepEqual(podStart(heldP, "uid-1"), podStart(p, "uid-1"));
      assert.equal(podGone(heldP, "uid-1"), podGone(p, "uid-1"));
      assert.equal(podOwner(heldP), podOwner(p));
      for (const q of pods) assert.equal(podTransition(q && held(q, heldPod), heldP), podTransition(q, p));
      if (!p || !heldP) continue;
      assert.deepEqual([heldP.metadata?.labels, heldP.metadata?.ownerReferences, heldP.metadata?.uid, heldP.metadata?.name], [p.metadata?.labels, p.metadata?.ownerReferences, p.metadata?.uid, p.metadata?.name]);
      assert.deepEqual([heldP.status?.podIP, heldP.spec?.containers[0]?.ports], [p.status?.podIP, p.spec?.containers[0]?.ports]);
      assert.equal(heldP.metadata?.managedFields, undefined);
      assert.deepEqual([heldP.spec?.volumes, heldP.spec?.containers[0]?.env, heldP.status?.conditions], [undefined, undefined, undefined]);
    }
  }
});
