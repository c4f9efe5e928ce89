/**
 * Where the master key comes from, in order: RURIKO_MASTER_KEY, then the key file (--master-key-file,
 * RURIKO_MASTER_KEY_FILE, or `<state dir>/master.key`). A brand-new state directory with neither gets a
 * generated key file (0600) so that the one-command start works; production sets the env var or keeps the
 * key file off the state volume. The key never reaches a log line or an error message.
 */
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateMasterKeyText, parseMasterKey, SecretCryptoError, type MasterKey } from "./crypto.ts";

export const MASTER_KEY_ENV = "RURIKO_MASTER_KEY";
export const MASTER_KEY_FILE_ENV = "RURIKO_MASTER_KEY_FILE";
export const DEFAULT_KEY_FILE = "master.key";

export interface MasterKeyOptions {
  stateDir: string;
  keyFile?: string;
  env?: NodeJS.ProcessEnv;
  /** May a key file be generated when no key exists anywhere? Only for a state database with nothing encrypted. */
  mayGenerate: boolean;
}

export interface LoadedMasterKey {
  key: MasterKey;
  /** Where it came from, for messages ("RURIKO_MASTER_KEY", "key file /x/master.key"). */
  origin: string;
  generated: boolean;
}

export function loadMasterKey(opts: MasterKeyOptions): LoadedMasterKey {
  const env = opts.env ?? process.env;
  const fromEnv = env[MASTER_KEY_ENV];
  if (fromEnv) return { key: parseMasterKey(fromEnv, MASTER_KEY_ENV), origin: MASTER_KEY_ENV, generated: false };
  const file = opts.keyFile ?? env[MASTER_KEY_FILE_ENV] ?? join(opts.stateDir, DEFAULT_KEY_FILE);
  const origin = `key file ${file}`;
  if (existsSync(file)) {
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) throw new SecretCryptoError("invalid-key", `${origin} is readable by other users (mode ${mode.toString(8)}); chmod 600 it`);
    return { key: parseMasterKey(readFileSync(file, "utf8"), origin), origin, generated: false };
  }
  if (!opts.mayGenerate) {
    throw new SecretCryptoError("invalid-key", `no master key: set ${MASTER_KEY_ENV}, or pass --master-key-file (${file} does not exist)`);
  }
  const text = generateMasterKeyText();
  writeFileSync(file, `${text}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(file, 0o600);
  return { key: parseMasterKey(text, origin), origin, generated: true };
}
