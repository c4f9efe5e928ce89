/**
 * The repository's compose.yaml, as an operator runs it: `docker compose build` (the Dockerfile's two targets),
 * `up` (Synapse, `ruriko bootstrap`, Ruriko, the example agents), a second `up` that changes nothing, `down` and
 * `up` again with every piece of state kept. Nothing is overridden but what an operator sets in .env; the test's
 * own project name, ports, network and image tags keep it apart from a real installation on the same host.
 *
 * The example agents are ./manifests-example with edits to a copy: `spec.image` names the image this build made,
 * each persona's `baseUrl` a model stand-in on the agents' network (their model, OpenAI, cannot be reached here,
 * and an agent whose model fails is Degraded, not Ready). Their secrets are set and their grants
 * approved with `ruriko` inside the Ruriko container, the local path an operator has. The operator of .env asks
 * `/ruriko status` in the status room that `ruriko bootstrap` made and invited them to. The git in Ruriko's image
 * (which `--git` needs, and compose's own setup does not use) is tried on its own: serve following a file://
 * repository made inside a container of the image.
 *
 * Docker Compose missing is a failure, never a skip (.ci/run installs it). Agents are Ruriko's, not compose's:
 * `down` leaves them, and the test removes them by label at the end.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type Docker from "dockerode";
import type { buildStatusReport } from "../../src/controller/status-report.ts";
import { registerWithSharedSecret } from "../../src/matrix/synapse-admin.ts";
import { GITAI_ENTRYPOINT } from "../../src/runtime/agent-image.ts";
import { composeProject, composeVersion, poll, removeAgentsOf, REPO_ROOT, run, startModelContainer, type ComposeProject } from "../helpers/compose.ts";
import { dockerClient, testLabels } from "../helpers/docker.ts";
import { matrixApi, say, timeline, type MatrixUser } from "../helpers/matrix-chat.ts";
import { freePort } from "../helpers/synapse.ts";

type StatusReport = ReturnType<typeof buildStatusReport>;

const EXAMPLE_AGENTS = ["browserbot", "newsbot"];
const RURIKO_IMAGE = "ruriko:compose-test";
const GITAI_IMAGE = "ruriko/gitai:compose-test";

/** A copy of manifests-example whose agents run `image` and whose models are at `modelUrl`. */
function exampleManifests(dir: string, image: string, modelUrl: string): void {
  cpSync(join(REPO_ROOT, "manifests-example"), dir, { recursive: true });
  for (const file of readdirSync(join(dir, "agents"))) {
    const path = join(dir, "agents", file);
    const text = readFileSync(path, "utf8");
    assert.match(text, /\n {2}image: ruriko\/gitai:dev\n/, `${file} names the image compose builds`);
    writeFileSync(path, text.replace(/\n {2}image: ruriko\/gitai:dev\n/, `\n  image: ${image}\n`));
  }
  for (const file of readdirSync(join(dir, "gosutos"))) {
    const path = join(dir, "gosutos", file);
    const text = readFileSync(path, "utf8");
    assert.match(text, /\n {2}persona:\n/, `${file} has a persona`);
    writeFileSync(path, text.replace(/\n {2}persona:\n/, `\n  persona:\n    baseUrl: ${modelUrl}\n`));
  }
}

/**
 * Run in Ruriko's image, as its user, with no network: makes a git repository with one manifest, serves it with
 * `ruriko serve --git file://…` and prints the commit and the revision serve applied (simple-git runs the image's
 * git binary), or serve's log if it never applies one. The loop only bounds a serve that never gets there.
 */
const GIT_PROBE = `set -eu
export HOME=/tmp
mkdir /tmp/repo
printf 'apiVersion: ruriko.dev/v1alpha1\\nkind: Gosuto\\nmetadata: {name: probe}\\nspec: {}\\n' > /tmp/repo/probe.yaml
git --version
git -C /tmp/repo init -q -b main
git -C /tmp/repo add -A
git -C /tmp/repo -c user.name=Ops -c user.email=ops@example.org commit -q -m 'a manifest'
echo "commit $(git -C /tmp/repo rev-parse HEAD)"
ruriko serve --git file:///tmp/repo --state-dir /tmp/state --http 127.0.0.1:8484 --log-level warn >/tmp/serve.log 2>&1 &
serve=$!
for i in $(seq 1 600); do
  if node -e 'fetch("http://127.0.0.1:8484/api/v1/status").then((r) => r.json()).then((s) => { if (!s.source.appliedRevision) process.exit(1); console.log("applied " + s.source.appliedRevision); }, () => process.exit(1))'; then
    kill $serve
    exit 0
  fi
  sleep 0.5
done
cat /tmp/serve.log
exit 1
`;

