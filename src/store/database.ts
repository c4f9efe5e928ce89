import Database from "better-sqlite3";
import { closeSync, mkdirSync, openSync, readSync } from "node:fs";
import { dirname } from "node:path";
import { MIGRATIONS } from "./migrations.ts";
import { storageFailureOf, type StorageHealth } from "./storage-health.ts";

export type Db = Database.Database;

export interface OpenDatabaseOptions {
  readonly?: boolean;
  /**
   * Check the structure of every page before anything uses the database (`PRAGMA quick_check`): a corrupt file
   * is refused at start instead of failing one statement at a time later. `serve` asks for it; a CLI run does not.
   */
  integrityCheck?: boolean;
  /** Every storage failure a statement meets from now on is reported here (see storage-health.ts). */
  health?: StorageHealth;
}

/** The state database cannot be used: it is corrupt, not a database, or its disk fails. Names the file. */
export class StorageError extends Error {
  readonly file: string;
  /** SQLite's result code, or "SQLITE_CORRUPT" for what quick_check found. */
  readonly code: string;
  constructor(file: string, code: string, what: string, options?: { cause?: unknown }) {
    super(`state database ${file}: ${what} (${code}); Ruriko will not run on it. Restore a backup (docs/operations.md#restoring-a-backup)`, options);
    this.name = "StorageError";
    this.file = file;
    this.code = code;
  }
}

/** How many problems quick_check lists at most: the first few say enough, and it stops early. */
const QUICK_CHECK_LIMIT = 10;

/**
 * Opens Ruriko's state database: WAL so that readers (`ruriko status`, the HTTP API) never block the
 * controller, a busy timeout so that a CLI run beside `serve` waits instead of failing, and every pending
 * migration applied in one transaction each before anything else touches it. A file SQLite cannot use
 * throws StorageError.
 */
export function openDatabase(path: string, options: OpenDatabaseOptions = {}): Db {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const readonly = options.readonly ?? false;
  const db = new Database(path, { readonly, fileMustExist: readonly });
  try {
    db.pragma("busy_timeout = 5000");
    if (options.integrityCheck) {
      if (path !== ":memory:") readAhead(path);
      let problems: string[];
      try {
        problems = quickCheck(db);
      } catch (error) {
        // A page so broken that the check itself cannot go on.
        const failure = storageFailureOf(error);
        if (failure) throw new StorageError(path, failure.code, `PRAGMA quick_check: ${failure.message}`, { cause: error });
        throw error;
      }
      if (problems.length > 0) throw new StorageError(path, "SQLITE_CORRUPT", `PRAGMA quick_check found ${problems.length === QUICK_CHECK_LIMIT ? "at least " : ""}${problems.length} problem(s), first: ${problems[0]}`);
    }
    if (!readonly) {
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      db.pragma("foreign_keys = ON");
      migrate(db);
    }
  } catch (error) {
    db.close();
    if (error instanceof StorageError) throw error;
    const failure = storageFailureOf(error);
    if (failure) throw new StorageError(path, failure.code, failure.message, { cause: error });
    throw error;
  }
  if (options.health) return guarded(db, options.health);
  return readonly ? db : immediateTransactions(db);
}

type TransactionOf = Db["transaction"];

/**
 * `db.transaction(fn)` beginning IMMEDIATE: it takes the write lock at its start, waiting its turn (busy_timeout). A
 * deferred one that read first and wrote after fails at once with SQLITE_BUSY when another process wrote in
 * between (waiting cannot help a snapshot that went stale): `ruriko secret set` failed so while serve was creating
 * agents. One better-sqlite3 transaction function per connection runs every body: making one per call (four
 * wrappers and their properties, for a function the stores call once) was serve's largest SQLite garbage while it
 * created a fleet. `watch` sees every error, COMMIT's too.
 */
function immediateTransactionsOf(db: Db, watch: <T>(fn: () => T) => T = (fn) => fn()): TransactionOf {
  const runner = db.transaction((body: () => unknown) => body());
  return ((fn: (...args: unknown[]) => unknown) => {
    const inMode = (mode: "deferred" | "immediate" | "exclusive") => (...args: unknown[]) => watch(() => runner[mode](() => fn(...args)));
    const immediate = inMode("immediate");
    return Object.assign(immediate, { deferred: inMode("deferred"), immediate, exclusive: inMode("exclusive") });
  }) as unknown as TransactionOf;
}

