/**
 * The encrypted secret store. Values are sealed with the master key (secrets/crypto.ts) and bound to
 * their name and version; metadata (name, version, revision, times) is readable without the key. Nothing
 * here logs, and no error message carries a value.
 */
import { randomBytes } from "node:crypto";
import commonSchema from "../../schemas/common.schema.json" with { type: "json" };
import { open, seal, type MasterKey, type Sealed } from "../secrets/crypto.ts";
import type { Db } from "./database.ts";

export interface SecretInfo {
  name: string;
  /** 1 for the first value, +1 on every rotation. */
  version: number;
  /** Random per write: identifies this value without revealing anything about it. */
  revision: string;
  keyId: string;
  createdAt: string;
  updatedAt: string;
}

export type SecretStoreErrorCode = "not-found" | "exists" | "invalid-name" | "empty-value";

export class SecretStoreError extends Error {
  readonly code: SecretStoreErrorCode;
  readonly secret: string;
  constructor(code: SecretStoreErrorCode, secret: string, message: string) {
    super(message);
    this.name = "SecretStoreError";
    this.code = code;
    this.secret = secret;
  }
}

interface Row {
  name: string;
  version: number;
  revision: string;
  key_id: string;
  nonce: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
  created_at: string;
  updated_at: string;
}

const SECRET_NAME = new RegExp(commonSchema.$defs.secretName.pattern);
const MAX_NAME = commonSchema.$defs.secretName.maxLength;
/** Secrets are API keys and tokens, not files: a bound keeps a mistaken `--from-file` from bloating the store. */
export const MAX_SECRET_BYTES = 64 * 1024;

export const secretAssociatedData = (name: string, version: number) => `ruriko secret ${name} v${version}`;

const infoOf = (r: Row): SecretInfo => ({ name: r.name, version: r.version, revision: r.revision, keyId: r.key_id, createdAt: r.created_at, updatedAt: r.updated_at });

export function checkSecretName(name: string): void {
  if (name.length > MAX_NAME || !SECRET_NAME.test(name)) {
    throw new SecretStoreError("invalid-name", name.slice(0, 80), `"${name.slice(0, 80)}" is not a secret name: lowercase letters, digits, '-' and '.', at most ${MAX_NAME} characters`);
  }
}

function checkValue(name: string, value: Buffer): void {
  checkSecretName(name);
  if (value.length === 0) throw new SecretStoreError("empty-value", name, `secret ${name}: the value is empty`);
  if (value.length > MAX_SECRET_BYTES) throw new SecretStoreError("empty-value", name, `secret ${name}: the value is larger than ${MAX_SECRET_BYTES} bytes`);
}

export class SecretStore {
  private readonly db: Db;
  private readonly key: MasterKey;

  constructor(db: Db, key: MasterKey) {
    this.db = db;
    this.key = key;
  }

  /** Creates the secret, or stores a new version of it when `mode` allows. */
  set(name: string, value: Buffer, mode: "create-or-rotate" | "rotate" = "create-or-rotate", now = new Date()): SecretInfo {
    checkValue(name, value);
    return this.db.transaction(() => {
      const existing = this.row(name);
      if (!existing && mode === "rotate") throw new SecretStoreError("not-found", name, `secret ${name} does not exist (create it with: ruriko secret set ${name})`);
      const version = (existing?.version ?? 0) + 1;
      const sealed = seal(this.key, value, secretAssociatedData(name, version));
      const at = now.toISOString();
      const row: Row = {
        name,
        version,
        revision: randomBytes(12).toString("hex"),
        key_id: sealed.keyId,
        nonce: sealed.nonce,
        ciphertext: sealed.ciphertext,
        tag: sealed.tag,
        created_at: existing?.created_at ?? at,
        updated_at: at,
      };
      this.db
        .prepare(
          `INSERT INTO secrets (name, version, revision, key_id, nonce, ciphertext, tag, created_at, updated_at)
           VALUES (@name, @version, @revision, @key_id, @nonce, @ciphertext, @tag, @created_at, @updated_at)
           ON CONFLICT (name) DO UPDATE SET version = excluded.version, revision = excluded.revision, key_id = excluded.key_id,
             nonce = excluded.nonce, ciphertext = excluded.ciphertext, tag = excluded.tag, updated_at = excluded.updated_at`,
        )
        .run(row);
      return infoOf(row);
    })();
  }

