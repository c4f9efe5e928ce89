/**
 * One Gitai process: what it holds (its Gosuto, persisted in the data volume; its secrets and Matrix identity,
 * in memory only), the agent that acts on it, and the ACP server through which Ruriko pushes it.
 */
import type { Logger } from "../observability/logger.ts";
import { startAcpServer } from "./acp-server.ts";
import { GitaiAgent, type GitaiAgentOptions } from "./agent.ts";
import { GosutoState } from "./gosuto-state.ts";
import { MatrixIdentityHolder } from "./matrix-identity.ts";
import { SecretHolder } from "./secret-holder.ts";

export interface GitaiOptions {
  host: string;
  port: number;
  agent: string;
  dataDir: string;
  logger: Logger;
  /** Timeouts of the parts (tests shorten them). */
  parts?: Pick<GitaiAgentOptions, "mcp" | "model">;
}

export interface Gitai {
  port: number;
  agent: GitaiAgent;
  close(): Promise<void>;
}

export async function startGitai(o: GitaiOptions): Promise<Gitai> {
  const held = { gosuto: new GosutoState(o.dataDir), secrets: new SecretHolder(), identity: new MatrixIdentityHolder() };
  const agent = new GitaiAgent({ ...held, logger: o.logger, ...o.parts });
  const server = await startAcpServer({
    host: o.host,
    port: o.port,
    agent: o.agent,
    dataDir: o.dataDir,
    logger: o.logger,
    held,
    hooks: { configure: () => void agent.configure(), restart: () => agent.restart(), status: () => agent.status() },
  });
  // A Gosuto persisted before a restart: its servers start now; secrets and identity arrive from Ruriko.
  void agent.configure();
  return {
    port: server.port,
    agent,
    async close() {
      await server.close();
      await agent.stop();
    },
  };
}
