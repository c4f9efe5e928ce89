import { hash } from "node:crypto";

/**
 * Digests identify content, not text: keys are sorted and formatting is gone, so reordering keys,
 * adding comments or re-indenting a manifest does not change what Ruriko believes was asked for.
 */
export function canonicalJson(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) {
    let out = "[";
    // A hole stays empty, as Array.prototype.map left it.
    for (let i = 0; i < value.length; i++) out += (i === 0 ? "" : ",") + (i in value ? canonicalJson(value[i]) : "");
    return `${out}]`;
  }
  // One string built as it goes, no per-member arrays: a tree of 20,000 manifests is digested on every load.
  const record = value as Record<string, unknown>;
  const keys = sortInPlace(Object.keys(record));
  let out = "{";
  let separator = "";
  for (const key of keys) {
    const member = record[key];
    if (member === undefined) continue;
    out += `${separator}${quotedKey(key)}:${canonicalJson(member)}`;
    separator = ",";
  }
  return `${out}}`;
}

/**
 * The keys in code-unit order, as Array.prototype.sort orders strings, sorted where they are: the builtin sort
 * allocates a work array per call, which for the few keys of most objects cost more than the sorting.
 */
function sortInPlace(keys: string[]): string[] {
  if (keys.length > 16) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    for (; j >= 0 && keys[j]! > key; j--) keys[j + 1] = keys[j]!;
    keys[j + 1] = key;
  }
  return keys;
}

/** Keys repeat across objects of a kind: each is quoted once (bounded, since keys can be anything users write). */
const QUOTED_KEYS = new Map<string, string>();
const MAX_QUOTED_KEYS = 4096;

function quotedKey(key: string): string {
  let quoted = QUOTED_KEYS.get(key);
  if (quoted === undefined) {
    quoted = JSON.stringify(key);
    if (QUOTED_KEYS.size < MAX_QUOTED_KEYS) QUOTED_KEYS.set(key, quoted);
  }
  return quoted;
}

export function sha256(text: string | Uint8Array): string {
  return `sha256:${hash("sha256", text, "hex")}`;
}

/** sha256 of canonicalJson(value), as its UTF-8 bytes. */
export function digestOf(value: unknown): string {
  const writer = idleWriter ?? new CanonicalWriter();
  idleWriter = undefined;
  try {
    return sha256(writer.write(value));
  } finally {
    // A writer grown for one large value is not kept: the next starts small again.
    idleWriter = writer.capacity <= MAX_KEPT_CAPACITY ? writer : undefined;
  }
}

const MAX_KEPT_CAPACITY = 1024 * 1024;

/**
 * Writes canonicalJson(value) as UTF-8 into one reused buffer, for hashing: the same bytes, without the
 * thousands of small strings a tree's worth of string concatenation makes (a tree of 10,000 agents made
 * 75 MB of them), which keep V8's young generation collecting and growing.
 */
class CanonicalWriter {
  private buffer = Buffer.allocUnsafeSlow(64 * 1024);
  private at = 0;

  get capacity(): number {
    return this.buffer.length;
  }

  write(value: unknown): Uint8Array {
    this.at = 0;
    this.value(value);
    return this.buffer.subarray(0, this.at);
  }

  private value(value: unknown): void {
    if (typeof value === "string") return this.string(value);
    if (value === null || typeof value !== "object") return this.text(JSON.stringify(value) ?? "null");
    if (Array.isArray(value)) {
      this.byte(OPEN_BRACKET);
      for (let i = 0; i < value.length; i++) {
        if (i > 0) this.byte(COMMA);
        if (i in value) this.value(value[i]);
      }
      return this.byte(CLOSE_BRACKET);
    }
    const record = value as Record<string, unknown>;
    const keys = sortInPlace(Object.keys(record));
    this.byte(OPEN_BRACE);
    let first = true;
    for (const key of keys) {
      const member = record[key];
      if (member === undefined) continue;
      if (!first) this.byte(COMMA);
      first = false;
      this.string(key);
      this.byte(COLON);
      this.value(member);
    }
    this.byte(CLOSE_BRACE);
  }

  /** A string as JSON.stringify quotes it: copied as it is when nothing in it needs escaping or encoding. */
  private string(value: string): void {
    this.room(value.length + 2);
    const buffer = this.buffer;
    const start = this.at;
    let at = start + 1;
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return this.text(JSON.stringify(value));
      buffer[at++] = c;
    }
    buffer[start] = QUOTE;
    buffer[at++] = QUOTE;
    this.at = at;
  }

  private text(text: string): void {
    this.room(text.length * 3);
    this.at += this.buffer.write(text, this.at);
  }

  private byte(c: number): void {
    this.room(1);
    this.buffer[this.at++] = c;
  }

  private room(bytes: number): void {
    if (this.at + bytes <= this.buffer.length) return;
    const larger = Buffer.allocUnsafeSlow(Math.max(this.buffer.length * 2, this.at + bytes));
    this.buffer.copy(larger, 0, 0, this.at);
    this.buffer = larger;
  }
}

const [QUOTE, COMMA, COLON, OPEN_BRACKET, CLOSE_BRACKET, OPEN_BRACE, CLOSE_BRACE] = [...'",:[]{}'].map((c) => c.charCodeAt(0)) as [number, number, number, number, number, number, number];
let idleWriter: CanonicalWriter | undefined;