/** A CLI's connection: its transactions begin IMMEDIATE. (guarded() does the same for serve.) */
function immediateTransactions(db: Db): Db {
  const transaction = immediateTransactionsOf(db);
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "transaction") return transaction;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * The problems `PRAGMA quick_check` finds (empty: none). It reads every page and checks the b-tree structure,
 * but not that indexes agree with their tables, so it costs one sequential read of the file (docs/operations.md
 * gives a measurement).
 */
export function quickCheck(db: Db): string[] {
  const rows = db.pragma(`quick_check(${QUICK_CHECK_LIMIT})`) as Array<{ quick_check: string }>;
  return rows.map((r) => r.quick_check).filter((text) => text !== "ok");
}

/**
 * Reads the file once from start to end, so that quick_check then finds every page in the page cache. quick_check
 * walks each b-tree, and the index pages of a table that grew by appending lie scattered between its rows: read in
 * that order from a cold cache, a 1.7 GB database took 24 s; read sequentially first, 3 s + 1 s.
 */
function readAhead(path: string): void {
  const fd = openSync(path, "r");
  try {
    const chunk = Buffer.allocUnsafe(4 * 1024 * 1024);
    while (readSync(fd, chunk, 0, chunk.length, null) > 0);
  } finally {
    closeSync(fd);
  }
}

export function migrate(db: Db): number {
  db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)");
  const applied = new Set((db.prepare("SELECT version FROM schema_migrations").all() as Array<{ version: number }>).map((r) => r.version));
  let count = 0;
  for (const migration of MIGRATIONS) {
    if (applied.has(migration.version)) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(migration.version, migration.name, new Date().toISOString());
    })();
    count++;
  }
  return count;
}

/** The newest migration this Ruriko knows: a database migrated further comes from a newer Ruriko. */
export const SCHEMA_VERSION = Math.max(...MIGRATIONS.map((m) => m.version));

/**
 * The same database, with every error that leaves SQLite shown to `health` first: statements, exec, pragmas and
 * transactions (their COMMIT too). The one place every read and write of a process passes, so no
 * store has to remember to check.
 */
/** Distinct SQL texts kept prepared (the stores have about a hundred); the oldest goes past it. */
const STATEMENT_CACHE = 256;

function guarded(db: Db, health: StorageHealth): Db {
  // Stores prepare their statement at every call: compiling SQL was a tenth of serve's busy time under load
  // (docs/performance.md), and each one holds SQLite memory outside the JS heap until it is collected. Kept by
  // their SQL instead; no store binds, plucks or iterates, the modes a shared statement would carry along.
  const statements = new Map<string, object>();
  const watch = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (error) {
      health.report(error);
      throw error;
    }
  };
  const iterator = <T>(it: IterableIterator<T>): IterableIterator<T> => ({
    next: () => watch(() => it.next()),
    return: (value?: unknown) => watch(() => it.return?.(value) ?? { done: true, value: undefined }),
    [Symbol.iterator]() {
      return this;
    },
  });
  const statement = <S extends object>(stmt: S): S => {
    const proxy: S = new Proxy(stmt, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== "function") return value;
        return (...args: unknown[]) =>
          watch(() => {
            const result = (value as (...a: unknown[]) => unknown).apply(target, args);
            // bind(), pluck(), raw()… return the statement itself, for chaining: keep it watched.
            if (result === target) return proxy;
            return prop === "iterate" ? iterator(result as IterableIterator<unknown>) : result;
          });
      },
    });
    return proxy;
  };
  const transaction = immediateTransactionsOf(db, watch);
  return new Proxy(db, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== "function") return value;
      const method = value as (...args: unknown[]) => unknown;
      if (prop === "prepare") {
        return (source: string) => {
          const cached = statements.get(source);
          if (cached) return cached;
          const prepared = statement(watch(() => method.call(target, source)) as object);
          statements.set(source, prepared);
          if (statements.size > STATEMENT_CACHE) statements.delete(statements.keys().next().value!);
          return prepared;
        };
      }
      if (prop === "transaction") return transaction;
      // A backup's failure may be its target's (another disk), not this database's.
      if (prop === "backup") return method.bind(target);
      return (...args: unknown[]) => watch(() => method.apply(target, args));
    },
  });
}
