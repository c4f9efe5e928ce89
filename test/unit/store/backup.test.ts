/** `ruriko backup` and `ruriko restore` on real SQLite files. */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { backupState, restoreState, verifyBackup } from "../../../src/store/backup.ts";
import { ADOPT_META, BACKUP_TAKEN_META } from "../../../src/store/meta-store.ts";
import { openState, STATE_DB_FILE } from "../../../src/store/state.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const newDir = () => {
  const d = mkdtempSync(join(tmpdir(), "ruriko-backup-"));
  dirs.push(d);
  return d;
};
const audit = (n: number) => ({ traceId: `t${n}`, actor: "controller", action: "test.row", target: `row/${n}`, payload: { n }, result: "ok" as const });

describe("backup and restore", () => {
  test("a backup taken while another connection keeps writing is a consistent, marked, owner-only copy", async () => {
    const dir = newDir();
    const state = openState(dir);
    for (let i = 0; i < 200; i++) state.audit.append(audit(i));
    const target = join(newDir(), "backup.sqlite");
    const taking = backupState(dir, target);
    // serve keeps writing meanwhile; the copy is of one moment, before or after this row.
    state.audit.append(audit(200));
    const info = await taking;
    assert.equal(info.instance, state.instance);
    assert.equal(verifyBackup(target).instance, state.instance);
    assert.equal(statSync(target).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(join(target, "..")), ["backup.sqlite"], "no partial file, no WAL beside it");
    state.meta.set("after", "backup");
    state.close();

    const copy = openState(newDirWith(target));
    assert.equal(copy.meta.get(ADOPT_META), "restored");
    assert.ok(copy.meta.get(BACKUP_TAKEN_META));
    assert.equal(copy.meta.get("after"), undefined);
    assert.ok([200, 201].includes(copy.audit.byActor("controller", 1000).length));
    copy.close();

    await assert.rejects(backupState(dir, target), /exists; give another name, or --replace/);
    await backupState(dir, target, { replace: true });
  });

  test("restore refuses while the database is open, then replaces it, keeping the old one", async () => {
    const dir = newDir();
    const state = openState(dir);
    state.meta.set("era", "before");
    const target = join(newDir(), "b.sqlite");
    await backupState(dir, target);
    state.meta.set("era", "after");

    assert.throws(() => restoreState(dir, target), /is open in another process \(ruriko serve, or a ruriko command\): stop it before restoring/);
    assert.equal(state.meta.get("era"), "after", "nothing changed");
    state.close();

    const result = restoreState(dir, target);
    assert.equal(result.instance, state.instance);
    assert.ok(result.replaced && existsSync(result.replaced));
    assert.equal(existsSync(join(dir, `${STATE_DB_FILE}-wal`)), false);
    const restored = openState(dir);
    assert.equal(restored.instance, state.instance);
    assert.equal(restored.meta.get("era"), "before");
    assert.equal(restored.meta.get(ADOPT_META), "restored");
    restored.close();
  });

  test("restore refuses a backup of another instance, and a file that is not a backup", async () => {
    const mine = newDir();
    openState(mine).close();
    const theirs = newDir();
    openState(theirs).close();
    const target = join(newDir(), "theirs.sqlite");
    await backupState(theirs, target);
    assert.throws(() => restoreState(mine, target), /is a backup of Ruriko instance \w+, but .* is instance \w+/);
    const junk = join(newDir(), "junk.sqlite");
    writeFileSync(junk, "not a database at all".repeat(100));
    assert.throws(() => restoreState(mine, junk), /cannot be read as a SQLite database \(SQLITE_NOTADB/);
  });
});

/** A fresh state directory holding a copy of `file` as its database. */
function newDirWith(file: string): string {
  const dir = newDir();
  writeFileSync(join(dir, STATE_DB_FILE), readFileSync(file));
  return dir;
}
