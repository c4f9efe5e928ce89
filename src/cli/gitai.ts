#!/usr/bin/env node
import { Command } from "commander";
import { startHealthServer } from "../gitai/health-server.ts";
import { RURIKO_VERSION } from "../version.ts";

const program = new Command().name("gitai").description("Ruriko agent runtime").version(RURIKO_VERSION);

program
  .command("serve")
  .description("serve the Agent Control Protocol")
  .option("--port <port>", "ACP port", (v) => Number(v), Number(process.env.GITAI_ACP_PORT ?? 8765))
  .option("--host <host>", "listen address", "0.0.0.0")
  .action(async (opts: { port: number; host: string }) => {
    const agent = process.env.RURIKO_AGENT ?? "unknown";
    const server = await startHealthServer({ port: opts.port, host: opts.host, agent });
    console.log(JSON.stringify({ level: "info", msg: `gitai ${RURIKO_VERSION} for agent ${agent} serving ACP on ${opts.host}:${opts.port}` }));
    const shutdown = () => {
      server.close(() => process.exit(0));
      server.closeAllConnections();
    };
    process.on("SIGTERM", shutdown);
    process.on("SIGINT", shutdown);
  });

await program.parseAsync(process.argv);
