/**
 * The repository's compose.yaml, run as an operator runs it — `docker compose` with an env file — under a project
 * name, ports, network and image tags of the test's own, so that it never meets a real installation on the same
 * host. Missing Docker Compose is an error, never a skip.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type Docker from "dockerode";
import { LABELS } from "../../src/runtime/runtime.ts";

export const REPO_ROOT = join(import.meta.dirname, "../..");
export const COMPOSE_FILE = join(REPO_ROOT, "compose.yaml");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; `input` is written to its stdin. Never throws for an exit code: the caller judges. */
export function run(command: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd ?? REPO_ROOT, env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(opts.input ?? "");
  });
}

/** Polls `check` every half second until it holds; fails naming `what` after `timeoutMs`. */
export async function poll(check: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
}

/** `docker compose version`, or an error saying how to install it (.ci/run does). */
export async function composeVersion(): Promise<string> {
  const r = await run("docker", ["compose", "version", "--short"]).catch((error: Error) => ({ code: -1, stdout: "", stderr: error.message }));
  if (r.code !== 0) {
    throw new Error(
      `Docker Compose v2 is not installed (\`docker compose version\`: ${r.stderr.trim() || `exit ${r.code}`}). .ci/run installs it into ~/.docker/cli-plugins; see docs/deployment.md`,
    );
  }
  return r.stdout.trim();
}

export interface ComposeProject {
  name: string;
  /** The variables of its env file. */
  vars: Record<string, string>;
  /** `docker compose -p NAME --env-file FILE -f compose.yaml ARGS…`; throws with the output on a non-zero exit. */
  compose(args: readonly string[], opts?: { input?: string; allowFailure?: boolean }): Promise<RunResult>;
  /** The id of a service's container (compose ps -q), or "" when it has none. */
  containerId(service: string): Promise<string>;
}

/** A project of the repository's compose.yaml, configured by an env file in `dir` holding `vars`. */
export function composeProject(name: string, dir: string, vars: Record<string, string>): ComposeProject {
  const envFile = join(dir, ".env");
  writeFileSync(envFile, Object.entries(vars).map(([k, v]) => `${k}=${v}\n`).join(""), { mode: 0o600 });
  // The process environment would win over the env file: the test's own values are set there too.
  const env = { ...process.env, ...vars };
  for (const key of ["COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"]) delete env[key];
  const compose: ComposeProject["compose"] = async (args, opts = {}) => {
    const r = await run("docker", ["compose", "-p", name, "--env-file", envFile, "-f", COMPOSE_FILE, ...args], { env, ...(opts.input !== undefined ? { input: opts.input } : {}) });
    if (r.code !== 0 && !opts.allowFailure) throw new Error(`docker compose ${args.join(" ")} exited with ${r.code}:\n${(r.stdout + r.stderr).trim().split("\n").slice(-40).join("\n")}`);
    return r;
  };
  return {
    name,
    vars,
    compose,
    containerId: async (service) => (await compose(["ps", "-a", "-q", service])).stdout.trim(),
  };
}

/**
 * Removes what a compose project's Ruriko made, which compose does not know: the agents' containers and volumes
 * (and any network labelled with the instance), found by the instance label (when the instance is known) and by
 * attachment to the project's agent network (when it is not), then that network itself.
 */
export async function removeAgentsOf(docker: Docker, opts: { instance?: string; network: string }): Promise<void> {
  const ids = new Set<string>();
  if (opts.instance) {
    for (const c of await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABELS.instance}=${opts.instance}`] }) })) ids.add(c.Id);
  }
  const network = await docker.getNetwork(opts.network).inspect().catch(() => undefined) as { Containers?: Record<string, unknown> } | undefined;
  for (const id of Object.keys(network?.Containers ?? {})) ids.add(id);
  const instances = new Set(opts.instance ? [opts.instance] : []);
  for (const id of ids) {
    const info = await docker.getContainer(id).inspect().catch(() => undefined);
    const instance = info?.Config.Labels?.[LABELS.instance];
    if (instance) instances.add(instance);
    await docker.getContainer(id).remove({ force: true, v: true }).catch(() => {});
  }
  for (const instance of instances) {
    const filters = JSON.stringify({ label: [`${LABELS.instance}=${instance}`] });
    const { Volumes } = await docker.listVolumes({ filters });
    for (const v of Volumes ?? []) await docker.getVolume(v.Name).remove({ force: true }).catch(() => {});
    for (const n of await docker.listNetworks({ filters })) await docker.getNetwork(n.Id).remove().catch(() => {});
  }
  await docker.getNetwork(opts.network).remove().catch(() => {});
}

/**
 * An OpenAI-compatible model on the agents' network, as a container (agents reach no loopback but their own): it
 * lists models, answers every chat with "ok", and logs each request on stdout.
 */
const MODEL_SERVER = `
const http = require("node:http");
http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    console.log(req.method, req.url);
    res.setHeader("content-type", "application/json");
    if (req.method === "GET" && req.url === "/v1/models") return res.end(JSON.stringify({ object: "list", data: [{ id: "gpt-4o-mini", object: "model", created: 0, owned_by: "test" }] }));
    if (req.method === "POST" && req.url === "/v1/chat/completions") {
      return res.end(JSON.stringify({ id: "chatcmpl-test", object: "chat.completion", created: 0, model: "gpt-4o-mini", choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
    }
    res.statusCode = 404;
    res.end(JSON.stringify({ error: { message: "not found", type: "invalid_request_error" } }));
  });
}).listen(8080, "0.0.0.0");
`;

export async function startModelContainer(docker: Docker, opts: { name: string; network: string; image: string; labels: Record<string, string> }): Promise<{ baseUrl: string }> {
  const container = await docker.createContainer({
    name: opts.name,
    Image: opts.image,
    Entrypoint: ["node", "-e", MODEL_SERVER],
    User: "65532:65532",
    Labels: opts.labels,
    HostConfig: { NetworkMode: opts.network, ReadonlyRootfs: true, CapDrop: ["ALL"] },
  });
  await container.start();
  return { baseUrl: `http://${opts.name}:8080/v1` };
}
