/**
 * One Gitai process: what it holds (its Gosuto, its secrets and its Matrix identity, all in memory only), the
 * agent that acts on it, and the ACP server through which Ruriko pushes it. It starts inert: nothing runs until
 * Ruriko pushes a Gosuto.
 */
import { join } from "node:path";
import type { Logger } from "../observability/logger.ts";
import { startAcpServer } from "./acp/server.ts";
import { GitaiAgent, type GitaiAgentOptions } from "./agent.ts";
import { GosutoState } from "./acp/gosuto-state.ts";
import { MatrixIdentityHolder } from "./acp/matrix-identity.ts";
import { SecretHolder } from "./acp/secret-holder.ts";
import { EventJournal } from "./events/journal.ts";

/** The decision journal's file in the data volume: on the volume so that seq survives restarts and recreation. */
export const EVENTS_FILE = "events.jsonl";

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
  events: EventJournal;
  close(): Promise<void>;
}

export async function startGitai(o: GitaiOptions): Promise<Gitai> {
  const held = { gosuto: new GosutoState(), secrets: new SecretHolder(), identity: new MatrixIdentityHolder() };
  const events = new EventJournal({
    file: join(o.dataDir, EVENTS_FILE),
    onWriteError: (err) => o.logger.warn({ err: err.message }, "decision journal: its file failed; events are still kept in memory"),
  });
  const agent = new GitaiAgent({ ...held, events, agent: o.agent, dataDir: o.dataDir, logger: o.logger, ...o.parts });
  const server = await startAcpServer({
    host: o.host,
    port: o.port,
    agent: o.agent,
    dataDir: o.dataDir,
    logger: o.logger,
    held,
    events,
    hooks: { configure: () => void agent.configure(), restart: () => agent.restart(), status: () => agent.status() },
  });
  return {
    port: server.port,
    agent,
    events,
    async close() {
      await server.close();
      await agent.stop();
    },
  };
}
