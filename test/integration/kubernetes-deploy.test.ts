/**
 * Ruriko itself in the cluster: deploy/kubernetes/ruriko.yaml applied to the test cluster (scripts/kubernetes/)
 * with the `ruriko` image built from the repository's Dockerfile (as compose builds it), and Ruriko, running in
 * its pod with nothing but the Role's permissions, takes one agent to Ready.
 *
 * The manifests are applied as written but for test-only patches, plain edits of the parsed YAML made here (no
 * kustomize), each for a reason of this cluster or this test, not of the manifests:
 *  - the image: the tag this test built and loaded into the cluster's containerd (no registry);
 *  - hostNetwork and KUBERNETES_SERVICE_HOST/PORT: the cluster has no kube-proxy, so the `kubernetes` Service does
 *    not route; the API server is reached on the node's loopback (scripts/kubernetes/README.md);
 *  - RURIKO_HTTP on a free 127.0.0.1 port, the container port and probes with it (host network: the pod's ports
 *    are the host's, and the tests talk to loopback only);
 *  - the agents' manifests from a ConfigMap (RURIKO_MANIFESTS, each file mounted by subPath: Ruriko does not follow
 *    the symbolic links of a whole ConfigMap volume) instead of RURIKO_GIT (no git server here).
 *
 * Runs where RURIKO_TEST_KUBECONFIG names a cluster (`bash scripts/kubernetes/start.sh`) and RURIKO_TEST_RUNTIMES
 * includes kubernetes (the default); skipped otherwise, except under CI=true, where it fails.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import type { buildStatusReport } from "../../src/controller/status-report.ts";
import { generateMasterKeyText } from "../../src/secrets/crypto.ts";
import { LABELS } from "../../src/runtime/runtime.ts";
import { composeProject, poll, REPO_ROOT, run as runChecked } from "../helpers/compose.ts";
import { ensureAgentImage, TEST_AGENT_IMAGE } from "../helpers/controller-harness.ts";
import { freePort } from "../helpers/synapse.ts";

const run = promisify(execFile);
const RURIKO_IMAGE = "ruriko:kube-test";
type StatusReport = ReturnType<typeof buildStatusReport>;
type Manifest = { kind: string; metadata: { name: string }; spec?: Record<string, unknown> } & Record<string, unknown>;
interface Container {
  name: string;
  image: string;
  env: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  ports: Array<{ name: string; containerPort: number }>;
  readinessProbe: { httpGet: Record<string, unknown> };
  livenessProbe: { httpGet: Record<string, unknown> };
  volumeMounts: Array<Record<string, unknown>>;
}

const kubeconfig = process.env.RURIKO_TEST_KUBECONFIG;
const wanted = (process.env.RURIKO_TEST_RUNTIMES ?? "docker,kubernetes").split(",").map((s) => s.trim()).includes("kubernetes");
const skip = !wanted ? "RURIKO_TEST_RUNTIMES leaves out kubernetes" : !kubeconfig && process.env.CI !== "true" ? "RURIKO_TEST_KUBECONFIG is not set (bash scripts/kubernetes/start.sh prints a kubeconfig)" : false;

const AGENT_FILES: Record<string, string> = {
  "alpha.yaml":
    `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: alpha}\nspec:\n  persona: {systemPrompt: "be brief"}\n---\n` +
    `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: alpha}\nspec: {image: ${JSON.stringify(TEST_AGENT_IMAGE)}, gosuto: alpha, resources: {memory: 256Mi, cpus: 0.5}}\n`,
};

/** The test-only patches (see the header), applied to the manifests as parsed from deploy/kubernetes/ruriko.yaml. */
function patchForTestCluster(objects: Manifest[], o: { apiHost: string; apiPort: string; httpPort: number }): Manifest[] {
  const deployment = objects.find((x) => x.kind === "Deployment");
  assert.ok(deployment, "the manifests hold a Deployment");
  const pod = (deployment.spec as { template: { spec: Record<string, unknown> & { containers: Container[]; volumes: Array<Record<string, unknown>> } } }).template.spec;
  const c = pod.containers.find((x) => x.name === "ruriko")!;
  c.image = RURIKO_IMAGE;
  pod.hostNetwork = true;
  const env = c.env.filter((e) => e.name !== "RURIKO_GIT" && e.name !== "RURIKO_HTTP");
  env.push(
    { name: "KUBERNETES_SERVICE_HOST", value: o.apiHost },
    { name: "KUBERNETES_SERVICE_PORT", value: o.apiPort },
    { name: "RURIKO_HTTP", value: `127.0.0.1:${o.httpPort}` },
    { name: "RURIKO_MANIFESTS", value: "/manifests" },
    { name: "RURIKO_LOG_LEVEL", value: "debug" },
  );
  c.env = env;
  c.ports = [{ name: "http", containerPort: o.httpPort }];
  for (const probe of [c.readinessProbe, c.livenessProbe]) Object.assign(probe.httpGet, { host: "127.0.0.1", port: o.httpPort });
  pod.volumes.push({ name: "manifests", configMap: { name: "ruriko-test-manifests" } });
  for (const file of Object.keys(AGENT_FILES)) c.volumeMounts.push({ name: "manifests", mountPath: `/manifests/${file}`, subPath: file, readOnly: true });
  return objects;
}

