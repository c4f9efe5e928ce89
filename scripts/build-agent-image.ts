/**
 * Builds the Gitai agent image locally, with no registry pull.
 *   node scripts/build-agent-image.ts [--tag ruriko/gitai:dev] [--if-missing]
 */
import Docker from "dockerode";
import { parseArgs } from "node:util";
import { buildAgentImage, DEFAULT_AGENT_IMAGE } from "../src/runtime/agent-image.ts";

const { values } = parseArgs({ options: { tag: { type: "string", default: DEFAULT_AGENT_IMAGE }, "if-missing": { type: "boolean", default: false } } });
const docker = new Docker();
const tag = values.tag;
if (values["if-missing"]) {
  const exists = await docker.getImage(tag).inspect().then(() => true, () => false);
  if (exists) {
    console.log(`${tag} is present`);
    process.exit(0);
  }
}
const started = Date.now();
const result = await buildAgentImage(docker, tag);
console.log(`${result.tag} ${result.reused ? "is up to date" : "built"} (${result.id.slice(7, 19)}) in ${((Date.now() - started) / 1000).toFixed(1)}s`);
