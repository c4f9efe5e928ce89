/** A state directory remembers its instance beside the database: a lost database is refused, not started over. */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { openDatabase } from "../../../src/store/database.ts";
import { InstanceMismatchError, judgeInstance, LostStateError, readInstanceFile } from "../../../src/store/instance-file.ts";
import { ADOPT_META, MetaStore } from "../../../src/store/meta-store.ts";
import { openState, STATE_DB_FILE } from "../../../src/store/state.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const newDir = () => {
  const d = mkdtempSync(join(tmpdir(), "ruriko-instance-"));
  dirs.push(d);
  return d;
};

describe("instance id beside the database", () => {
  test("judging the two ids", () => {
    assert.deepEqual(judgeInstance(undefined, undefined), { kind: "new" });
    assert.deepEqual(judgeInstance("a1", undefined), { kind: "known", instance: "a1" });
    assert.deepEqual(judgeInstance("a1", "a1"), { kind: "known", instance: "a1" });
    assert.deepEqual(judgeInstance(undefined, "a1"), { kind: "lost", instance: "a1" });
    assert.deepEqual(judgeInstance("b2", "a1"), { kind: "mismatch", database: "b2", recorded: "a1" });
  });

  test("a new directory gets an id, recorded beside the database; reopening keeps it", () => {
    const dir = newDir();
    const first = openState(dir);
    assert.equal(first.origin, "new");
    first.close();
    assert.equal(readFileSync(join(dir, "instance-id"), "utf8"), `${first.instance}\n`);
    const again = openState(dir);
    assert.equal(again.instance, first.instance);
    assert.equal(again.origin, "existing");
    again.close();
  });

  test("a directory from before the file existed gets the file at its next open", () => {
    const dir = newDir();
    const db = openDatabase(join(dir, STATE_DB_FILE));
    new MetaStore(db).set("instance_id", "old1");
    db.close();
    const state = openState(dir);
    assert.equal(state.instance, "old1");
    state.close();
    assert.equal(readInstanceFile(dir), "old1");
  });

  for (const [what, lose] of [
    ["truncated to 0 bytes", (file: string) => truncateSync(file, 0)],
    ["deleted", (file: string) => rmSync(file)],
  ] as const) {
    test(`a database ${what} is refused, naming the instance, and nothing is created in its place`, () => {
      const dir = newDir();
      const first = openState(dir);
      first.close();
      const file = join(dir, STATE_DB_FILE);
      rmSync(`${file}-wal`, { force: true });
      rmSync(`${file}-shm`, { force: true });
      lose(file);
      assert.throws(() => openState(dir), (error: unknown) => {
        assert.ok(error instanceof LostStateError);
        assert.equal(error.instance, first.instance);
        assert.match(error.message, new RegExp(`belongs to Ruriko instance ${first.instance}`));
        assert.match(error.message, /--adopt-orphans/);
        assert.match(error.message, /ruriko restore FILE/);
        return true;
      });
      assert.equal(existsSync(file) ? readFileSync(file).length : 0, 0, "no new database");
    });
  }

  test("a database replaced by an empty one (no id) is refused too", () => {
    const dir = newDir();
    const first = openState(dir);
    first.close();
    rmSync(join(dir, STATE_DB_FILE));
    openDatabase(join(dir, STATE_DB_FILE)).close(); // schema, but no instance id
    assert.throws(() => openState(dir), (error: unknown) => error instanceof LostStateError && /holds no instance id/.test(error.message));
  });

  test("adopting takes over the recorded id and marks the engine for adoption in the same transaction", () => {
    const dir = newDir();
    const first = openState(dir);
    first.close();
    truncateSync(join(dir, STATE_DB_FILE), 0);
    const adopted = openState(dir, { adopt: { onAdopt: (meta) => meta.set(ADOPT_META, "lost") } });
    assert.equal(adopted.instance, first.instance);
    assert.equal(adopted.origin, "adopted");
    assert.equal(adopted.meta.get(ADOPT_META), "lost");
    adopted.close();
    const after = openState(dir, { adopt: { onAdopt: () => assert.fail("nothing is lost any more") } });
    assert.equal(after.origin, "existing");
    after.close();
  });

  test("a database of another instance is refused", () => {
    const dir = newDir();
    openState(dir).close();
    writeFileSync(join(dir, "instance-id"), "someone\n");
    assert.throws(() => openState(dir), (error: unknown) => error instanceof InstanceMismatchError && /says this directory is instance someone/.test(error.message));
  });
});
