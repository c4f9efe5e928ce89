/**
 * Writes Gitai's files of the agent image under a directory, laid out as in the image (`OUT/app/gitai.mjs`,
 * `OUT/usr/local/bin/mcp-fetch-server`, …): the same files `npm run agent-image` builds its image from
 * (src/runtime/agent-image.ts). The Dockerfile's `gitai` target runs it and copies OUT onto the Node base image.
 *   node scripts/bundle-gitai.ts --out DIR
 */
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { GITAI_ENTRYPOINT, gitaiImageFiles } from "../src/runtime/agent-image.ts";

const { values } = parseArgs({ options: { out: { type: "string" } } });
if (!values.out) {
  console.error("usage: node scripts/bundle-gitai.ts --out DIR");
  process.exit(2);
}
const out = resolve(values.out);
const started = Date.now();
const files = await gitaiImageFiles();
for (const file of files) {
  const target = join(out, file.path);
  mkdirSync(dirname(target), { recursive: true });
  if (file.source !== undefined) copyFileSync(file.source, target);
  else writeFileSync(target, file.content ?? "");
  if (file.mode !== undefined) chmodSync(target, file.mode);
}
console.log(`${files.length} files under ${out} in ${((Date.now() - started) / 1000).toFixed(1)}s; entry point: ${JSON.stringify(GITAI_ENTRYPOINT)}`);
