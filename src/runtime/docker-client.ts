/**
 * The Docker API client (dockerode), loaded without the two transports Ruriko never uses. dockerode requires
 * them when it is loaded, not when they are used: docker-modem's SSH transport (ssh2, whose crypto allocates its
 * WebAssembly memory at load) and dockerode's BuildKit sessions (@grpc/grpc-js and protobuf loaders). Together
 * they were 11–12 MiB of an idle serve's RSS. Each is replaced by a module that fails when called, naming what is
 * not supported; every call Ruriko makes goes over the engine's socket or TCP (DOCKER_HOST).
 *
 * The replacement is a resolve hook on those two relative imports of those two files only (node:module
 * registerHooks), registered before dockerode is first loaded: a dockerode that no longer imports them is simply
 * not affected. Tests and benches that import dockerode themselves get the whole package.
 */
import type Docker from "dockerode";
import { registerHooks } from "node:module";

/** The replaced imports: importing file (its URL's end), specifier, and what it provided. */
const UNUSED_TRANSPORTS = [
  { parent: "/docker-modem/lib/modem.js", specifier: "./ssh", url: "ruriko-unused:docker-ssh", what: "Docker over SSH" },
  { parent: "/dockerode/lib/docker.js", specifier: "./session", url: "ruriko-unused:buildkit-session", what: "BuildKit sessions" },
] as const;

let hooked = false;

function skipUnusedTransports(): void {
  if (hooked) return;
  hooked = true;
  registerHooks({
    resolve(specifier, context, next) {
      const parent = context.parentURL ?? "";
      const unused = UNUSED_TRANSPORTS.find((t) => t.specifier === specifier && parent.endsWith(t.parent));
      return unused ? { url: unused.url, shortCircuit: true } : next(specifier, context);
    },
    load(url, context, next) {
      const unused = UNUSED_TRANSPORTS.find((t) => t.url === url);
      if (!unused) return next(url, context);
      const message = `${unused.what} is not supported by Ruriko: reach the engine by its socket or by TCP (DOCKER_HOST)`;
      return { format: "commonjs", shortCircuit: true, source: `module.exports = function unsupported() { throw new Error(${JSON.stringify(message)}); };` };
    },
  });
}

/** A client of the engine dockerode finds from the environment (DOCKER_HOST, else the local socket). */
export async function openDockerClient(): Promise<Docker> {
  skipUnusedTransports();
  const { default: DockerClient } = await import("dockerode");
  return new DockerClient();
}
