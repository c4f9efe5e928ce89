/**
 * The MCP supervisor: one stdio client (the official MCP TypeScript SDK) per Gosuto `mcps[]` entry. It starts
 * each server with only the environment it is given — the Gosuto's `mcps[].env` and the granted secrets mapped
 * to that server (the SDK adds a handful of harmless variables such as PATH and HOME) — never Gitai's own
 * environment or its tokens; keeps each server's tool list; restarts a server that exits, with backoff, when
 * `autoRestart`; and restarts only the servers whose definition (command, arguments, environment) changed.
 *
 * States, as `/status` reports them: starting → running; a server that exits goes restarting (autoRestart) or
 * failed; stopped when it is not to run (removed, or waiting for a secret it needs).
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { digestOf } from "../../api/digest.ts";
import type { Logger } from "../../observability/logger.ts";
import { RURIKO_VERSION } from "../../version.ts";
import { BackoffTracker, type BackoffPolicy } from "../../time/backoff.ts";

export interface McpServerSpec {
  name: string;
  command: string;
  args: string[];
  /** Everything the server's environment holds besides the SDK's defaults: mcps[].env and its mapped secrets. */
  env: Record<string, string>;
  autoRestart: boolean;
  /** Secrets the server needs that the agent does not hold yet: it starts when they arrive. */
  waitingFor: string[];
}

export type McpServerStateName = "starting" | "running" | "restarting" | "failed" | "stopped";

export interface McpServerState {
  name: string;
  state: McpServerStateName;
  /** Every tool the server lists, before policy. */
  tools: number;
  restarts: number;
  lastError: string | null;
}

export interface ToolInfo {
  server: string;
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
}

export type ToolResult = { ok: true; text: string } | { ok: false; error: string };

export interface McpSupervisorOptions {
  logger: Logger;
  /** Restart delays for a server that keeps exiting. */
  restart?: BackoffPolicy;
  /** How long a server may take to start and list its tools. */
  startTimeoutMs?: number;
  callTimeoutMs?: number;
  /** Tool results longer than this are cut (the model gets the start and a note). */
  maxResultBytes?: number;
}

type SupervisorSettings = Required<McpSupervisorOptions>;

/** A server that stayed up this long starts its restart backoff afresh. */
const STABLE_MS = 60_000;
const STDERR_KEPT = 2000;

class ServerRunner {
  readonly spec: McpServerSpec;
  readonly digest: string;
  state: McpServerStateName = "stopped";
  tools: ToolInfo[] = [];
  restarts = 0;
  lastError: string | null = null;
  private client: Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private startedAt = 0;
  private stderr = "";
  private readonly o: SupervisorSettings;
  private readonly backoff: BackoffTracker<string>;

  constructor(spec: McpServerSpec, o: SupervisorSettings, backoff: BackoffTracker<string>) {
    this.spec = spec;
    this.o = o;
    this.backoff = backoff;
    this.digest = digestOf({ command: spec.command, args: spec.args, env: spec.env, autoRestart: spec.autoRestart });
  }

  run(): void {
    if (this.spec.waitingFor.length > 0) {
      this.set("stopped", `waiting for secret${this.spec.waitingFor.length > 1 ? "s" : ""} ${this.spec.waitingFor.join(", ")}`);
      return;
    }
    void this.start();
  }

  private async start(): Promise<void> {
    if (this.stopping) return;
    this.set(this.restarts > 0 ? "restarting" : "starting", this.lastError);
    this.stderr = "";
    const transport = new StdioClientTransport({ command: this.spec.command, args: this.spec.args, env: this.spec.env, stderr: "pipe" });
    transport.stderr?.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString("utf8")).slice(-STDERR_KEPT);
    });
    const client = new Client({ name: "gitai", version: RURIKO_VERSION });
    transport.onclose = () => this.exited(client);
    try {
      await client.connect(transport, { timeout: this.o.startTimeoutMs });
      const listed = await client.listTools(undefined, { timeout: this.o.startTimeoutMs });
      if (this.stopping) return void (await client.close().catch(() => {}));
      this.client = client;
      this.startedAt = Date.now();
      this.tools = listed.tools.map((t) => ({ server: this.spec.name, name: t.name, description: t.description ?? "", inputSchema: t.inputSchema as Record<string, unknown> }));
      // The last error stays told after a restart: why it restarted is worth knowing.
      this.set("running", this.restarts > 0 ? this.lastError : null);
      this.o.logger.info({ mcp: this.spec.name, tools: this.tools.length }, "MCP server running");
    } catch (error) {
      await client.close().catch(() => {});
      this.failed(`cannot start: ${describe(error, this.spec.command)}${this.stderrTail()}`);
    }
  }

  private exited(client: Client): void {
    if (this.stopping || this.client !== client) return;
    this.client = undefined;
    this.tools = [];
    if (Date.now() - this.startedAt > STABLE_MS) this.backoff.succeeded(this.spec.name);
    this.failed(`exited${this.stderrTail()}`);
  }

  private failed(reason: string): void {
    if (this.stopping) return;
    this.o.logger.warn({ mcp: this.spec.name, err: reason }, "MCP server failed");
    if (!this.spec.autoRestart) {
      this.set("failed", reason);
      return;
    }
    const { delayMs } = this.backoff.failed(this.spec.name);
    this.restarts++;
    this.set("restarting", reason);
    this.timer = setTimeout(() => void this.start(), delayMs).unref();
  }

  async call(tool: string, args: Record<string, unknown>): Promise<ToolResult> {
    const client = this.client;
    if (!client || this.state !== "running") return { ok: false, error: `MCP server ${this.spec.name} is ${this.state}${this.lastError ? `: ${this.lastError}` : ""}` };
    try {
      const result = await client.callTool({ name: tool, arguments: args }, undefined, { timeout: this.o.callTimeoutMs });
      const text = textOf(result.content, this.o.maxResultBytes);
      return result.isError ? { ok: false, error: text || "the tool reported an error" } : { ok: true, text };
    } catch (error) {
      // The SDK has told the server the call is cancelled; the server stays up for the next call.
      if (error instanceof McpError && error.code === ErrorCode.RequestTimeout) return { ok: false, error: `${tool} did not answer within ${this.o.callTimeoutMs / 1000} s (the call timeout)` };
      return { ok: false, error: describe(error, this.spec.command) };
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    this.tools = [];
    await client?.close().catch(() => {});
  }

  describe(): McpServerState {
    return { name: this.spec.name, state: this.state, tools: this.tools.length, restarts: this.restarts, lastError: this.lastError };
  }

  private set(state: McpServerStateName, lastError: string | null): void {
    this.state = state;
    this.lastError = lastError;
  }

  private stderrTail(): string {
    const tail = this.stderr.trim().split("\n").slice(-3).join(" | ");
    return tail ? ` (stderr: ${tail.slice(-300)})` : "";
  }
}

