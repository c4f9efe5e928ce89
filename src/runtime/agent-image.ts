import type Docker from "dockerode";
import { readdirSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { buildLocalNodeImage } from "./local-image.ts";

export const DEFAULT_AGENT_IMAGE = "ruriko/gitai:dev";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Runtime dependencies of the gitai entry point, copied into the image (nothing else of node_modules). */
const GITAI_DEPENDENCIES = ["commander"];

function filesUnder(dir: string, filter: (path: string) => boolean): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path, filter));
    else if (entry.isFile() && filter(path)) out.push(path);
  }
  return out;
}

/**
 * Builds the Gitai agent image on this machine with no registry: a root filesystem assembled from the
 * local Node 24 and the app's sources (run by Node's type stripping), non-root, nothing else in it.
 * The production Dockerfile builds the same layout from the official Node image where a registry exists.
 */
export async function buildAgentImage(docker: Docker, tag = DEFAULT_AGENT_IMAGE): Promise<{ tag: string; id: string; reused: boolean }> {
  const files: Array<{ path: string; source: string }> = [{ path: "/app/package.json", source: join(REPO_ROOT, "package.json") }];
  for (const file of filesUnder(join(REPO_ROOT, "src"), (p) => p.endsWith(".ts"))) {
    files.push({ path: `/app/${relative(REPO_ROOT, file).split(sep).join("/")}`, source: file });
  }
  for (const schema of filesUnder(join(REPO_ROOT, "schemas"), (p) => p.endsWith(".json"))) {
    files.push({ path: `/app/${relative(REPO_ROOT, schema).split(sep).join("/")}`, source: schema });
  }
  for (const dep of GITAI_DEPENDENCIES) {
    const root = join(REPO_ROOT, "node_modules", dep);
    if (!statSync(root, { throwIfNoEntry: false })) throw new Error(`agent image: dependency ${dep} is not installed (run npm ci)`);
    for (const file of filesUnder(root, () => true)) files.push({ path: `/app/${relative(REPO_ROOT, file).split(sep).join("/")}`, source: file });
  }
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
