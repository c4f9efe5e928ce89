/**
 * Images from registries, against real ones: two distribution registries (`docker-registry`) on loopback sharing
 * one storage, one open and one behind htpasswd, the agent test image pushed to them and removed here, and the
 * controller pulling and running it on a real Docker engine. Pull policies, a credential from the secret store
 * (and nowhere else), a tag that moves under a running agent (`Always`), digest pins, and a pull that hangs (abandoned at
 * its deadline, or at once when serve stops).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pack } from "tar-stream";
import { approvalsDecide } from "../../src/cli/approvals.ts";
import { imageMovesFor } from "../../src/controller/image-observer.ts";
import { planFromState } from "../../src/controller/plan-from-state.ts";
import { renderPlanText } from "../../src/controller/plan-report.ts";
import { DockerRuntime } from "../../src/runtime/docker-runtime.ts";
import { ImagePullError } from "../../src/runtime/runtime.ts";
import { registrySecretName } from "../../src/secrets/registry-credentials.ts";
import type { AgentStatus } from "../../src/store/agent-status-store.ts";
import { isAwaitingApproval, isReady, newStateDir, removeInstanceResources, startTestController, TEST_AGENT_IMAGE, waitFor, type TestController } from "../helpers/controller-harness.ts";
import { writeTree } from "../helpers/manifest-tree.ts";
import { drain, pushAs, startRegistry, writeHtpasswd, type LoopbackRegistry } from "../helpers/registry.ts";
import { startServe, type ServeProcess } from "../helpers/serve-process.ts";

const USER = "puller";
const PASSWORD = `pw-${Math.random().toString(36).slice(2)}-registry`;
const REPO = "ruriko-test/agent";

const gosuto = (name: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: {capabilities: [{name: deny-all, mcp: "*", tool: "*", allow: false}]}\n`;
const agent = (name: string, image: string, policy?: string) =>
  `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: ${name}}\nspec: {image: "${image}", gosuto: ${name}, resources: {memory: 128Mi}${policy ? `, imagePullPolicy: ${policy}` : ""}}\n`;
// A moved tag of agent `mover` waits for approval; every other image change goes ahead.
const POLICY = `apiVersion: ruriko.dev/v1alpha1
kind: ApprovalPolicy
metadata: {name: default}
spec:
  room: "!approvals:localhost"
  approvers: ["@alice:localhost"]
  ttl: 1h
  rules:
    - {match: {kind: Agent, operation: update, names: [mover], fields: [image]}, require: approval}
`;

const condition = (s: AgentStatus | undefined, type: string) => s?.conditions.find((c) => c.type === type);
const short = (digest: string) => digest.slice(0, "sha256:".length + 12);

async function imageIdOf(h: TestController, agentName: string): Promise<string | undefined> {
  const [c] = await h.containersOf(agentName);
  return c?.ImageID;
}

async function absent(h: TestController, ref: string): Promise<boolean> {
  try {
    await h.docker.getImage(ref).inspect();
    return false;
  } catch {
    return true;
  }
}

/** Untags a reference here (the image itself stays while another tag or a container holds it). */
async function removeHere(h: TestController, ref: string): Promise<void> {
  await h.docker.getImage(ref).remove({ noprune: false }).catch((error: { statusCode?: number }) => {
    if (error.statusCode !== 404) throw error;
  });
  assert.ok(await absent(h, ref), `${ref} is gone from this host`);
}

/** A different image with the same layers: the agent image plus a label (pushed, it moves a tag). */
async function buildVariant(h: TestController, tag: string): Promise<string> {
  const context = pack();
  context.entry({ name: "Dockerfile" }, `FROM ${TEST_AGENT_IMAGE}\nLABEL ruriko.test/variant="${tag}-${Date.now()}"\n`);
  context.finalize();
  await drain(await h.docker.buildImage(context as unknown as NodeJS.ReadableStream, { t: tag, pull: false }));
  return (await h.docker.getImage(tag).inspect()).Id;
}

