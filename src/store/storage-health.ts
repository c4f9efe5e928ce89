/**
 * Whether the state database can still be trusted. A process that keeps running on a database it can no longer
 * read or write does nothing useful while looking alive, so the first storage failure is final: it is kept
 * here, /healthz reports it, and `serve` stops with a non-zero exit so that a supervisor restarts it (and the
 * start-up checks of database.ts and instance-file.ts then decide whether it may run at all).
 *
 * A lock held by another process (SQLITE_BUSY, SQLITE_LOCKED) is not a storage failure: `ruriko approvals
 * approve` beside `serve` is normal, and the busy timeout makes the writers take turns.
 */

/** SQLite primary result codes that say the file itself is unusable, whatever is retried. */
const STORAGE_FAILURE_CODES: ReadonlySet<string> = new Set([
  "SQLITE_CORRUPT", // a page does not parse
  "SQLITE_NOTADB", // the file is not a database (overwritten, truncated header)
  "SQLITE_IOERR", // the disk or file system failed a read, write or sync
  "SQLITE_FULL", // the disk is full: no write can land
  "SQLITE_CANTOPEN", // the database, its WAL or shared-memory file cannot be opened
  // Seen by a read-write connection: the file was moved or deleted under it (SQLITE_READONLY_DBMOVED), or the
  // file system went read-only. Either way nothing written would reach the database Ruriko will start on.
  "SQLITE_READONLY",
]);

export interface StorageFailure {
  /** SQLite's extended result code, e.g. SQLITE_IOERR_SHORT_READ. */
  code: string;
  message: string;
}

/** SQLITE_IOERR_SHORT_READ → SQLITE_IOERR. */
export function primaryCode(code: string): string {
  const match = /^SQLITE_[A-Z]+/.exec(code);
  return match ? match[0] : code;
}

/** The storage failure an error is, or undefined for anything else (a constraint, a lock, a bug of ours). */
export function storageFailureOf(error: unknown): StorageFailure | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string" || !STORAGE_FAILURE_CODES.has(primaryCode(code))) return undefined;
  return { code, message: (error as { message?: unknown }).message as string };
}

export interface StorageHealthState {
  ok: boolean;
  /** The first failure, with the file it hit and when. */
  failure?: StorageFailure & { file: string; at: string };
}

/** One database file's health: fine until the first storage failure, failed from then on. */
export class StorageHealth {
  readonly file: string;
  private failure: StorageHealthState["failure"];
  private readonly listeners: Array<(state: StorageHealthState) => void> = [];

  constructor(file: string) {
    this.file = file;
  }

  get state(): StorageHealthState {
    return this.failure ? { ok: false, failure: this.failure } : { ok: true };
  }

  /**
   * Looks at an error that came out of SQLite. The state changes at once (so /healthz fails from this moment);
   * listeners hear of it after the current call stack, outside the statement that failed.
   */
  report(error: unknown): void {
    if (this.failure) return;
    const failure = storageFailureOf(error);
    if (!failure) return;
    this.failure = { ...failure, file: this.file, at: new Date().toISOString() };
    const state = this.state;
    for (const listener of this.listeners) queueMicrotask(() => listener(state));
  }

  onFailure(listener: (state: StorageHealthState) => void): void {
    this.listeners.push(listener);
    if (this.failure) {
      const state = this.state;
      queueMicrotask(() => listener(state));
    }
  }
}
