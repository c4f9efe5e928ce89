/**
 * docs/deployment.md's table of the Docker Engine API calls Ruriko makes — what a filtering socket proxy must allow
 * — against the calls it really makes. A recording proxy on a unix socket sits in front of the real engine; every
 * method of DockerRuntime is driven through it (the test fails if one is not, so a new method cannot slip past),
 * with the adoption read-back and serve's named-network check; the calls seen, as method and path template, must be
 * exactly the documented ones.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import Docker from "dockerode";
import type { AgentManifest } from "../../src/api/generated/types.ts";
import { checkNamedNetwork } from "../../src/cli/serve.ts";
import { containerSpecFor } from "../../src/controller/container-spec.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { DockerRuntime } from "../../src/runtime/docker-runtime.ts";
import { ImagePullError, RuntimeError, type RuntimeEvent } from "../../src/runtime/runtime.ts";
import { ensureAgentImage, removeInstanceResources, TEST_AGENT_IMAGE, waitFor } from "../helpers/controller-harness.ts";
import { dockerClient } from "../helpers/docker.ts";

const DOC = join(import.meta.dirname, "../../docs/deployment.md");
const silent = createLogger({ level: "silent", pretty: false });

/** The engine's own socket, as dockerode finds it. */
const engineSocket = () => (process.env.DOCKER_HOST?.startsWith("unix://") ? process.env.DOCKER_HOST.slice("unix://".length) : "/var/run/docker.sock");

