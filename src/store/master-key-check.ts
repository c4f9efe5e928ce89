/**
 * Which master key the state database is under, and moving it to a new one. The check row is a sealed
 * known text: opening it with the wrong key fails at start, with a clear error, before any secret is read.
 */
import { open, seal, SecretCryptoError, type MasterKey } from "../secrets/crypto.ts";
import type { Db } from "./database.ts";
import { tokenAssociatedData } from "./agent-token-store.ts";
import { sealedOf, secretAssociatedData } from "./secret-store.ts";

const CHECK_TEXT = "ruriko master key check";

interface SealedRow {
  key_id: string;
  nonce: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

/** Key id the database is under, or undefined for a database that never stored anything encrypted. */
export function storedKeyId(db: Db): string | undefined {
  return (db.prepare("SELECT key_id FROM master_key_check WHERE id = 1").get() as { key_id: string } | undefined)?.key_id;
}

/**
 * Verifies that `key` is the key the database is under; on a database without one, adopts `key`.
 * Throws SecretCryptoError("wrong-key") naming both key ids otherwise.
 */
export function verifyMasterKey(db: Db, key: MasterKey, origin: string): "verified" | "adopted" {
  const row = db.prepare("SELECT * FROM master_key_check WHERE id = 1").get() as SealedRow | undefined;
  if (!row) {
    const sealed = seal(key, Buffer.from(CHECK_TEXT), CHECK_TEXT);
    db.prepare("INSERT INTO master_key_check (id, key_id, nonce, ciphertext, tag) VALUES (1, ?, ?, ?, ?)").run(sealed.keyId, sealed.nonce, sealed.ciphertext, sealed.tag);
    return "adopted";
  }
  if (row.key_id !== key.id) {
    throw new SecretCryptoError("wrong-key", `the master key from ${origin} (id ${key.id}) is not the key this state database is encrypted under (id ${row.key_id})`);
  }
  open(key, sealedOf(row), CHECK_TEXT, "the master key check");
  return "verified";
}

/**
 * Re-encrypts every secret, every agent token and the check row under `next`, in one transaction: either
 * all of it moves to the new key or none does.
 */
export function rekey(db: Db, current: MasterKey, next: MasterKey): { secrets: number; tokens: number } {
  return db.transaction(() => {
    verifyMasterKey(db, current, "the current key");
    const secrets = db.prepare("SELECT name, version, key_id, nonce, ciphertext, tag FROM secrets").all() as Array<SealedRow & { name: string; version: number }>;
    const updateSecret = db.prepare("UPDATE secrets SET key_id = ?, nonce = ?, ciphertext = ?, tag = ? WHERE name = ?");
    for (const row of secrets) {
      const aad = secretAssociatedData(row.name, row.version);
      const value = open(current, sealedOf(row), aad, `secret ${row.name} v${row.version}`);
      const sealed = seal(next, value, aad);
      value.fill(0);
      updateSecret.run(sealed.keyId, sealed.nonce, sealed.ciphertext, sealed.tag, row.name);
    }
    // Values staged for an approved rotation are sealed for the version they will become.
    const staged = db.prepare("SELECT name, version, key_id, nonce, ciphertext, tag FROM secret_pending").all() as Array<SealedRow & { name: string; version: number }>;
    const updateStaged = db.prepare("UPDATE secret_pending SET key_id = ?, nonce = ?, ciphertext = ?, tag = ? WHERE name = ?");
    for (const row of staged) {
      const aad = secretAssociatedData(row.name, row.version);
      const value = open(current, sealedOf(row), aad, `staged value of secret ${row.name}`);
      const sealed = seal(next, value, aad);
      value.fill(0);
      updateStaged.run(sealed.keyId, sealed.nonce, sealed.ciphertext, sealed.tag, row.name);
    }
    const tokens = db.prepare("SELECT agent, key_id, nonce, ciphertext, tag FROM agent_tokens").all() as Array<SealedRow & { agent: string }>;
    const updateToken = db.prepare("UPDATE agent_tokens SET key_id = ?, nonce = ?, ciphertext = ?, tag = ? WHERE agent = ?");
    for (const row of tokens) {
      const aad = tokenAssociatedData(row.agent);
      const sealed = seal(next, open(current, sealedOf(row), aad, `ACP token of agent ${row.agent}`), aad);
      updateToken.run(sealed.keyId, sealed.nonce, sealed.ciphertext, sealed.tag, row.agent);
    }
    db.prepare("DELETE FROM master_key_check").run();
    verifyMasterKey(db, next, "the new key");
    return { secrets: secrets.length, tokens: tokens.length };
  })();
}
