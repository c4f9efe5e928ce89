import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, unlinkSync } from "node:fs";

/**
 * The agent's ACP bearer token. Ruriko writes it into the data volume; Gitai takes it from there once per
 * process — at start, or at the first request after start — keeps only its hash in memory and deletes the file.
 *
 * Once per process, because the MCP tool servers Gitai starts run as the same user on the same volume: a token
 * file that appears while Gitai holds a token may be theirs, so it is deleted unread. Tool servers only run
 * once Ruriko has configured the agent, which takes the token; before that nothing else runs in the container.
 * Ruriko hands a restarted process a new token when it answers 401, and restarts a process holding another
 * token (its state restored from a backup) to hand it one. Compared in constant time (both sides hashed first,
 * so lengths never leak either).
 */
export class ControlToken {
  private readonly file: string;
  private digest: Buffer | undefined;
  private readonly onIgnored: () => void;

  constructor(file: string, onIgnored: () => void = () => {}) {
    this.file = file;
    this.onIgnored = onIgnored;
    this.take();
  }

  /** Takes the token from the file when there is one; deletes the file either way. */
  private take(): void {
    let token: string;
    try {
      token = readFileSync(this.file, "utf8").trim();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    unlinkSync(this.file);
    if (this.digest) return this.onIgnored();
    this.digest = createHash("sha256").update(token).digest();
  }

  /** `header` is the Authorization header as received. */
  accepts(header: string | undefined): boolean {
    this.take();
    const expected = this.digest;
    if (!expected || !header?.startsWith("Bearer ")) return false;
    const presented = createHash("sha256").update(header.slice("Bearer ".length).trim()).digest();
    return timingSafeEqual(expected, presented);
  }
}
