import { randomBytes } from "node:crypto";
import { open, seal, type MasterKey } from "../secrets/crypto.ts";
import type { Db } from "./database.ts";
import { sealedOf } from "./secret-store.ts";

export const tokenAssociatedData = (agent: string) => `ruriko acp token ${agent}`;

interface Row {
  agent: string;
  key_id: string;
  nonce: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
  created_at: string;
}

/**
 * Each agent's ACP bearer token, sealed under the master key. A token is issued when the agent's container
 * is created and handed to it as a file in its data volume, never through the container's configuration.
 */
export class AgentTokenStore {
  private readonly db: Db;
  private readonly key: MasterKey;

  constructor(db: Db, key: MasterKey) {
    this.db = db;
    this.key = key;
  }

  /** A new random token for the agent, replacing any earlier one. */
  issue(agent: string, now = new Date()): string {
    const token = randomBytes(32).toString("base64url");
    const sealed = seal(this.key, Buffer.from(token, "utf8"), tokenAssociatedData(agent));
    this.db
      .prepare(
        `INSERT INTO agent_tokens (agent, key_id, nonce, ciphertext, tag, created_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (agent) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext,
           tag = excluded.tag, created_at = excluded.created_at`,
      )
      .run(agent, sealed.keyId, sealed.nonce, sealed.ciphertext, sealed.tag, now.toISOString());
    return token;
  }

  get(agent: string): string | undefined {
    const row = this.db.prepare("SELECT * FROM agent_tokens WHERE agent = ?").get(agent) as Row | undefined;
    if (!row) return undefined;
    return open(this.key, sealedOf(row), tokenAssociatedData(agent), `ACP token of agent ${agent}`).toString("utf8");
  }

  forget(agent: string): void {
    this.db.prepare("DELETE FROM agent_tokens WHERE agent = ?").run(agent);
  }
}
