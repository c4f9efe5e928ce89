import type Docker from "dockerode";
import { build, type Plugin } from "esbuild";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { buildLocalNodeImage, type ImageFile } from "./local-image.ts";

export const DEFAULT_AGENT_IMAGE = "ruriko/gitai:dev";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * Gitai and its own tool servers, each bundled with its dependencies into one minified file: image path → entry
 * under the repository. One file instead of hundreds of modules, and minified sources, because V8 keeps every
 * loaded module's source and scope data in the heap: about 11 MB less per process (docs/performance.md). Stack
 * traces stay readable with `NODE_OPTIONS=--enable-source-maps`: each bundle's source map sits beside it.
 */
const BUNDLES: Record<string, string> = {
  "/app/gitai.mjs": "src/cli/gitai.ts",
  "/app/tools/gitai-http-tool.mjs": "src/gitai/tools/http-tool.ts",
};
const GITAI_ENTRY = "/app/gitai.mjs";

/** MCP servers of Gitai's own, as commands: name → bundle in the image. */
const OWN_TOOL_SERVERS = { "gitai-http-tool": "/app/tools/gitai-http-tool.mjs" };

/**
 * The MCP servers the templates name, installed at build time (nothing is downloaded at run time), each with a
 * command on PATH: `package` → its `bin` entries. They run from their installed packages, as their authors ship
 * them. The browser server needs a browser the image does not carry.
 */
const MCP_SERVER_PACKAGES = ["mcp-fetch-server", "@brave/brave-search-mcp-server", "@playwright/mcp"];

/** A source file replaced before bundling: a path under the repository (`schemas/gosuto.schema.json`) and its content. */
export interface SourceReplacement {
  path: string;
  content: string;
}

/**
 * The node that runs Gitai, and how. An agent mostly waits on its model, its tools and Matrix: it needs little
 * JavaScript speed, and every agent's memory counts (docs/performance.md measures both). So: the interpreter only
 * (no Sparkplug, Maglev or TurboFan code), V8 tuned for size, no helper threads, a small young generation —
 * together ~17 MB less per idle agent. Not `--lite-mode` or `--jitless`: they turn WebAssembly off, and Node's
 * fetch (Matrix, the model) parses HTTP with WebAssembly.
 */
const NODE = "/usr/local/bin/node";
const NODE_FLAGS = ["--max-semi-space-size=1", "--single-threaded", "--optimize-for-size", "--no-opt", "--no-maglev", "--no-sparkplug"];
/** A shebang passes one argument: the tool servers get the young-generation flag alone. */
const TOOL_NODE_FLAG = "--max-semi-space-size=1";

function filesUnder(dir: string, filter: (path: string) => boolean): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path, filter));
    else if (entry.isFile() && filter(path)) out.push(path);
  }
  return out;
}

/** Node's resolution: `name` in the nearest node_modules from the requiring package up to the root. */
function resolvePackage(name: string, from: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = join(dir, "node_modules", name);
    if (statSync(join(candidate, "package.json"), { throwIfNoEntry: false })) return candidate;
    const up = dir.lastIndexOf(`${sep}node_modules${sep}`);
    if (up === -1) return undefined;
    dir = dir.slice(0, up);
  }
}

/** The package directories `roots` need at run time, following `dependencies` (and installed optional ones). */
function dependencyClosure(roots: readonly string[], root = REPO_ROOT): string[] {
  const found = new Set<string>();
  const visit = (name: string, from: string, optional: boolean) => {
    const dir = resolvePackage(name, from);
    if (!dir) {
      if (optional) return;
      throw new Error(`agent image: dependency ${name} is not installed (run npm ci)`);
    }
    if (found.has(dir)) return;
    found.add(dir);
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, dir, false);
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) visit(dep, dir, true);
  };
  for (const name of roots) visit(name, root, false);
  return [...found].sort();
}

/** The image's entry point: the interpreter with the flags above, Gitai's bundle, `serve` (the Dockerfile's `gitai` target says the same). */
export const GITAI_ENTRYPOINT: readonly string[] = [NODE, ...NODE_FLAGS, GITAI_ENTRY, "serve"];
/** The image's environment (the Dockerfile's `gitai` target sets the same). */
export const GITAI_ENV: readonly string[] = ["NODE_ENV=production", "GITAI_ACP_PORT=8765"];

/**
 * Every file of the agent image that is Gitai's own, whichever way the image is built: Gitai and its tool server
 * bundled, the MCP servers' packages, a command on PATH for each server, and package.json. `npm run agent-image`
 * puts them on a root filesystem of the local Node (below); the Dockerfile's `gitai` target writes them out with
 * `scripts/bundle-gitai.ts` and copies them onto the Node base image. One way to build Gitai, two ways to carry it.
 */