describe("Ruriko in the cluster: deploy/kubernetes applied, one agent to Ready", { skip }, () => {
  const namespace = `ruriko-deploy-${Math.random().toString(16).slice(2, 8)}`;
  const kubectlBin = process.env.RURIKO_TEST_KUBECONFIG && (process.env.RURIKO_TEST_KUBECTL ?? join(process.env.RURIKO_CACHE ?? join(homedir(), ".cache/ruriko"), "kubernetes-v1.34.4/bin/kubectl"));
  const kubectl = async (...args: string[]) => (await run(kubectlBin!, ["--kubeconfig", kubeconfig!, "-n", namespace, ...args], { maxBuffer: 64 * 1024 * 1024 })).stdout;
  const dir = mkdtempSync(join(tmpdir(), "ruriko-kube-deploy-"));
  const masterKey = generateMasterKeyText();
  let rurikoUrl = "";
  const status = async (): Promise<StatusReport | undefined> => fetch(`${rurikoUrl}/api/v1/status`).then((r) => (r.ok ? (r.json() as Promise<StatusReport>) : undefined), () => undefined);
  const rurikoLogs = () => kubectl("logs", "deployment/ruriko", "--tail=40").catch((e: Error) => `(no logs: ${e.message})`);

  before(async () => {
    if (!kubeconfig) throw new Error("CI=true and RURIKO_TEST_KUBECONFIG is not set: the Kubernetes tests must run in CI");
    // The ruriko image as compose builds it from the Dockerfile (the base image a local stand-in where no registry
    // is reachable, as in CI), and the agent image; both loaded into the cluster's containerd.
    const base = await runChecked("bash", [join(REPO_ROOT, "scripts/local-base-images.sh")]);
    assert.equal(base.code, 0, `scripts/local-base-images.sh failed:\n${base.stdout}${base.stderr}`);
    const project = composeProject(`ruriko-kube-${namespace}`, dir, { MATRIX_REGISTRATION_SECRET: "unused", RURIKO_OPERATOR: "@unused:localhost", DOCKER_GID: "0", RURIKO_IMAGE });
    await project.compose(["build", "ruriko"]);
    const { default: Docker } = await import("dockerode");
    await ensureAgentImage(new Docker());
    for (const image of [RURIKO_IMAGE, TEST_AGENT_IMAGE]) await run("bash", [join(REPO_ROOT, "scripts/kubernetes/load-image.sh"), image], { env: { ...process.env, KUBECONFIG: kubeconfig } });

    await run(kubectlBin!, ["--kubeconfig", kubeconfig, "create", "namespace", namespace]);
    // As docs/kubernetes.md says: the master key as a Secret (from a file, never on a command line), then the manifests.
    const keyFile = join(dir, "master.key");
    writeFileSync(keyFile, `${masterKey}\n`, { mode: 0o600 });
    await kubectl("create", "secret", "generic", "ruriko-master-key", `--from-file=master.key=${keyFile}`);
    for (const [file, text] of Object.entries(AGENT_FILES)) writeFileSync(join(dir, file), text);
    await kubectl("create", "configmap", "ruriko-test-manifests", ...Object.keys(AGENT_FILES).map((f) => `--from-file=${f}=${join(dir, f)}`));

    const admin = new KubeConfig();
    admin.loadFromFile(kubeconfig);
    const api = new URL(admin.getCurrentCluster()!.server);
    const httpPort = await freePort();
    rurikoUrl = `http://127.0.0.1:${httpPort}`;
    const objects = parseAllDocuments(readFileSync(join(REPO_ROOT, "deploy/kubernetes/ruriko.yaml"), "utf8")).map((d) => d.toJS() as Manifest);
    const patched = patchForTestCluster(objects, { apiHost: api.hostname, apiPort: api.port || "443", httpPort });
    const file = join(dir, "ruriko.json");
    writeFileSync(file, JSON.stringify({ apiVersion: "v1", kind: "List", items: patched }));
    await kubectl("apply", "-f", file);
  });

  after(async () => {
    if (kubectlBin && kubeconfig) {
      // The agents first (Ruriko's own objects, by label), then the namespace with everything else.
      await kubectl("scale", "deployment/ruriko", "--replicas=0").catch(() => {});
      await run(kubectlBin, ["--kubeconfig", kubeconfig, "delete", "namespace", namespace, "--wait=false"]).catch(() => {});
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test("Ruriko's pod is Ready, and the agent it manages is Ready on its own StatefulSet", async () => {
    await kubectl("rollout", "status", "deployment/ruriko", "--timeout=120s").catch(async (error: Error) => {
      throw new Error(`Ruriko's Deployment did not become available: ${error.message}\n${await kubectl("describe", "pods").catch(() => "")}\n${await rurikoLogs()}`);
    });
    let last: StatusReport | undefined;
    await poll(
      async () => !!(last = await status())?.agents.find((a) => a.name === "alpha")?.conditions.some((c) => c.type === "Ready" && c.status === "True"),
      "alpha Ready in Ruriko's /api/v1/status",
      120_000,
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}; last status: ${JSON.stringify(last)}\n${await rurikoLogs()}`);
    });
    // The agent is a StatefulSet of Ruriko's, labelled with its instance, its pod Running, made by Ruriko's
    // ServiceAccount (the Role was enough).
    const sets = JSON.parse(await kubectl("get", "statefulsets", "-l", `${LABELS.agent}=alpha`, "-o", "json")) as { items: Array<{ metadata: { name: string; labels: Record<string, string>; managedFields: Array<{ manager: string }> } }> };
    assert.equal(sets.items.length, 1, "one StatefulSet for alpha");
    assert.equal(sets.items[0]!.metadata.labels[LABELS.managedBy], "ruriko");
    const pods = JSON.parse(await kubectl("get", "pods", "-l", `${LABELS.agent}=alpha`, "-o", "json")) as { items: Array<{ status: { phase: string; containerStatuses: Array<{ restartCount: number }> } }> };
    assert.deepEqual(pods.items.map((p) => p.status.phase), ["Running"]);
    assert.equal(pods.items[0]!.status.containerStatuses[0]!.restartCount, 0);
    // What Ruriko costs the cluster, on its /metrics, in the API server's terms: the StatefulSet it made, its watch.
    const metrics = await (await fetch(`${rurikoUrl}/metrics`)).text();
    assert.match(metrics, /^ruriko_kubernetes_requests_total\{verb="create",resource="statefulsets"\} [1-9]/m, metrics);
    assert.match(metrics, /^ruriko_kubernetes_requests_total\{verb="watch",resource="pods"\} [1-9]/m);
    // No secret value in any object: not the master key (delivered by the Secret as the operator made it, only).
    const dump = await kubectl("get", "deployments,statefulsets,pods,configmaps,events", "-o", "yaml");
    assert.ok(!dump.includes(masterKey), "the master key in an object other than its Secret");
  });
});