  info(name: string): SecretInfo | undefined {
    const row = this.row(name);
    return row && infoOf(row);
  }

  list(): SecretInfo[] {
    return (this.db.prepare("SELECT * FROM secrets ORDER BY name").all() as Row[]).map(infoOf);
  }

  /** The value, decrypted; undefined when there is no such secret. */
  reveal(name: string): { info: SecretInfo; value: Buffer } | undefined {
    const row = this.row(name);
    if (!row) return undefined;
    const value = open(this.key, sealedOf(row), secretAssociatedData(row.name, row.version), `secret ${row.name} v${row.version}`);
    return { info: infoOf(row), value };
  }

  delete(name: string): boolean {
    return this.db.transaction(() => {
      this.db.prepare("DELETE FROM secret_pending WHERE name = ?").run(name);
      return this.db.prepare("DELETE FROM secrets WHERE name = ?").run(name).changes === 1;
    })();
  }

  /**
   * Keeps a new value of an existing secret aside, sealed, while its rotation waits for approval; the secret
   * itself is unchanged. A second staging replaces the first. Returns the staged value's revision.
   */
  stage(name: string, value: Buffer, now = new Date()): { revision: string; version: number } {
    checkValue(name, value);
    return this.db.transaction(() => {
      const current = this.row(name);
      if (!current) throw new SecretStoreError("not-found", name, `secret ${name} does not exist (create it with: ruriko secret set ${name})`);
      const version = current.version + 1;
      const sealed = seal(this.key, value, secretAssociatedData(name, version));
      const revision = randomBytes(12).toString("hex");
      this.db
        .prepare(
          `INSERT INTO secret_pending (name, revision, version, key_id, nonce, ciphertext, tag, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET revision = excluded.revision, version = excluded.version, key_id = excluded.key_id, nonce = excluded.nonce,
             ciphertext = excluded.ciphertext, tag = excluded.tag, created_at = excluded.created_at`,
        )
        .run(name, revision, version, sealed.keyId, sealed.nonce, sealed.ciphertext, sealed.tag, now.toISOString());
      return { revision, version };
    })();
  }

  /**
   * Makes the staged value `revision` the secret's new version, if the secret is still at `fromRevision`
   * (what the approval was for). Undefined, and nothing changed, when either moved on.
   */
  promote(name: string, revision: string, fromRevision: string, now = new Date()): SecretInfo | undefined {
    return this.db.transaction(() => {
      const current = this.row(name);
      const staged = this.db.prepare("SELECT * FROM secret_pending WHERE name = ? AND revision = ?").get(name, revision) as Row | undefined;
      // The value was sealed for one version: it becomes that one or nothing.
      if (!current || !staged || current.revision !== fromRevision || staged.version !== current.version + 1) return undefined;
      const at = now.toISOString();
      this.db
        .prepare("UPDATE secrets SET version = ?, revision = ?, key_id = ?, nonce = ?, ciphertext = ?, tag = ?, updated_at = ? WHERE name = ?")
        .run(staged.version, staged.revision, staged.key_id, staged.nonce, staged.ciphertext, staged.tag, at, name);
      this.db.prepare("DELETE FROM secret_pending WHERE name = ?").run(name);
      return this.info(name);
    })();
  }

  /** The value kept aside for a rotation waiting for approval, if any (its revision, never the value). */
  staged(name: string): { revision: string; createdAt: string } | undefined {
    const row = this.db.prepare("SELECT revision, created_at FROM secret_pending WHERE name = ?").get(name) as { revision: string; created_at: string } | undefined;
    return row && { revision: row.revision, createdAt: row.created_at };
  }

  /** Drops a staged value (its rotation was denied, expired or superseded). */
  discardStaged(name: string, revision: string): void {
    this.db.prepare("DELETE FROM secret_pending WHERE name = ? AND revision = ?").run(name, revision);
  }

  private row(name: string): Row | undefined {
    return this.db.prepare("SELECT * FROM secrets WHERE name = ?").get(name) as Row | undefined;
  }
}

export function sealedOf(row: { key_id: string; nonce: Buffer; ciphertext: Buffer; tag: Buffer }): Sealed {
  return { keyId: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext, tag: row.tag };
}