export async function gitaiImageFiles(
  /** Sources that replace the app's own: a runtime of another version (a stricter schema, say) for skew tests. */
  replace: readonly SourceReplacement[] = [],
): Promise<ImageFile[]> {
  const files: ImageFile[] = [{ path: "/app/package.json", source: join(REPO_ROOT, "package.json") }];
  for (const [path, entry] of Object.entries(BUNDLES)) files.push(...(await bundle(entry, path, replace)));
  for (const root of dependencyClosure(MCP_SERVER_PACKAGES)) {
    // Nested node_modules of a package are visited as packages of their own.
    for (const file of filesUnder(root, (p) => !relative(root, p).split(sep).includes("node_modules"))) {
      files.push({ path: `/app/${relative(REPO_ROOT, file).split(sep).join("/")}`, source: file });
    }
  }
  files.push(...commandsFor(MCP_SERVER_PACKAGES, OWN_TOOL_SERVERS));
  return files;
}

/**
 * Builds the Gitai agent image on this machine with no registry: a root filesystem assembled from the
 * local Node 24, Gitai bundled into one file, and the MCP servers' packages; non-root, nothing else in it.
 * The Dockerfile's `gitai` target puts the same files on the official Node image where a registry exists.
 */
export async function buildAgentImage(
  docker: Docker,
  tag = DEFAULT_AGENT_IMAGE,
  /** Sources that replace the app's own: a runtime of another version (a stricter schema, say) for skew tests. */
  replace: readonly SourceReplacement[] = [],
): Promise<{ tag: string; id: string; reused: boolean }> {
  return buildLocalNodeImage(docker, {
    tag,
    files: await gitaiImageFiles(replace),
    entrypoint: [...GITAI_ENTRYPOINT],
    env: [...GITAI_ENV],
    labels: { "org.opencontainers.image.title": "gitai", "ruriko.dev/component": "gitai" },
    workdir: "/app",
    exposedPorts: ["8765/tcp"],
  });
}

/** One entry point and everything it imports as one ESM file at `path` in the image, with its source map beside it. */
async function bundle(entry: string, path: string, replace: readonly SourceReplacement[]): Promise<ImageFile[]> {
  const result = await build({
    entryPoints: [join(REPO_ROOT, entry)],
    bundle: true,
    platform: "node",
    target: "node24",
    format: "esm",
    minify: true,
    sourcemap: "external",
    outfile: join(REPO_ROOT, "dist-image", path),
    write: false,
    logLevel: "silent",
    // Bundled CommonJS packages call require() for Node's built-ins, which an ES module does not have.
    banner: { js: 'import { createRequire as __gitaiCreateRequire } from "node:module"; const require = __gitaiCreateRequire(import.meta.url);' },
    plugins: replace.length > 0 ? [replaceSources(replace)] : [],
  });
  return result.outputFiles.map((out) => ({
    path: out.path.endsWith(".map") ? `${path}.map` : path,
    content: Buffer.from(out.contents),
    mode: 0o644,
  }));
}

function replaceSources(replace: readonly SourceReplacement[]): Plugin {
  const byPath = new Map(replace.map((r) => [resolve(REPO_ROOT, r.path), r.content]));
  return {
    name: "replace-sources",
    setup(b) {
      b.onLoad({ filter: /.*/ }, (args) => {
        const content = byPath.get(args.path);
        if (content === undefined) return undefined;
        return { contents: content, loader: args.path.endsWith(".json") ? "json" : "ts" };
      });
    },
  };
}

/**
 * A command on PATH for each MCP server: a two-line script run by the image's node (the image has no shell and
 * no /usr/bin/env, so the packages' own `#!/usr/bin/env node` cannot start).
 */
function commandsFor(packages: readonly string[], own: Record<string, string>): ImageFile[] {
  const script = (module: string) => `#!${NODE} ${TOOL_NODE_FLAG}\nimport ${JSON.stringify(module)};\n`;
  const commands: ImageFile[] = Object.entries(own).map(([name, module]) => ({ path: `/usr/local/bin/${name}`, content: script(module), mode: 0o755 }));
  for (const name of packages) {
    const dir = resolvePackage(name, REPO_ROOT);
    if (!dir) throw new Error(`agent image: MCP server ${name} is not installed (run npm ci)`);
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { bin?: string | Record<string, string> };
    const bins = typeof pkg.bin === "string" ? { [name.split("/").pop()!]: pkg.bin } : (pkg.bin ?? {});
    for (const [command, path] of Object.entries(bins)) {
      commands.push({ path: `/usr/local/bin/${command}`, content: script(`/app/${relative(REPO_ROOT, join(dir, path)).split(sep).join("/")}`), mode: 0o755 });
    }
  }
  return commands;
}
