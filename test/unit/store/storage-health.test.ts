/** The state database defends itself: a corrupt file is refused at open, a failure met later is final, a lock is not one. */
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { openDatabase, StorageError } from "../../../src/store/database.ts";
import { MetaStore } from "../../../src/store/meta-store.ts";
import { primaryCode, StorageHealth, storageFailureOf } from "../../../src/store/storage-health.ts";
import { corruptTablePage, touchDatabase } from "../../helpers/sqlite-damage.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const newFile = () => {
  const d = mkdtempSync(join(tmpdir(), "ruriko-health-"));
  dirs.push(d);
  return join(d, "ruriko.sqlite");
};
const sqliteError = (code: string) => Object.assign(new Error(`${code} happened`), { code });

describe("storage failures", () => {
  test("what is a storage failure and what is not", () => {
    for (const code of ["SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_IOERR_SHORT_READ", "SQLITE_IOERR_FSYNC", "SQLITE_FULL", "SQLITE_CANTOPEN", "SQLITE_READONLY_DBMOVED"]) {
      assert.deepEqual(storageFailureOf(sqliteError(code)), { code, message: `${code} happened` }, code);
    }
    for (const code of ["SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_LOCKED", "SQLITE_CONSTRAINT_UNIQUE", "SQLITE_ERROR", "SQLITE_MISUSE"]) {
      assert.equal(storageFailureOf(sqliteError(code)), undefined, code);
    }
    assert.equal(storageFailureOf(new TypeError("The database connection is not open")), undefined);
    assert.equal(storageFailureOf("text"), undefined);
    assert.equal(primaryCode("SQLITE_IOERR_SHORT_READ"), "SQLITE_IOERR");
  });

  test("the first failure is kept, and listeners hear it outside the failing call", async () => {
    const health = new StorageHealth("/state/ruriko.sqlite");
    const heard: string[] = [];
    health.onFailure((s) => heard.push(s.failure!.code));
    health.report(sqliteError("SQLITE_BUSY"));
    assert.equal(health.state.ok, true);
    health.report(sqliteError("SQLITE_FULL"));
    health.report(sqliteError("SQLITE_CORRUPT"));
    assert.equal(health.state.ok, false);
    assert.equal(health.state.failure?.code, "SQLITE_FULL");
    assert.equal(health.state.failure?.file, "/state/ruriko.sqlite");
    assert.deepEqual(heard, [], "not inside report()");
    await Promise.resolve();
    assert.deepEqual(heard, ["SQLITE_FULL"]);
  });
});

describe("openDatabase", () => {
  test("the integrity check refuses a file with a corrupt page, naming it", () => {
    const file = newFile();
    const db = openDatabase(file);
    db.close();
    corruptTablePage(file, "agent_status");
    // Without the check the damage goes unnoticed until a statement reads that page.
    openDatabase(file).close();
    assert.throws(() => openDatabase(file, { integrityCheck: true }), (error: unknown) => {
      assert.ok(error instanceof StorageError);
      assert.equal(error.code, "SQLITE_CORRUPT");
      assert.ok(error.message.startsWith(`state database ${file}: PRAGMA quick_check`), error.message);
      assert.match(error.message, /Restore a backup/);
      return true;
    });
  });

  test("a file that is not a database is refused, naming it", () => {
    const file = newFile();
    writeFileSync(file, "this is not SQLite, it is a text file long enough to hold a header".repeat(20));
    assert.throws(() => openDatabase(file), (error: unknown) => error instanceof StorageError && error.code === "SQLITE_NOTADB" && error.message.includes(file));
  });

  test("a statement meeting a corrupt page marks the database failed; a lock held by another connection does not", () => {
    const file = newFile();
    const health = new StorageHealth(file);
    const db = openDatabase(file, { health });
    const meta = new MetaStore(db);
    meta.set("k", "v");

    // Another process holds the write lock longer than this connection waits: SQLITE_BUSY, not a storage failure.
    const other = new Database(file);
    other.exec("BEGIN IMMEDIATE");
    db.pragma("busy_timeout = 0");
    assert.throws(() => meta.set("k", "w"), (e: unknown) => (e as { code?: string }).code === "SQLITE_BUSY");
    assert.throws(() => db.transaction(() => meta.set("k", "w"))(), (e: unknown) => (e as { code?: string }).code === "SQLITE_BUSY");
    other.exec("ROLLBACK");
    other.close();
    meta.set("k", "w");
    assert.equal(health.state.ok, true);

    corruptTablePage(file, "agent_status");
    touchDatabase(file);
    assert.equal(meta.get("k"), "w", "other tables still read");
    assert.throws(() => db.prepare("SELECT * FROM agent_status").all(), (e: unknown) => (e as { code?: string }).code === "SQLITE_CORRUPT");
    assert.equal(health.state.ok, false);
    assert.equal(health.state.failure?.code, "SQLITE_CORRUPT");
    assert.equal(health.state.failure?.file, file);
    db.close();
  });
});
