/**
 * The tools offered to the model: those of running MCP servers that some capability rule could allow, under
 * names the Chat Completions API accepts (`[a-zA-Z0-9_-]{1,64}`), each mapped back to its server and tool.
 * Pure. The model's choice of name is never trusted beyond this map: an unknown name runs nothing.
 */
import { createHash } from "node:crypto";
import type { ToolDefinition } from "../llm/model-client.ts";
import type { ToolInfo } from "../mcp/supervisor.ts";
import { couldAllow, type Capability } from "../policy/evaluate.ts";

export interface OfferedTools {
  definitions: ToolDefinition[];
  /** Model-facing name → the server and the tool it stands for. */
  byName: ReadonlyMap<string, { server: string; tool: string }>;
}

/** `fetch` of server `web` → `web__fetch`; anything the API would refuse is replaced, and an overlong name hashed. */
export function modelNameOf(server: string, tool: string): string {
  const name = `${server}__${tool}`.replace(/[^a-zA-Z0-9_-]/g, "_");
  if (name.length <= 64) return name;
  return `${name.slice(0, 51)}_${createHash("sha256").update(`${server}\0${tool}`).digest("hex").slice(0, 12)}`;
}

export function offeredTools(tools: readonly ToolInfo[], capabilities: readonly Capability[]): OfferedTools {
  const definitions: ToolDefinition[] = [];
  const byName = new Map<string, { server: string; tool: string }>();
  for (const t of tools) {
    if (!couldAllow(capabilities, t.server, t.name)) continue;
    const name = modelNameOf(t.server, t.name);
    if (byName.has(name)) continue;
    byName.set(name, { server: t.server, tool: t.name });
    definitions.push({ type: "function", function: { name, description: `${t.description} (tool ${t.name} of server ${t.server})`.slice(0, 1024), parameters: t.inputSchema } });
  }
  return { definitions, byName };
}
