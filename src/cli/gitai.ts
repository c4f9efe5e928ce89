#!/usr/bin/env node
import { Command } from "commander";
import { startGitai } from "../gitai/gitai.ts";
import { createLogger } from "../observability/logger.ts";
import { RURIKO_VERSION } from "../version.ts";

const program = new Command().name("gitai").description("Ruriko agent runtime").version(RURIKO_VERSION);

program
  .command("serve")
  .description("serve the Agent Control Protocol")
  .option("--port <port>", "ACP port", (v) => Number(v), Number(process.env.GITAI_ACP_PORT ?? 8765))
  .option("--host <host>", "listen address", "0.0.0.0")
  .option("--data-dir <dir>", "the agent's data volume (where Ruriko hands over the control token)", process.env.GITAI_DATA_DIR ?? "/data")
  .option("--log-level <level>", "trace|debug|info|warn|error", process.env.GITAI_LOG_LEVEL ?? "info")
  .action(async (opts: { port: number; host: string; dataDir: string; logLevel: string }) => {
    const agent = process.env.RURIKO_AGENT ?? "unknown";
    // Inside a container there is no terminal: plain JSON lines, and no pretty-printer in the image.
    const logger = createLogger({ name: "gitai", level: opts.logLevel, pretty: false }).child({ agent });
    const server = await startGitai({ host: opts.host, port: opts.port, agent, dataDir: opts.dataDir, logger });
    logger.info({ version: RURIKO_VERSION, port: server.port }, `gitai serving ACP on ${opts.host}:${server.port}`);
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, "shutting down");
      server.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.on("SIGTERM", () => shutdown("SIGTERM"));
    process.on("SIGINT", () => shutdown("SIGINT"));
  });

await program.parseAsync(process.argv);
