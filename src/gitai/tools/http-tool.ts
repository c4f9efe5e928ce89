#!/usr/bin/env node
/**
 * `gitai-http-tool`: an MCP server (stdio, the official SDK) with one tool, `http_get`, shipped in the agent
 * image. It reads a URL and returns the status and the body as text, cut at a size. It refuses nothing by
 * itself — unlike public fetch servers, it may reach internal services — so what it may read is the Gosuto's
 * to say: allow it with a `url_prefix` constraint (docs/gitai.md).
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { RURIKO_VERSION } from "../../version.ts";

// Under Gitai's own cap on a tool result (64 KiB), so the cut is said here, where the size is known.
const MAX_BYTES = Number(process.env.HTTP_TOOL_MAX_BYTES ?? 60_000);
const TIMEOUT_MS = Number(process.env.HTTP_TOOL_TIMEOUT_MS ?? 20_000);

const server = new Server({ name: "gitai-http-tool", version: RURIKO_VERSION }, { capabilities: { tools: {} } });

server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: [
    {
      name: "http_get",
      description: "Reads a web page or API response with an HTTP GET and returns its status and body as text.",
      inputSchema: { type: "object", properties: { url: { type: "string", description: "An absolute http(s) URL." } }, required: ["url"], additionalProperties: false },
    },
  ],
}));

server.setRequestHandler(CallToolRequestSchema, async (request) => {
  if (request.params.name !== "http_get") return { isError: true, content: [{ type: "text", text: `no tool ${request.params.name}` }] };
  const url = request.params.arguments?.url;
  if (typeof url !== "string" || !/^https?:\/\//i.test(url)) return { isError: true, content: [{ type: "text", text: "url must be an absolute http(s) URL" }] };
  try {
    const response = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(TIMEOUT_MS) });
    const bytes = Buffer.from(await response.arrayBuffer());
    const body = bytes.subarray(0, MAX_BYTES).toString("utf8");
    const cut = bytes.length > MAX_BYTES ? `\n[cut at ${MAX_BYTES} of ${bytes.length} bytes]` : "";
    // Redirects are not followed: the policy judged this URL, not the one it points to.
    const location = response.headers.get("location");
    return { content: [{ type: "text", text: `HTTP ${response.status}${location ? ` (redirects to ${location}; not followed)` : ""}\n\n${body}${cut}` }] };
  } catch (error) {
    return { isError: true, content: [{ type: "text", text: `GET ${url} failed: ${(error as Error).name === "TimeoutError" ? "timed out" : (error as Error).message}` }] };
  }
});

await server.connect(new StdioServerTransport());