describe("images from registries (real loopback registries, real Docker)", () => {
  let h: TestController;
  let dir: string;
  let work: string;
  let open: LoopbackRegistry;
  let authed: LoopbackRegistry;
  let v1Digest: string;
  let baseId: string;
  const made: string[] = [];
  const offer = async (name: string, text: string) => {
    writeFileSync(join(dir, `${name}.yaml`), text);
    await h.offer(dir);
  };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "ruriko-registry-"));
    writeHtpasswd(join(work, "htpasswd"), USER, PASSWORD);
    const storage = join(work, "storage");
    open = await startRegistry({ dir: work, name: "open", storage });
    authed = await startRegistry({ dir: work, name: "authed", storage, htpasswd: join(work, "htpasswd") });
    // A short resync: the `Always` agent's registry is checked again every few seconds, not every five minutes.
    h = await startTestController({ resyncIntervalMs: 3000 });
    baseId = (await h.docker.getImage(TEST_AGENT_IMAGE).inspect()).Id;
    // Pushed once through the open registry; the other serves the same storage, behind its password.
    v1Digest = await pushAs(h.docker, TEST_AGENT_IMAGE, `${open.host}/${REPO}`, "v1");
    for (const ref of [`${open.host}/${REPO}:v1`, `${open.host}/${REPO}@${v1Digest}`]) await removeHere(h, ref);
    dir = writeTree({ "policy.yaml": POLICY });
    await h.offer(dir);
  });

  after(async () => {
    await h?.stop();
    for (const ref of made) await h?.docker.getImage(ref).remove({ force: true }).catch(() => {});
    const leftovers = await h?.docker.listImages({ filters: JSON.stringify({ reference: [`${open?.host}/*/*`, `${authed?.host}/*/*`] }) });
    for (const image of leftovers ?? []) for (const tag of image.RepoTags ?? []) await h.docker.getImage(tag).remove().catch(() => {});
    await open?.stop();
    await authed?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("IfNotPresent (the default) pulls a missing image from an open registry; the pull is in the log", async () => {
    const ref = `${open.host}/${REPO}:v1`;
    await offer("puller", `${gosuto("puller")}---\n${agent("puller", ref)}`);
    await h.waitForStatus("puller", isReady, "Ready after the pull");
    assert.equal(await imageIdOf(h, "puller"), baseId);
    const log = readFileSync(h.logFile, "utf8");
    assert.match(log, new RegExp(`"msg":"pulling image ${ref.replace(/[.]/g, "\\.")}"`));
    assert.match(log, new RegExp(`"msg":"pulled image ${ref.replace(/[.]/g, "\\.")} in [0-9.]+ s \\(${v1Digest}\\)`));
  });

  test("a private registry: unauthorized without the credential (the running agent untouched), Ready once the secret is stored", async () => {
    await offer("private", `${gosuto("private")}---\n${agent("private", TEST_AGENT_IMAGE)}`);
    await h.waitForStatus("private", isReady, "Ready on the local image");
    const [before] = await h.containersOf("private");
    const ref = `${authed.host}/${REPO}:v1`;
    const secret = registrySecretName(authed.host)!;
    assert.equal(secret, `registry-${authed.host.split(":")[1]}.127.0.0.1`);

    await offer("private", `${gosuto("private")}---\n${agent("private", ref)}`);
    const refused = await h.waitForStatus("private", (s) => condition(s, "Stalled")?.reason === "ImagePullFailed", "Stalled: ImagePullFailed");
    assert.match(condition(refused, "Ready")!.message, new RegExp(`^ImagePullFailed: unauthorized: image ${ref.replace(/[.]/g, "\\.")} is not present on this host and could not be pulled from ${authed.host.replace(/[.]/g, "\\.")} \\(no credential: store one as secret ${secret.replace(/[.]/g, "\\.")}\\)$`));
    const [still] = await h.containersOf("private");
    assert.deepEqual([still!.Id, still!.State, still!.ImageID], [before!.Id, "running", baseId], "nothing lost: the agent runs on as it was");

    // A wrong password is refused as such; the write itself makes the agent try again at once.
    h.vault.secrets.set(secret, Buffer.from(`${USER}:not-the-password`));
    h.controller.flushStateChanges();
    await h.waitForStatus("private", (s) => /with the credential from secret/.test(condition(s, "Ready")?.message ?? ""), "refused with the stored credential");

    h.vault.secrets.set(secret, Buffer.from(`${USER}:${PASSWORD}`));
    h.controller.flushStateChanges();
    await h.waitForStatus("private", (s) => isReady(s) && s!.containerId !== before!.Id, "Ready on the pulled image");
    const [pulled] = await h.containersOf("private");
    assert.equal(pulled!.Image, ref);

    // The credential went to the engine as the pull's auth only: nowhere in the container, the log, the status or the audit.
    const inspected = JSON.stringify(await h.docker.getContainer(pulled!.Id).inspect());
    const logText = readFileSync(h.logFile, "utf8");
    const statusText = JSON.stringify(h.state.status.list());
    const auditText = JSON.stringify(h.state.audit.tail(500));
    const encodings = [PASSWORD, Buffer.from(`${USER}:${PASSWORD}`).toString("base64"), Buffer.from(PASSWORD).toString("base64")];
    for (const [where, text] of Object.entries({ "docker inspect": inspected, log: logText, status: statusText, audit: auditText })) {
      for (const e of encodings) assert.ok(!text.includes(e), `the credential is not in ${where}`);
    }
  });

  test("Always: a tag moved in the registry is a planned change with the digests from → to, parked by the policy, applied when approved", async () => {
    const repository = `${open.host}/${REPO}`;
    const ref = `${repository}:moving`;
    const fromDigest = await pushAs(h.docker, TEST_AGENT_IMAGE, repository, "moving");
    await removeHere(h, ref);
    await offer("mover", `${gosuto("mover")}---\n${agent("mover", ref, "Always")}`);
    await h.waitForStatus("mover", isReady, "Ready on the first image");
    assert.equal(await imageIdOf(h, "mover"), baseId);

    // Someone pushes another image under the same tag, through the other registry (same storage): the tag moves in
    // the registry only, and here the reference still names the running image (with its digest) until Ruriko pulls.
    // (Moving the tag here first would let a reconcile see the move before the push gave the image its digest.)
    const elsewhere = `${authed.host}/${REPO}`;
    const variant = `${elsewhere}:moving`;
    made.push(variant);
    const movedId = await buildVariant(h, variant);
    const login = { username: USER, password: PASSWORD, serveraddress: authed.host };
    const toDigest = (await drain(await h.docker.getImage(variant).push({ tag: "moving", authconfig: login }))).find((a) => a.Digest)!.Digest as string;
    assert.notEqual(toDigest, fromDigest);

    // The next check of the registry (once per resync) sees it; the rule on the image field parks it.
    await waitFor(() => !!h.state.approvals.list({ agent: "mover", status: "pending" }).length, "the moved tag parked for approval", 60_000);
    const [request] = h.state.approvals.list({ agent: "mover", status: "pending" });
    assert.equal(request!.summary, `Agent/mover: image ${ref} moved: digest ${short(fromDigest)} → ${short(toDigest)}`);
    assert.deepEqual([request!.fromDigest, request!.toDigest], [`image:${baseId}`, `image:${movedId}`]);
    const parked = await h.waitForStatus("mover", isAwaitingApproval, "AwaitingApproval");
    assert.match(condition(parked, "AwaitingApproval")!.message, /moved: digest/);
    assert.equal(await imageIdOf(h, "mover"), baseId, "still the first image while the change waits");
    // `ruriko plan` says the same, from what the engine resolves the tag to (it never pulls).
    const observed = await h.runtime.list();
    const plan = planFromState(h.controller.snapshot!, observed, h.state, await imageMovesFor(h.runtime, h.controller.snapshot!, observed, (a) => h.state.inventory.get(a)));
    const item = plan.items.find((i) => i.agent === "mover")!;
    assert.deepEqual([item.action, item.verdict, item.fields, item.request?.id], ["recreate", "park", ["image"], request!.id]);
    assert.match(renderPlanText(plan), new RegExp(`recreate +mover: image \\S+:moving moved: digest ${short(fromDigest)} → ${short(toDigest)}\n +needs approval: yes`));

    // The gate is not walked around by removing the container (an innocent `docker container prune`): the heal
    // makes it again from the image it was approved to run, not from what the tag names now.
    const [parkedContainer] = await h.containersOf("mover");
    await h.docker.getContainer(parkedContainer!.Id).remove({ force: true });
    await waitFor(async () => (await h.containersOf("mover")).some((c) => c.Id !== parkedContainer!.Id && c.State === "running"), "the removed container made again");
    const [healed] = await h.containersOf("mover");
    assert.equal(healed!.ImageID, baseId, "healed on the approved image");
    assert.equal(healed!.Labels["ruriko.dev/image"], ref, "made from the image's id, the reference kept in a label");
    assert.equal((await h.runtime.list("mover"))[0]!.image, ref, "Ruriko still sees the manifest's reference");
    await h.waitForStatus("mover", isAwaitingApproval, "AwaitingApproval again, for the same move");
    assert.deepEqual(h.state.approvals.list({ agent: "mover", status: "pending" }).map((r) => r.id), [request!.id], "the same request still waits");

    // Nor by a change of another field, which no rule parks: the new container runs the approved image too.
    await offer("mover", `${gosuto("mover")}---\n${agent("mover", ref, "Always").replace("memory: 128Mi", "memory: 160Mi")}`);
    await waitFor(async () => (await h.containersOf("mover")).some((c) => c.Id !== healed!.Id && c.State === "running"), "the memory change applied");
    const [resized] = await h.containersOf("mover");
    assert.equal((await h.docker.getContainer(resized!.Id).inspect()).HostConfig.Memory, 160 * 1024 * 1024);
    assert.equal(resized!.ImageID, baseId, "the memory change did not bring the moved image with it");
    assert.deepEqual(h.state.approvals.list({ agent: "mover", status: "pending" }).map((r) => r.id), [request!.id], "the move still waits, under the same request");

    assert.equal(approvalsDecide(h.stateDir, request!.id, "approve", {}), 0);
    await h.waitForStatus("mover", (s) => isReady(s), "Ready again");
    await waitFor(async () => (await imageIdOf(h, "mover")) === movedId, "the agent runs the image the tag moved to");
    assert.equal(h.state.approvals.get(request!.id)!.status, "applied");
  });

  test("Never: a missing image is a clear condition, and nothing is pulled", async () => {
    const ref = `${open.host}/${REPO}:v1-never`;
    await offer("never", `${gosuto("never")}---\n${agent("never", ref, "Never")}`);
    const stalled = await h.waitForStatus("never", (s) => condition(s, "Stalled")?.reason === "ImageMissing", "Stalled: ImageMissing");
    assert.match(condition(stalled, "Stalled")!.message, /is not present on this host and its imagePullPolicy is Never/);
    assert.equal((await h.containersOf("never")).length, 0);
    assert.ok(await absent(h, ref), "not pulled");
  });

  test("pinned by digest (repo@sha256:… and repo:tag@sha256:…): pulled by digest and run", async () => {
    const byDigest = `${open.host}/${REPO}@${v1Digest}`;
    const tagAndDigest = `${open.host}/${REPO}:v1@${v1Digest}`;
    await removeHere(h, byDigest);
    await offer("pinned", `${gosuto("pinned")}---\n${agent("pinned", byDigest)}`);
    await offer("pinned2", `${gosuto("pinned2")}---\n${agent("pinned2", tagAndDigest)}`);
    for (const name of ["pinned", "pinned2"]) await h.waitForStatus(name, isReady, `${name} Ready`);
    assert.equal((await h.containersOf("pinned"))[0]!.Image, byDigest);
    assert.equal(await imageIdOf(h, "pinned2"), baseId);
  });
});