const isReady = (agent: StatusReport["agents"][number] | undefined) => !!agent?.conditions.some((c) => c.type === "Ready" && c.status === "True");

describe("compose.yaml: up, up again, down, up", { timeout: 30 * 60_000 }, () => {
  const id = randomBytes(3).toString("hex");
  const network = `ruriko-test-${id}-agents`;
  const dir = mkdtempSync(join(tmpdir(), "ruriko-compose-"));
  const registrationSecret = randomBytes(32).toString("hex");
  let docker: Docker;
  let project: ComposeProject;
  let synapseUrl: string;
  let rurikoUrl: string;
  let instance: string | undefined;
  let alice: MatrixUser;
  const timings: string[] = [];

  const timed = async <T>(what: string, step: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const result = await step();
    timings.push(`${what} ${((Date.now() - started) / 1000).toFixed(1)}s`);
    return result;
  };
  const status = async (): Promise<StatusReport | undefined> =>
    fetch(`${rurikoUrl}/api/v1/status`).then((r) => (r.ok ? (r.json() as Promise<StatusReport>) : undefined), () => undefined);
  /** Ruriko's containers ids by agent, from Docker. */
  const agentContainers = async (): Promise<Record<string, string>> => {
    const list = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`ruriko.dev/instance=${instance}`] }) });
    return Object.fromEntries(list.map((c) => [c.Labels["ruriko.dev/agent"]!, c.Id]));
  };
  const waitForReady = async (what: string, meanwhile?: () => Promise<void>): Promise<StatusReport> => {
    let last: StatusReport | undefined;
    await poll(async () => {
      await meanwhile?.();
      last = await status();
      return EXAMPLE_AGENTS.every((name) => isReady(last?.agents.find((a) => a.name === name)));
    }, what, 180_000).catch(async (error: Error) => {
      const seen = last?.agents.map((a) => ({ name: a.name, phase: a.phase, ready: a.conditions.find((c) => c.type === "Ready") }));
      throw new Error(`${error.message}; last status: ${JSON.stringify(seen)}\n${await logsOf("ruriko")}`);
    });
    return last!;
  };
  const logsOf = async (service: string) => (project ? (await project.compose(["logs", "--no-color", "--tail", "30", service], { allowFailure: true })).stdout : "");
  /** `ruriko …` inside the Ruriko container, as an operator types it. */
  const ruriko = (args: string[], input?: string) => project.compose(["exec", "-T", "ruriko", "ruriko", ...args], input !== undefined ? { input } : {});

  before(async () => {
    const version = await composeVersion(); // fails, loudly, when compose is missing
    timings.push(`compose ${version}`);
    docker = await dockerClient();
    // The public base images cannot be pulled here: local stand-ins under the same names (reused when unchanged).
    const base = await timed("base images", () => run("bash", [join(REPO_ROOT, "scripts/local-base-images.sh")]));
    assert.equal(base.code, 0, `scripts/local-base-images.sh failed:\n${base.stdout}${base.stderr}`);

    const [synapsePort, rurikoPort] = [await freePort(), await freePort()];
    synapseUrl = `http://127.0.0.1:${synapsePort}`;
    rurikoUrl = `http://127.0.0.1:${rurikoPort}`;
    const model = `ruriko-test-${id}-model`;
    exampleManifests(join(dir, "manifests"), GITAI_IMAGE, `http://${model}:8080/v1`);
    project = composeProject(`ruriko-test-${id}`, dir, {
      MATRIX_REGISTRATION_SECRET: registrationSecret,
      DOCKER_GID: String(statSync("/var/run/docker.sock").gid),
      RURIKO_OPERATOR: "@alice:localhost",
      MATRIX_SERVER_NAME: "localhost",
      MANIFESTS_DIR: join(dir, "manifests"),
      SYNAPSE_PORT: String(synapsePort),
      RURIKO_PORT: String(rurikoPort),
      RURIKO_IMAGE,
      GITAI_IMAGE,
      AGENT_NETWORK: network,
    });
    await timed("compose build", () => project.compose(["build"]));
    await timed("compose up", () => project.compose(["up", "-d"]));
    await startModelContainer(docker, { name: model, network, image: "node:24-bookworm-slim", labels: testLabels() });
  });

  after(async () => {
    if (project) await project.compose(["down", "--volumes", "--remove-orphans", "--timeout", "5"], { allowFailure: true });
    if (docker) {
      await docker.getContainer(`ruriko-test-${id}-model`).remove({ force: true }).catch(() => {});
      await removeAgentsOf(docker, { ...(instance ? { instance } : {}), network });
    }
    rmSync(dir, { recursive: true, force: true });
    console.log(`compose test timings: ${timings.join(", ")}`);
  });

  test("up: Ruriko starts the example agents; with their secrets set and grants approved both are Ready", async () => {
    let first: StatusReport | undefined;
    await poll(async () => (first = await status())?.agents.length === EXAMPLE_AGENTS.length, `the example agents in Ruriko's /api/v1/status at ${rurikoUrl}`, 90_000).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await logsOf("bootstrap")}\n${await logsOf("ruriko")}`);
    });
    instance = first!.instance;
    assert.deepEqual(first!.agents.map((a) => a.name).sort(), EXAMPLE_AGENTS);

    // The images are the Dockerfile's: Ruriko healthy by its HEALTHCHECK, Gitai started as `npm run agent-image` starts it.
    const gitai = await docker.getImage(GITAI_IMAGE).inspect();
    assert.deepEqual(gitai.Config.Entrypoint, [...GITAI_ENTRYPOINT], "the Dockerfile's gitai target runs Gitai with GITAI_ENTRYPOINT");
    assert.equal(gitai.Config.User, "65532:65532");
    assert.equal((await docker.getImage(RURIKO_IMAGE).inspect()).Config.User, "65532:65532");

    await timed("secrets", async () => {
      await ruriko(["secret", "set", "openai-api-key"], "sk-test-openai\n");
      await ruriko(["secret", "set", "search-api-key"], "test-brave-key\n");
    });
    // Every request the examples make is approved as it appears: the three secret grants docs/deployment.md names.
    const approved = new Map<string, string>();
    const ready = await timed("approvals, agents Ready", () =>
      waitForReady("both example agents Ready", async () => {
        const pending = JSON.parse((await ruriko(["approvals", "list", "-o", "json"])).stdout) as Array<{ id: string; objectKey: string }>;
        for (const request of pending.filter((r) => !approved.has(r.id))) {
          await ruriko(["approvals", "approve", request.id, "--reason", "compose test"]);
          approved.set(request.id, request.objectKey);
        }
      }),
    );
    assert.deepEqual([...approved.values()].sort(), ["SecretBinding/browserbot-openai", "SecretBinding/newsbot-openai", "SecretBinding/newsbot-search"], "the quick start's three grants, and nothing else, waited for approval");
    for (const agent of ready.agents) assert.equal(agent.container?.state, "running", agent.name);

    const containers = await agentContainers();
    assert.deepEqual(Object.keys(containers).sort(), EXAMPLE_AGENTS);
    for (const [name, containerId] of Object.entries(containers)) {
      const info = await docker.getContainer(containerId).inspect();
      assert.equal(info.HostConfig.NetworkMode, network, `${name} is on the compose network`);
      assert.equal(info.Config.Image, GITAI_IMAGE);
      // The image's HEALTHCHECK command answers for a running agent (Docker runs it only once a minute).
      const exec = await docker.getContainer(containerId).exec({ Cmd: ["/usr/local/bin/node", "/usr/local/lib/ruriko/healthcheck.mjs", "gitai"], AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({});
      stream.resume();
      await new Promise((r) => stream.on("end", r));
      assert.equal((await exec.inspect()).ExitCode, 0, `${name}'s health check passes`);
    }
    // Agents are on the compose network only: Ruriko made no bridge network of its own, which `down` would leave behind.
    const owned = await docker.listNetworks({ filters: JSON.stringify({ label: [`ruriko.dev/instance=${instance}`] }) });
    assert.deepEqual(owned.map((n) => n.Name), [], "no network of Ruriko's own");
    await poll(async () => (await docker.getContainer(await project.containerId("ruriko")).inspect()).State.Health?.Status === "healthy", "Ruriko's container healthy", 60_000);
  });

  test("Ruriko's image has git: serve follows a file:// repository made inside it", async () => {
    const container = await docker.createContainer({ Image: RURIKO_IMAGE, Entrypoint: ["/bin/sh", "-c", GIT_PROBE], Tty: true, Labels: testLabels(), HostConfig: { NetworkMode: "none" } });
    try {
      await container.start();
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      const output = (await container.logs({ stdout: true, stderr: true })).toString("utf8");
      assert.equal(StatusCode, 0, output);
      assert.match(output, /^git version \d/m);
      const commit = /^commit ([0-9a-f]{40})\s*$/m.exec(output)?.[1];
      assert.ok(commit, output);
      assert.match(output, new RegExp(`^applied ${commit}\\s*$`, "m"), "the revision serve applied is the commit it fetched with git");
    } finally {
      await container.remove({ force: true, v: true }); // and the anonymous volume of the image's VOLUME /data
    }
  });

  test("the operator of .env asks /ruriko status in the status room bootstrap made, and Ruriko answers", async () => {
    const registered = await registerWithSharedSecret(synapseUrl, registrationSecret, { username: "alice", password: randomBytes(12).toString("hex") });
    alice = { userId: registered.userId, accessToken: registered.accessToken };
    // Invited by bootstrap before the account existed: the invitation waited.
    const joined = await matrixApi(synapseUrl, alice.accessToken, "POST", `/join/${encodeURIComponent("#ruriko-status:localhost")}`, {});
    const room = joined.room_id as string;
    const asked = await say(synapseUrl, alice, room, "/ruriko status");
    let answer: string | undefined;
    await poll(
      async () => {
        const messages = await timeline(synapseUrl, alice, room);
        // The answer begins as `ruriko status` does; status lines may come in between.
        answer = messages
          .slice(messages.findIndex((m) => m.eventId === asked) + 1)
          .find((m) => m.sender === "@ruriko:localhost" && m.body.startsWith(`instance ${instance}`))?.body;
        return answer !== undefined;
      },
      "Ruriko's answer to /ruriko status",
      60_000,
    );
    assert.match(answer!, /browserbot\s+Ready/);
    assert.match(answer!, /newsbot\s+Ready/);
  });

  test("a second up changes nothing", async () => {
    const before = { synapse: await project.containerId("synapse"), ruriko: await project.containerId("ruriko"), agents: await agentContainers() };
    await timed("second up", () => project.compose(["up", "-d"]));
    assert.equal(await project.containerId("synapse"), before.synapse, "Synapse's container is the same");
    assert.equal(await project.containerId("ruriko"), before.ruriko, "Ruriko's container is the same");
    assert.deepEqual(await agentContainers(), before.agents, "the agents' containers are the same");
    assert.match((await project.compose(["logs", "--no-color", "bootstrap"])).stdout, /nothing changed/, "bootstrap changed nothing");
  });

  test("down, then up: the same instance, the same agents, every secret and approval kept", async () => {
    const agentsBefore = await agentContainers();
    const auditBefore = (await ruriko(["approvals", "list", "--all", "-o", "json"])).stdout;
    await timed("down", () => project.compose(["down", "--timeout", "20"]));
    assert.equal(await project.containerId("ruriko"), "", "Ruriko's container is gone");
    for (const [name, containerId] of Object.entries(agentsBefore)) {
      const state = (await docker.getContainer(containerId).inspect()).State;
      assert.equal(state.Running, true, `${name} runs on without Ruriko: ${JSON.stringify(state)}\n${(await docker.getContainer(containerId).logs({ stdout: true, stderr: true, tail: 30 })).toString()}`);
    }

    await timed("up after down", () => project.compose(["up", "-d"]));
    await poll(async () => (await status()) !== undefined, "Ruriko back", 90_000);
    const back = await waitForReady("both agents Ready again");
    assert.equal(back.instance, instance, "the same instance id: the state volume was kept");
    assert.deepEqual(await agentContainers(), agentsBefore, "no agent was recreated");
    assert.equal((await ruriko(["approvals", "list", "--all", "-o", "json"])).stdout, auditBefore, "the approvals are as they were");
    assert.match((await project.compose(["logs", "--no-color", "bootstrap"])).stdout, /nothing changed/, "Ruriko's account, token and rooms were kept");
    // Synapse kept its database: the operator's question is still in the room.
    const room = (await matrixApi(synapseUrl, alice.accessToken, "GET", `/directory/room/${encodeURIComponent("#ruriko-status:localhost")}`)).room_id as string;
    assert.ok((await timeline(synapseUrl, alice, room)).some((m) => m.sender === alice.userId && m.body === "/ruriko status"));
  });
});
