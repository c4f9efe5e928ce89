import type Docker from "dockerode";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { buildLocalNodeImage, type ImageFile } from "./local-image.ts";

export const DEFAULT_AGENT_IMAGE = "ruriko/gitai:dev";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * What the gitai entry point imports from node_modules; their dependencies are followed from their
 * package.json files, and nothing else of node_modules goes into the image.
 */
const GITAI_DEPENDENCIES = ["commander", "fastify", "pino", "ajv", "ajv-errors", "ajv-formats", "js-yaml", "yaml"];

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
export function dependencyClosure(roots: readonly string[], root = REPO_ROOT): string[] {
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

/**
 * Builds the Gitai agent image on this machine with no registry: a root filesystem assembled from the
 * local Node 24 and the app's sources (run by Node's type stripping), non-root, nothing else in it.
 * The production Dockerfile builds the same layout from the official Node image where a registry exists.
 */
export async function buildAgentImage(
  docker: Docker,
  tag = DEFAULT_AGENT_IMAGE,
  /** Files that replace the app's own: a runtime of another version (a stricter schema, say) for skew tests. */
  replace: readonly ImageFile[] = [],
): Promise<{ tag: string; id: string; reused: boolean }> {
  let files: ImageFile[] = [{ path: "/app/package.json", source: join(REPO_ROOT, "package.json") }];
  for (const file of filesUnder(join(REPO_ROOT, "src"), (p) => p.endsWith(".ts"))) {
    files.push({ path: `/app/${relative(REPO_ROOT, file).split(sep).join("/")}`, source: file });
  }
  for (const schema of filesUnder(join(REPO_ROOT, "schemas"), (p) => p.endsWith(".json"))) {
    files.push({ path: `/app/${relative(REPO_ROOT, schema).split(sep).join("/")}`, source: schema });
  }
  for (const root of dependencyClosure(GITAI_DEPENDENCIES)) {
    // Nested node_modules of a package are visited as packages of their own.
    for (const file of filesUnder(root, (p) => !relative(root, p).split(sep).includes("node_modules"))) {
      files.push({ path: `/app/${relative(REPO_ROOT, file).split(sep).join("/")}`, source: file });
    }
  }
  files = [...files.filter((f) => !replace.some((r) => r.path === f.path)), ...replace];
  return buildLocalNodeImage(docker, {
    tag,
    files,
    entrypoint: ["/usr/local/bin/node", "/app/src/cli/gitai.ts", "serve"],
    env: ["NODE_ENV=production", "GITAI_ACP_PORT=8765"],
    labels: { "org.opencontainers.image.title": "gitai", "ruriko.dev/component": "gitai" },
    workdir: "/app",
    exposedPorts: ["8765/tcp"],
  });
}
