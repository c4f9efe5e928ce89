import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, unlinkSync } from "node:fs";

/**
 * The agent's ACP bearer token. Ruriko writes it into the data volume; Gitai takes it from there on the next
 * request, keeps only its hash in memory and deletes the file, so the tool servers it starts (same user, same
 * volume) never find it. A file that appears again is a new token handed over to the running agent; after a
 * restart there is none in memory, Ruriko's next request is refused and it hands over a new one. Compared in
 * constant time (both sides hashed first, so lengths never leak either).
 */
export class ControlToken {
  private readonly file: string;
  private digest: Buffer | undefined;

  constructor(file: string) {
    this.file = file;
  }

  private current(): Buffer | undefined {
    let token: string;
    try {
      token = readFileSync(this.file, "utf8").trim();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return this.digest;
      throw error;
    }
    unlinkSync(this.file);
    this.digest = createHash("sha256").update(token).digest();
    return this.digest;
  }

  /** `header` is the Authorization header as received. */
  accepts(header: string | undefined): boolean {
    const expected = this.current();
    if (!expected || !header?.startsWith("Bearer ")) return false;
    const presented = createHash("sha256").update(header.slice("Bearer ".length).trim()).digest();
    return timingSafeEqual(expected, presented);
  }
}
