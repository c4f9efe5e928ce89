/**
 * The encrypted secret store. Values are sealed with the master key (secrets/crypto.ts) and bound to
 * their name and version; metadata (name, version, revision, times) is readable without the key. Nothing
 * here logs, and no error message carries a value.
 */
import { randomBytes } from "node:crypto";
import commonSchema from "../../schemas/common.schema.json" with { type: "json" };
import { sha256 } from "../api/digest.ts";
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

export class SecretStore {
  private readonly db: Db;
  private readonly key: MasterKey;

  constructor(db: Db, key: MasterKey) {
    this.db = db;
    this.key = key;
  }

  /** Creates the secret, or stores a new version of it when `mode` allows. */
  set(name: string, value: Buffer, mode: "create-or-rotate" | "rotate" = "create-or-rotate", now = new Date()): SecretInfo {
    checkSecretName(name);
    if (value.length === 0) throw new SecretStoreError("empty-value", name, `secret ${name}: the value is empty`);
    if (value.length > MAX_SECRET_BYTES) throw new SecretStoreError("empty-value", name, `secret ${name}: the value is larger than ${MAX_SECRET_BYTES} bytes`);
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
    return this.db.prepare("DELETE FROM secrets WHERE name = ?").run(name).changes === 1;
  }

  /** Changes whenever any secret is written or deleted: the controller polls it to re-push rotated secrets. */
  fingerprint(): string {
    const rows = this.db.prepare("SELECT name, revision FROM secrets ORDER BY name").all() as Array<{ name: string; revision: string }>;
    return sha256(rows.map((r) => `${r.name} ${r.revision}\n`).join(""));
  }

  private row(name: string): Row | undefined {
    return this.db.prepare("SELECT * FROM secrets WHERE name = ?").get(name) as Row | undefined;
  }
}

export function sealedOf(row: { key_id: string; nonce: Buffer; ciphertext: Buffer; tag: Buffer }): Sealed {
  return { keyId: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext, tag: row.tag };
}
