/**
 * `ruriko backup` and `ruriko restore`. A backup is SQLite's online backup of the live database: every page,
 * copied in one step (one read transaction: a consistent snapshot, never restarted by serve's writes, and WAL
 * lets serve keep writing meanwhile), checked, marked as a backup, and renamed into place. A restore puts such a
 * copy in place of the live database of a stopped Ruriko; the next `serve` reads the engine once to take over
 * what changed since (controller/engine-adoption.ts). docs/operations.md says what a restore loses.
 */
import Database from "better-sqlite3";
import { chmodSync, closeSync, copyFileSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { quickCheck, SCHEMA_VERSION } from "./database.ts";
import { dbFileState, readInstanceFile, writeInstanceFile } from "./instance-file.ts";
import { ADOPT_META, BACKUP_TAKEN_META, INSTANCE_META } from "./meta-store.ts";
import { STATE_DB_FILE } from "./state.ts";
import { storageFailureOf } from "./storage-health.ts";

/** What a backup file holds, as checked. */
export interface BackupInfo {
  file: string;
  instance: string;
  schemaVersion: number;
  /** When `ruriko backup` took it; undefined for a copy made otherwise (sqlite3 .backup). */
  takenAt: string | undefined;
  bytes: number;
}

/** Copy every remaining page in one backup step. */
const ALL_PAGES = 0x7fffffff;

/**
 * Backs up the state database of `stateDir` into `target` while serve may run. Never leaves a partial file under
 * `target`; replaces an existing one only with `replace`. The copy is readable by its owner only: it holds the
 * sealed secrets (useless without the master key, which is not in it) and the audit log.
 */
export async function backupState(stateDir: string, target: string, options: { replace?: boolean } = {}): Promise<BackupInfo> {
  const live = join(stateDir, STATE_DB_FILE);
  if (dbFileState(live) !== "present") throw new Error(`no state database to back up: ${live} is missing or empty`);
  if (resolve(target) === resolve(live)) throw new Error(`${target} is the live database itself`);
  if (existsSync(target) && !options.replace) throw new Error(`${target} exists; give another name, or --replace to overwrite it`);
  if (!existsSync(dirname(resolve(target)))) throw new Error(`cannot write ${target}: directory ${dirname(resolve(target))} does not exist`);
  const partial = join(dirname(resolve(target)), `.${basename(target)}.${process.pid}.partial`);
  rmSync(partial, { force: true });
  try {
    const source = new Database(live, { readonly: true, fileMustExist: true });
    try {
      source.pragma("busy_timeout = 5000");
      await source.backup(partial, { progress: () => ALL_PAGES });
    } finally {
      source.close();
    }
    chmodSync(partial, 0o600);
    const takenAt = new Date().toISOString();
    markAsBackup(partial, takenAt);
    const info = verifyBackup(partial);
    fsyncFile(partial);
    renameSync(partial, target);
    return { ...info, file: target };
  } catch (error) {
    rmSync(partial, { force: true });
    rmSync(`${partial}-wal`, { force: true });
    rmSync(`${partial}-shm`, { force: true });
    throw error;
  }
}

/**
 * Notes in the copy that it is a backup (so the serve that starts on it once restored reads the engine first),
 * and makes it one self-contained file (rollback journal, no -wal beside it).
 */
function markAsBackup(file: string, takenAt: string): void {
  const copy = new Database(file, { fileMustExist: true });
  try {
    copy.prepare("INSERT INTO meta (key, value) VALUES (?, ?), (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(ADOPT_META, "restored", BACKUP_TAKEN_META, takenAt);
    copy.pragma("journal_mode = DELETE");
  } finally {
    copy.close();
  }
}

/** Checks that `file` is a sound Ruriko state database, and says what it holds. Throws naming the file. */
export function verifyBackup(file: string): BackupInfo {
  if (dbFileState(file) !== "present") throw new Error(`${file} is missing or empty`);
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const problems = quickCheck(db);
    if (problems.length > 0) throw new Error(`${file} is corrupt (PRAGMA quick_check: ${problems[0]})`);
    const hasMeta = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'").get();
    const get = (key: string) => (hasMeta ? (db!.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined)?.value : undefined);
    const instance = get(INSTANCE_META);
    if (!instance) throw new Error(`${file} is not a Ruriko state database with an instance id`);
    const schemaVersion = (db.prepare("SELECT max(version) AS v FROM schema_migrations").get() as { v: number | null }).v ?? 0;
    return { file, instance, schemaVersion, takenAt: get(BACKUP_TAKEN_META), bytes: statSync(file).size };
  } catch (error) {
    const failure = storageFailureOf(error);
    if (failure) throw new Error(`${file} cannot be read as a SQLite database (${failure.code}: ${failure.message})`, { cause: error });
    throw error;
  } finally {
    db?.close();
  }
}

export interface RestoreResult extends BackupInfo {
  /** Where the database it replaced was kept, if there was one. */
  replaced: string | undefined;
}

/**
 * Puts the backup `file` in place of the state database of `stateDir`. Refuses while another process has the
 * database open (serve, a CLI command), a backup of another instance, and a backup from a newer Ruriko. The
 * replaced database is kept beside it, renamed, with its WAL.
 */
export function restoreState(stateDir: string, file: string): RestoreResult {
  const info = verifyBackup(file);
  if (info.schemaVersion > SCHEMA_VERSION) throw new Error(`${file} comes from a newer Ruriko (schema ${info.schemaVersion}; this one knows up to ${SCHEMA_VERSION}); restore it with that version`);
  const live = join(stateDir, STATE_DB_FILE);
  // A directory from before `instance-id` existed says which instance it is in its database.
  const current = readInstanceFile(stateDir) ?? instanceIn(live);
  if (current && current !== info.instance) {
    throw new Error(`${file} is a backup of Ruriko instance ${info.instance}, but ${stateDir} is instance ${current}; restore a backup of ${current}, or remove ${join(stateDir, "instance-id")} (and the database) to make this directory instance ${info.instance}`);
  }
  let replaced: string | undefined;
  if (dbFileState(live) === "present") {
    ensureUnused(live);
    replaced = `${live}.replaced-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    renameSync(live, replaced);
  }
  for (const suffix of ["-wal", "-shm"]) {
    if (!existsSync(`${live}${suffix}`)) continue;
    if (replaced) renameSync(`${live}${suffix}`, `${replaced}${suffix}`);
    else rmSync(`${live}${suffix}`);
  }
  const incoming = join(stateDir, `.${STATE_DB_FILE}.${process.pid}.restoring`);
  copyFileSync(file, incoming);
  chmodSync(incoming, 0o600);
  // A copy made otherwise than by `ruriko backup` gets the mark too: serve must read the engine before it plans.
  const copy = new Database(incoming, { fileMustExist: true });
  try {
    copy.prepare("INSERT INTO meta (key, value) VALUES (?, 'restored') ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(ADOPT_META);
    copy.pragma("journal_mode = DELETE");
  } finally {
    copy.close();
  }
  fsyncFile(incoming);
  renameSync(incoming, live);
  writeInstanceFile(stateDir, info.instance);
  return { ...info, replaced };
}

/** The instance id in a readable state database, else undefined (missing, empty, unreadable: nothing to protect). */
function instanceIn(file: string): string | undefined {
  if (dbFileState(file) !== "present") return undefined;
  try {
    return verifyBackup(file).instance;
  } catch {
    return undefined;
  }
}

/**
 * Throws when another connection has the database open. Leaving WAL mode needs every other connection closed,
 * even idle ones, and fails at once with SQLITE_BUSY otherwise; it also folds the WAL into the file, so the
 * database set aside is complete on its own.
 */
function ensureUnused(live: string): void {
  const db = new Database(live, { fileMustExist: true });
  try {
    db.pragma("busy_timeout = 0");
    db.pragma("journal_mode = DELETE");
  } catch (error) {
    const code = (error as { code?: string }).code ?? "";
    if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
      throw new Error(`${live} is open in another process (ruriko serve, or a ruriko command): stop it before restoring`, { cause: error });
    }
    // A database that cannot be read any more is what a restore is for.
    if (!storageFailureOf(error)) throw error;
  } finally {
    db.close();
  }
}

function fsyncFile(file: string): void {
  const fd = openSync(file, "r+");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
