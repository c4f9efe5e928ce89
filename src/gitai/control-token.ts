import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";

/**
 * The agent's ACP bearer token, read from the file Ruriko writes into the data volume. Re-read when the
 * file changes, so Ruriko can hand over a new token to a running agent. Compared in constant time (both
 * sides hashed first, so lengths never leak either).
 */
export class ControlToken {
  private readonly file: string;
  private cached: { mtimeMs: number; size: number; digest: Buffer } | undefined;

  constructor(file: string) {
    this.file = file;
  }

  private current(): Buffer | undefined {
    const stat = statSync(this.file, { throwIfNoEntry: false });
    if (!stat) return undefined;
    if (!this.cached || this.cached.mtimeMs !== stat.mtimeMs || this.cached.size !== stat.size) {
      const token = readFileSync(this.file, "utf8").trim();
      this.cached = { mtimeMs: stat.mtimeMs, size: stat.size, digest: createHash("sha256").update(token).digest() };
    }
    return this.cached.digest;
  }

  /** `header` is the Authorization header as received. */
  accepts(header: string | undefined): boolean {
    const expected = this.current();
    if (!expected || !header?.startsWith("Bearer ")) return false;
    const presented = createHash("sha256").update(header.slice("Bearer ".length).trim()).digest();
    return timingSafeEqual(expected, presented);
  }
}