export class McpSupervisor {
  private readonly o: SupervisorSettings;
  private readonly runners = new Map<string, ServerRunner>();
  private readonly backoff: BackoffTracker<string>;

  constructor(options: McpSupervisorOptions) {
    this.o = { restart: { baseMs: 1000, maxMs: 60_000, jitter: 0.2 }, startTimeoutMs: 30_000, callTimeoutMs: 60_000, maxResultBytes: 64 * 1024, ...options };
    this.backoff = new BackoffTracker(this.o.restart);
  }

  /** Makes the running servers those of `specs`: new ones start, changed ones restart, others stop. */
  async apply(specs: readonly McpServerSpec[]): Promise<void> {
    const wanted = new Map(specs.map((s) => [s.name, s]));
    for (const [name, runner] of this.runners) {
      const spec = wanted.get(name);
      const same = spec && digestOf({ command: spec.command, args: spec.args, env: spec.env, autoRestart: spec.autoRestart }) === runner.digest && spec.waitingFor.length === runner.spec.waitingFor.length;
      if (same) continue;
      this.runners.delete(name);
      await runner.stop();
      this.backoff.succeeded(name);
    }
    for (const spec of specs) {
      if (this.runners.has(spec.name)) continue;
      const runner = new ServerRunner(spec, this.o, this.backoff);
      this.runners.set(spec.name, runner);
      runner.run();
    }
  }

  /** Every server starts over (POST /restart). */
  async restartAll(): Promise<void> {
    const specs = [...this.runners.values()].map((r) => r.spec);
    await this.stop();
    // Starting over means a fresh backoff too: the first start after a restart is not a crash-loop retry.
    for (const spec of specs) this.backoff.succeeded(spec.name);
    await this.apply(specs);
  }

  states(): McpServerState[] {
    return [...this.runners.values()].map((r) => r.describe()).sort((a, b) => a.name.localeCompare(b.name));
  }

  tools(): ToolInfo[] {
    return [...this.runners.values()].flatMap((r) => (r.state === "running" ? r.tools : []));
  }

  async call(server: string, tool: string, args: Record<string, unknown>): Promise<ToolResult> {
    const runner = this.runners.get(server);
    if (!runner) return { ok: false, error: `no MCP server ${server}` };
    return runner.call(tool, args);
  }

  async stop(): Promise<void> {
    const runners = [...this.runners.values()];
    this.runners.clear();
    await Promise.all(runners.map((r) => r.stop()));
  }
}

/** A tool result's content as text for the model: text items as they are, anything else named. */
function textOf(content: unknown, maxBytes: number): string {
  const items = Array.isArray(content) ? (content as Array<{ type?: string; text?: string; mimeType?: string }>) : [];
  const text = items.map((c) => (c.type === "text" && typeof c.text === "string" ? c.text : `[${c.type ?? "content"}${c.mimeType ? ` ${c.mimeType}` : ""} omitted]`)).join("\n");
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= maxBytes) return text;
  return `${bytes.subarray(0, maxBytes).toString("utf8")}\n[result cut at ${maxBytes} bytes of ${bytes.length}]`;
}

function describe(error: unknown, command: string): string {
  const e = error as { code?: unknown; message?: string };
  if (e?.code === "ENOENT") return `command ${command} not found`;
  return (e?.message ?? String(error)).slice(0, 500);
}
