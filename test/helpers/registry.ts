/**
 * A real image registry on loopback for tests: Debian's `docker-registry` (the CNCF distribution registry),
 * started as a process of the test with its own config file on a free 127.0.0.1 port, optionally behind
 * htpasswd (bcrypt, made by `htpasswd -B`). Docker treats 127.0.0.0/8 registries as insecure, so no TLS.
 * Missing binaries are an error, never a skip (.ci/run installs them).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, openSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import type Docker from "dockerode";

export interface LoopbackRegistry {
  /** `127.0.0.1:PORT`: the registry host of image references. */
  host: string;
  stop(): Promise<void>;
}

function which(binary: string): string {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/bin", "/usr/sbin"])) {
    try {
      accessSync(join(dir, binary), constants.X_OK);
      return join(dir, binary);
    } catch {
      // not in this directory
    }
  }
  throw new Error(`${binary} is not installed: the registry tests need Debian's docker-registry and apache2-utils (apt-get install -y docker-registry apache2-utils; .ci/run does it)`);
}

/** A port nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** An htpasswd file with one bcrypt entry. */
export function writeHtpasswd(file: string, user: string, password: string): void {
  writeFileSync(file, execFileSync(which("htpasswd"), ["-Bbn", user, password], { encoding: "utf8" }));
}

/**
 * Starts a registry serving `storage` (several registries may share one storage directory: the distribution
 * registry keeps no state elsewhere). Resolves once it answers /v2/.
 */
export async function startRegistry(opts: { dir: string; name: string; storage: string; htpasswd?: string }): Promise<LoopbackRegistry> {
  const binary = which("docker-registry");
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = join(opts.dir, `${opts.name}.yml`);
  const auth = opts.htpasswd ? `auth:\n  htpasswd:\n    realm: ruriko-test\n    path: ${opts.htpasswd}\n` : "";
  writeFileSync(config, `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${opts.storage}\n  delete:\n    enabled: true\nhttp:\n  addr: ${host}\n${auth}`);
  const out = openSync(join(opts.dir, `${opts.name}.log`), "a");
  const child: ChildProcess = spawn(binary, ["serve", config], { stdio: ["ignore", out, out] });
  let exited: string | undefined;
  child.once("exit", (code, signal) => (exited = `exited with ${code ?? signal}`));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`registry ${opts.name} ${exited}; see ${join(opts.dir, `${opts.name}.log`)}`);
    try {
      const res = await fetch(`http://${host}/v2/`);
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`registry ${opts.name} did not answer on ${host}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** Reads a push or build stream to its end; throws the engine's error if it reports one. Returns its `aux` objects. */
export async function drain(stream: NodeJS.ReadableStream): Promise<Array<Record<string, unknown>>> {
  const aux: Array<Record<string, unknown>> = [];
  let buffered = "";
  const take = (line: string) => {
    if (!line.trim()) return;
    const message = JSON.parse(line) as { error?: string; aux?: Record<string, unknown> };
    if (message.error) throw new Error(message.error);
    if (message.aux) aux.push(message.aux);
  };
  for await (const chunk of stream) {
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf("\n")) !== -1) {
      take(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
    }
  }
  take(buffered);
  return aux;
}

/** Tags a local image as `repository:tag` and pushes it (an open registry); returns the manifest digest. */
export async function pushAs(docker: Docker, source: string, repository: string, tag: string): Promise<string> {
  await docker.getImage(source).tag({ repo: repository, tag });
  const aux = await drain(await docker.getImage(`${repository}:${tag}`).push({ tag, authconfig: {} }));
  const digest = aux.find((a) => typeof a.Digest === "string")?.Digest;
  if (typeof digest !== "string") throw new Error(`pushing ${repository}:${tag} reported no digest`);
  return digest;
}