/** An HTTP proxy on a unix socket that forwards everything to the engine and records `METHOD /path?query`. */
async function recordingProxy(path: string): Promise<{ calls: string[]; close(): Promise<void> }> {
  const calls: string[] = [];
  const server: Server = createServer((req, res) => {
    calls.push(`${req.method} ${req.url}`);
    const upstream = request({ socketPath: engineSocket(), method: req.method, path: req.url, headers: req.headers }, (answer) => {
      // Node frames the answer itself: the engine's framing headers would contradict it.
      const { "transfer-encoding": _te, connection: _c, ...headers } = answer.headers;
      res.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(res);
    });
    upstream.on("error", (error) => res.destroy(error));
    // The event stream ends when the client goes: so does its upstream request.
    res.on("close", () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(path, resolve));
  return {
    calls,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** `GET /containers/json?all=1` → method and a path pattern; `{id}` is one path segment, `{name}` may hold slashes (images). */
function documentedCalls(): Array<{ call: string; method: string; path: RegExp }> {
  const text = readFileSync(DOC, "utf8");
  const start = text.indexOf("Every Docker Engine API call Ruriko makes");
  assert.ok(start >= 0, "docs/deployment.md introduces its table of Docker API calls");
  const table = text.slice(start).split("\n\n")[1]!;
  const calls = [...table.matchAll(/`(GET|POST|PUT|DELETE|HEAD) ([^`]+)`/g)].map(([, method, target]) => {
    const path = target!.split("?")[0]!;
    const pattern = path.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{id\}/g, "[^/]+").replace(/\{name\}/g, ".+");
    return { call: `${method} ${path}`, method: method!, path: new RegExp(`^${pattern}$`) };
  });
  assert.ok(calls.length > 5, `the table lists the calls: ${table}`);
  return calls;
}

let dir: string;
let proxy: Awaited<ReturnType<typeof recordingProxy>>;
let direct: Docker;
const instance = `api${randomBytes(4).toString("hex")}`;

before(async () => {
  direct = await dockerClient();
  await ensureAgentImage(direct);
  dir = mkdtempSync(join(tmpdir(), "ruriko-docker-api-"));
  proxy = await recordingProxy(join(dir, "docker.sock"));
});
after(async () => {
  await proxy?.close();
  if (direct) await removeInstanceResources(direct, instance);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the Docker API calls Ruriko makes are exactly those docs/deployment.md lists", async () => {
  const docker = new Docker({ socketPath: join(dir, "docker.sock") });
  const runtime = new DockerRuntime({ docker, instance, log: silent });
  // Which of DockerRuntime's methods ran (its private ones too): each must, or a call it makes could go unseen.
  const methods = Object.getOwnPropertyNames(DockerRuntime.prototype).filter((m) => m !== "constructor");
  const ran = new Set<string>();
  const target = runtime as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const m of methods) {
    const original = target[m]!;
    target[m] = function (this: unknown, ...args: unknown[]) {
      ran.add(m);
      return original.apply(this, args);
    };
  }

  const agent = { apiVersion: "ruriko.dev/v1alpha1", kind: "Agent", metadata: { name: "probe" }, spec: { image: TEST_AGENT_IMAGE, gosuto: "probe", resources: { memory: "128Mi" } } } as AgentManifest;
  const spec = containerSpecFor(agent, "r1");
  const events: RuntimeEvent[] = [];
  const subscription = runtime.subscribe((e) => events.push(e));
  try {
    assert.equal(await runtime.ping(), true);
    await runtime.prepare(spec);
    await runtime.ensureImage({ agent: "probe", image: TEST_AGENT_IMAGE, policy: "IfNotPresent" });
    assert.equal(await runtime.imageExists(TEST_AGENT_IMAGE), true);
    assert.ok(await runtime.resolveImage(TEST_AGENT_IMAGE));
    // A pull the engine must try (nothing listens on port 1): the call is made, and fails as a classified pull failure.
    await assert.rejects(runtime.ensureImage({ agent: "probe", image: "127.0.0.1:1/ruriko/absent:1", policy: "Always" }), ImagePullError);

    const first = await runtime.create(spec);
    await runtime.writeAgentFile(first.id, "probe-file", Buffer.from("not a secret"));
    await runtime.start(first.id);
    await waitFor(() => events.some((e) => e.containerId === first.id && e.action === "start"), "the start event through the proxy", 30_000);
    assert.equal((await runtime.list()).length, 1);
    // The adoption read-back (Runtime.readBack) and serve's named-network check.
    assert.equal((await runtime.readBack(first.id)).image, TEST_AGENT_IMAGE);
    await checkNamedNetwork(docker, `network:ruriko-${instance}`, silent);

    // Created running, with a file in its data directory, beside the one it replaces (stopped before it starts).
    const second = await runtime.create(spec, { replacing: first.id, running: { files: { "probe-file": Buffer.from("handed over") } } });
    const states = new Map((await runtime.list("probe")).map((c) => [c.id, c.state]));
    assert.deepEqual([states.get(first.id), states.get(second.id)], ["exited", "running"], "the stopped one is inspected, the new one created beside it");
    const archive = await direct.getContainer(second.id).getArchive({ path: "/data/probe-file" });
    const tar: Buffer[] = [];
    for await (const chunk of archive) tar.push(chunk as Buffer);
    assert.ok(Buffer.concat(tar).includes("handed over"), "the file was there at its start");
    await runtime.remove(first.id);
    await runtime.remove(second.id);
    await runtime.removeAgentVolume("probe");
    // Serve stopping: no call of its own, and a pull begun after it is refused without one.
    runtime.stopWaiting();
    await assert.rejects(runtime.ensureImage({ agent: "probe", image: TEST_AGENT_IMAGE, policy: "Always" }), (e: unknown) => e instanceof RuntimeError && e.code === "interrupted");
  } finally {
    subscription.close();
  }

  assert.deepEqual(methods.filter((m) => !ran.has(m)), [], "every method of DockerRuntime was driven");

  const documented = documentedCalls();
  const made = [...new Set(proxy.calls.map((c) => c.replace(/ \/v\d+\.\d+\//, " /").split("?")[0]!))].sort();
  const matches = (call: string) => documented.filter((d) => call.startsWith(`${d.method} `) && d.path.test(call.slice(d.method.length + 1)));
  assert.deepEqual(made.filter((c) => matches(c).length === 0), [], "calls made that docs/deployment.md does not list");
  const unused = documented.filter((d) => !made.some((c) => matches(c).includes(d))).map((d) => d.call);
  assert.deepEqual(unused, [], "calls docs/deployment.md lists that Ruriko does not make");
});
