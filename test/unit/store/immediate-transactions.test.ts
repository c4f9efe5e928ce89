/**
 * Two processes writing one state database (serve, and a CLI beside it): a transaction that reads and then writes
 * must hold the write lock from its start. A deferred one would fail at its write with SQLITE_BUSY when the other
 * wrote in between (`ruriko secret set` did, while serve was creating agents).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, test } from "node:test";
import { openDatabase, type Db } from "../../../src/store/database.ts";
import { StorageHealth } from "../../../src/store/storage-health.ts";

const open: Db[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const db of open.splice(0)) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function pair(guardedFirst: boolean): [Db, Db] {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-tx-"));
  dirs.push(dir);
  const file = join(dir, "state.sqlite");
  const first = openDatabase(file, guardedFirst ? { health: new StorageHealth(file) } : {});
  const other = openDatabase(file);
  // The other writer does not wait: it meets the lock at once.
  other.pragma("busy_timeout = 0");
  open.push(first, other);
  first.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)");
  first.prepare("INSERT INTO t VALUES ('x', 1)").run();
  return [first, other];
}

describe("transactions begin IMMEDIATE", () => {
  for (const guardedFirst of [false, true]) {
    test(`a read-then-write transaction holds the write lock from its start (${guardedFirst ? "serve's guarded" : "a CLI's"} connection)`, () => {
      const [db, other] = pair(guardedFirst);
      const result = db.transaction(() => {
        const v = (db.prepare("SELECT v FROM t WHERE k = 'x'").get() as { v: number }).v;
        // Another process writes between the read and the write: it must wait (here: fail at once), not this one.
        assert.throws(() => other.prepare("UPDATE t SET v = 100 WHERE k = 'x'").run(), /locked|busy/i);
        db.prepare("UPDATE t SET v = ? WHERE k = 'x'").run(v + 1);
        return v + 1;
      })();
      assert.equal(result, 2);
      assert.equal((other.prepare("SELECT v FROM t WHERE k = 'x'").get() as { v: number }).v, 2);
    });
  }
});
