import { AgentTokenStore } from "../store/agent-token-store.ts";
import { storedKeyId, verifyMasterKey } from "../store/master-key-check.ts";
import { SecretStore } from "../store/secret-store.ts";
import type { StateStores } from "../store/state.ts";
import type { MasterKey } from "./crypto.ts";
import { loadMasterKey } from "./master-key.ts";

export interface Vault {
  key: MasterKey;
  origin: string;
  generated: boolean;
  secrets: SecretStore;
  tokens: AgentTokenStore;
}

/**
 * The encrypted parts of a state database, opened with the master key after checking it is the right one.
 * A wrong or malformed key throws SecretCryptoError here, at start, not later as undecryptable garbage.
 */
export function openVault(state: StateStores, opts: { stateDir: string; keyFile?: string; env?: NodeJS.ProcessEnv }): Vault {
  const loaded = loadMasterKey({ ...opts, mayGenerate: storedKeyId(state.db) === undefined });
  verifyMasterKey(state.db, loaded.key, loaded.origin);
  return { ...loaded, secrets: new SecretStore(state.db, loaded.key), tokens: new AgentTokenStore(state.db, loaded.key) };
}