describe("a pull that does not finish", () => {
  let blackHole: Server;
  const held = new Set<Socket>();
  before(async () => {
    // Accepts connections and never answers: the registry behind a hung proxy.
    blackHole = createServer((socket) => {
      held.add(socket);
      socket.on("close", () => held.delete(socket));
    });
    await new Promise<void>((resolve) => blackHole.listen(0, "127.0.0.1", resolve));
  });
  after(async () => {
    // The engine may still hold its connection open: closing waits for none of them.
    for (const socket of held) socket.destroy();
    await new Promise<void>((resolve) => blackHole.close(() => resolve()));
  });

  test("is abandoned at the timeout, as ImagePullFailed: timeout (retried with backoff)", async () => {
    const { port } = blackHole.address() as { port: number };
    const Docker = (await import("dockerode")).default;
    const runtime = new DockerRuntime({ docker: new Docker(), instance: "registry-timeout", imagePullTimeoutMs: 1500 });
    const started = Date.now();
    const error = await runtime.ensureImage({ agent: "slow", image: `127.0.0.1:${port}/${REPO}:v1`, policy: "IfNotPresent" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof ImagePullError, String(error));
    assert.deepEqual(error.failure, { reason: "timeout", definitive: false });
    assert.match(error.message, /^ImagePullFailed: timeout: image .* is not present on this host and could not be pulled from 127\.0\.0\.1:\d+ \(not done within 2 s: serve --image-pull-timeout\)$/);
    assert.ok(Date.now() - started < 30_000);
  });

  test("serve stopped meanwhile abandons the pull at once: it stops, nothing is reported failed, and the next start pulls again", async () => {
    const { port } = blackHole.address() as { port: number };
    const { stateDir, instance } = newStateDir();
    const manifests = writeTree({ "hung.yaml": `${gosuto("hung")}---\n${agent("hung", `127.0.0.1:${port}/${REPO}:v1`)}` });
    const Docker = (await import("dockerode")).default;
    after(async () => {
      await removeInstanceResources(new Docker(), instance);
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(manifests, { recursive: true, force: true });
    });
    const pulling = (serve: ServeProcess) => readFileSync(serve.logFile, "utf8").includes(`"msg":"pulling image 127.0.0.1:${port}/${REPO}:v1"`);

    // Serve's deadline is the default (600 s). A stop that waited for the pull would end only when the engine gave up on
    // the black hole itself (about 20 s here), and that is a failed pull, in the log and the agent's status.
    const first = await startServe(["--manifests", manifests], { stateDir });
    await waitFor(() => pulling(first), "the pull under way");
    const exited = new Promise<number | null>((resolve) => first.child.once("exit", (code) => resolve(code)));
    await first.stop();
    assert.equal(await exited, 0);
    const log = readFileSync(first.logFile, "utf8");
    assert.match(log, /"msg":"stopped"/);
    assert.doesNotMatch(log, /reconcile failed|pulling image .* failed/, "an abandoned pull is not a failure");

    const second = await startServe(["--manifests", manifests], { stateDir });
    after(() => second.stop());
    await waitFor(() => pulling(second), "the next start pulls again");
    await second.stop();
  });
});
