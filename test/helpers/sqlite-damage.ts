/** Damages a SQLite file the way a failing disk does: one page of one table overwritten behind SQLite's back. */
import Database from "better-sqlite3";
import { closeSync, openSync, writeSync } from "node:fs";

/**
 * Overwrites the root page of `table` with garbage. First folds the WAL into the file (so the page read later is
 * the one in the file, not a newer copy in the WAL); works while another process has the database open.
 */
export function corruptTablePage(file: string, table: string): void {
  const db = new Database(file, { fileMustExist: true });
  let page: number;
  let pageSize: number;
  try {
    db.pragma("busy_timeout = 5000");
    const row = db.prepare("SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = ?").get(table) as { rootpage: number } | undefined;
    if (!row) throw new Error(`no table ${table} in ${file}`);
    page = row.rootpage;
    pageSize = db.pragma("page_size", { simple: true }) as number;
    const [checkpoint] = db.pragma("wal_checkpoint(TRUNCATE)") as Array<{ busy: number }>;
    if (checkpoint && checkpoint.busy) throw new Error(`could not fold the WAL of ${file} into it: a reader holds it`);
  } finally {
    db.close();
  }
  const fd = openSync(file, "r+");
  try {
    writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, (page - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
}

/**
 * Commits a small write from another connection: every other connection drops its page cache at its next read
 * (the WAL moved), so it reads the damaged page from the file.
 */
export function touchDatabase(file: string): void {
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma("busy_timeout = 5000");
    db.prepare("INSERT INTO meta (key, value) VALUES ('test.touched', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(new Date().toISOString());
  } finally {
    db.close();
  }
}
