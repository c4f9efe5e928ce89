/**
 * Envelope-free, deliberately small: AES-256-GCM under a key derived from the master key, with the
 * associated data naming what a ciphertext is (secret name and version, or agent token) so that a row
 * copied onto another row fails to decrypt instead of delivering the wrong secret. Pure.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from "node:crypto";

export interface MasterKey {
  /** Public identifier stored beside every ciphertext, so `rekey` knows what is encrypted under what. */
  id: string;
  /** The derived encryption key (never the master key itself). */
  encryptionKey: Buffer;
}

export interface Sealed {
  keyId: string;
  nonce: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

export type SecretCryptoErrorCode = "invalid-key" | "wrong-key" | "tampered";

/** A cryptographic failure, naming what was being opened; never carries key material or plaintext. */
export class SecretCryptoError extends Error {
  readonly code: SecretCryptoErrorCode;
  constructor(code: SecretCryptoErrorCode, message: string) {
    super(message);
    this.name = "SecretCryptoError";
    this.code = code;
  }
}

const KEY_BYTES = 32;
const NONCE_BYTES = 12;

/**
 * A master key is 32 random bytes written as base64 (44 characters) or hex (64). `origin` names where it
 * came from (env var or file) for the error message.
 */
export function parseMasterKey(text: string, origin: string): MasterKey {
  const trimmed = text.trim();
  let raw: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) raw = Buffer.from(trimmed, "hex");
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) raw = Buffer.from(trimmed.replace(/-/g, "+").replace(/_/g, "/"), "base64");
  if (!raw || raw.length !== KEY_BYTES) {
    throw new SecretCryptoError("invalid-key", `master key from ${origin} is not 32 bytes in base64 or hex (generate one with: ruriko secret keygen)`);
  }
  const id = `k${createHmac("sha256", raw).update("ruriko master key id").digest("hex").slice(0, 16)}`;
  const encryptionKey = Buffer.from(hkdfSync("sha256", raw, Buffer.alloc(0), "ruriko secret store v1", KEY_BYTES));
  raw.fill(0);
  return { id, encryptionKey };
}

export function generateMasterKeyText(): string {
  return randomBytes(KEY_BYTES).toString("base64");
}

export function seal(key: MasterKey, plaintext: Buffer, associatedData: string): Sealed {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key.encryptionKey, nonce);
  cipher.setAAD(Buffer.from(associatedData, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { keyId: key.id, nonce, ciphertext, tag: cipher.getAuthTag() };
}

/** `what` names the object for the error ("secret openai-key v3"). */
export function open(key: MasterKey, sealed: Sealed, associatedData: string, what: string): Buffer {
  if (sealed.keyId !== key.id) {
    throw new SecretCryptoError("wrong-key", `${what} is encrypted under master key ${sealed.keyId}, but the key in use is ${key.id}`);
  }
  try {
    const decipher = createDecipheriv("aes-256-gcm", key.encryptionKey, sealed.nonce);
    decipher.setAAD(Buffer.from(associatedData, "utf8"));
    decipher.setAuthTag(sealed.tag);
    return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
  } catch {
    throw new SecretCryptoError("tampered", `${what} failed authentication: the stored ciphertext was altered or moved`);
  }
}
