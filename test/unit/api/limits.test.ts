/**
 * Hostile input is cheap (issue 13): each limit refuses with an error naming the file, and the costly shapes
 * are refused where the scan proves them so, before a parser builds them.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { DEFAULT_TREE_LIMITS } from "../../../src/api/budget.ts";
import { formatManifestError, type ManifestError } from "../../../src/api/errors.ts";
import { loadSnapshotFromDirectory } from "../../../src/api/load.ts";
import { OffThreadLoader } from "../../../src/api/load-off-thread.ts";
import { parseManifestFile } from "../../../src/api/parse.ts";
import { billionLaughs, compactNesting, MIB, writeHostileTree } from "../../helpers/hostile-tree.ts";
import { agentYaml, GOSUTO_NEWSBOT, writeTree } from "../../helpers/manifest-tree.ts";

const gosuto = (name: string, spec = "{}") => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
const lines = (errors: readonly ManifestError[]) => errors.map(formatManifestError);

describe("limits of one file", () => {
  test("1 MiB of `[` is refused at the bracket past the depth limit, before any parser", async () => {
    const s = await loadSnapshotFromDirectory(writeTree({ "brackets.yaml": "[".repeat(MIB) }));
    assert.deepEqual(lines(s.errors), ["brackets.yaml:1:33: nesting is deeper than the limit of 32 levels"]);
  });

  test("compact block nesting (`- - - …`) is refused where it passes the limit", async () => {
    const s = await loadSnapshotFromDirectory(writeTree({ "dashes.yaml": compactNesting() }));
    assert.deepEqual(lines(s.errors), ["dashes.yaml:1:65: nesting is deeper than the limit of 32 levels"]);
  });

  test("more documents than the limit are refused at the marker past it", async () => {
    const s = await loadSnapshotFromDirectory(writeTree({ "docs.yaml": "---\n".repeat(250_000) }));
    assert.deepEqual(lines(s.errors), ["docs.yaml:1001:1: file has more than 1000 documents, over the limit"]);
  });

  test("a billion-laughs file is refused by its alias expansions, naming the file", async () => {
    const s = await loadSnapshotFromDirectory(writeTree({ "laughs.yaml": billionLaughs() }));
    assert.deepEqual(lines(s.errors), ["laughs.yaml:1:1: too many alias expansions (limit 100); refusing a possible alias bomb"]);
  });

  test("a file's errors stop at the limit, with one that says so; it does not crash on thousands", () => {
    const tags = parseManifestFile("tags.yaml", Buffer.from("!t ".repeat(MIB / 30)));
    assert.equal(tags.errors.length, 101);
    assert.equal(formatManifestError(tags.errors.at(-1)!), "tags.yaml:1:301: stopped checking this file after 100 errors");
    const fields = Array.from({ length: 300 }, (_, i) => `  unknown${i}: 1`).join("\n");
    const schema = parseManifestFile("g.yaml", Buffer.from(`apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: g}\nspec:\n${fields}\n`));
    assert.equal(schema.errors.length, 101);
    assert.equal(schema.errors[0]!.path, "spec.unknown0");
    assert.equal(schema.errors.at(-1)!.code, "too-many-errors");
  });

  test("a duplicate key among many is found, at its line", async () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => `  k${i}: 1`);
    keys.push("  k7: 2");
    const s = await loadSnapshotFromDirectory(writeTree({ "dup.yaml": `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: g}\nspec:\n${keys.join("\n")}\n` }));
    assert.deepEqual(lines(s.errors), ["dup.yaml:20005:3: YAML syntax error: Map keys must be unique"]);
  });

  test("a file over the size limit is refused unread, naming its size", async () => {
    const s = await loadSnapshotFromDirectory(writeTree({ "big.yaml": "#".repeat(2000), "ok.yaml": gosuto("ok") }), { limits: { maxFileBytes: 1000 } });
    assert.deepEqual(lines(s.errors), ["big.yaml:1:1: file is 2000 bytes, over the limit of 1000 bytes"]);
  });
});

describe("limits of the whole tree", () => {
  test("files adding up to more than the byte limit: refused before any is read, the largest named", async () => {
    const dir = writeTree({ "a.yaml": `# ${"x".repeat(400_000)}\n`, "b.yaml": `# ${"x".repeat(500_000)}\n`, "c.yaml": gosuto("c"), "bad.yaml": "[" });
    const s = await loadSnapshotFromDirectory(dir, { limits: { maxTotalBytes: 800_000 } });
    assert.equal(s.errors.length, 1, "nothing was parsed: bad.yaml's syntax error is not there");
    assert.match(formatManifestError(s.errors[0]!), /^\.:1:1: manifest files add up to 900\d{3} bytes, over the limit of 800000 bytes \(largest: b\.yaml 500003, a\.yaml 400003, c\.yaml \d+\); nothing was read$/);
    assert.equal(DEFAULT_TREE_LIMITS.maxTotalBytes, 64 * MIB);
  });

  test("more manifest files than the limit", async () => {
    const s = await loadSnapshotFromDirectory(writeTree({ "a.yaml": gosuto("a"), "b.yaml": gosuto("b"), "c/d.yml": gosuto("d") }), { limits: { maxFiles: 2 } });
    assert.deepEqual(lines(s.errors), [".:1:1: 3 manifest files, over the limit of 2"]);
  });

  test("past the error limit the remaining files are not checked, and the report says how many", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 10; i++) files[`f${i}.yaml`] = Array.from({ length: 30 }, (_, k) => `---\nkind: Nothing${k}\n`).join("");
    const s = await loadSnapshotFromDirectory(writeTree(files), { limits: { maxErrors: 100 } });
    assert.equal(s.errors.filter((e) => e.code === "too-many-errors").length, 1);
    assert.match(lines(s.errors).find((l) => l.includes("not checked"))!, /^\.:1:1: stopped after 120 errors; 6 more files not checked$/);
    assert.ok(!s.errors.some((e) => e.file === "f9.yaml"));
  });

  test("the hostile tree: every file refused with its reason, named, where the scan found it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ruriko-hostile-"));
    writeFileSync(join(dir, "g.yaml"), GOSUTO_NEWSBOT);
    writeHostileTree(dir, "hostile");
    const s = await loadSnapshotFromDirectory(dir);
    assert.equal(s.errors.length, 22);
    for (const error of s.errors.filter((e) => e.file.includes("brackets-"))) assert.equal(formatManifestError(error), `${error.file}:1:33: nesting is deeper than the limit of 32 levels`);
    assert.deepEqual(lines(s.errors.filter((e) => !e.file.includes("brackets-"))), [
      "hostile/deep.yaml:1:65: nesting is deeper than the limit of 32 levels",
      "hostile/laughs.yaml:1:1: too many alias expansions (limit 100); refusing a possible alias bomb",
    ]);
    assert.deepEqual([...s.objects.keys()], ["Gosuto/newsbot"]);
  });
});

describe("symbolic links", () => {
  test("are not followed: what they point to is not loaded, and each is a warning naming it", async () => {
    const outside = writeTree({ "outside.yaml": gosuto("outside"), "more/deeper.yaml": gosuto("deeper") });
    const dir = writeTree({ "inside.yaml": gosuto("inside") });
    symlinkSync(outside, join(dir, "linked-dir"));
    symlinkSync(join(outside, "outside.yaml"), join(dir, "linked.yaml"));
    mkdirSync(join(dir, "sub"));
    symlinkSync("/usr", join(dir, "sub", "usr"));
    const s = await loadSnapshotFromDirectory(dir);
    assert.deepEqual([...s.objects.keys()], ["Gosuto/inside"]);
    assert.deepEqual(s.errors, []);
    assert.deepEqual(lines(s.warnings), [
      "linked-dir:1:1: symbolic link, not followed: what it points to is not read",
      "linked.yaml:1:1: symbolic link, not followed: what it points to is not read",
      "sub/usr:1:1: symbolic link, not followed: what it points to is not read",
    ]);
    assert.deepEqual(s.files, ["inside.yaml"]);
  });
});

describe("loading on a worker thread", () => {
  const loader = new OffThreadLoader();
  after(() => loader.close());

  test("gives the same snapshot as loading in-process, positions included", async () => {
    const dir = writeTree({
      "gosutos/newsbot.yaml": GOSUTO_NEWSBOT,
      "agents/newsbot.yaml": agentYaml("newsbot", "  env: {TZ: UTC}\n"),
      "agents/bad.yaml": agentYaml("bad", "  resources:\n    memory: lots\n"),
    });
    symlinkSync("/usr", join(dir, "usr"));
    const [here, there] = [await loadSnapshotFromDirectory(dir), await loader.load(dir)];
    assert.deepEqual(lines(there.errors), lines(here.errors));
    assert.deepEqual(lines(there.warnings), lines(here.warnings));
    assert.deepEqual([...there.objects.keys()], [...here.objects.keys()]);
    assert.equal(there.digest, here.digest);
    assert.deepEqual(there.fileDigests, here.fileDigests);
    for (const [key, object] of here.objects) {
      const other = there.objects.get(key)!;
      assert.deepEqual(other.object, object.object);
      assert.deepEqual(other.source.locate("spec.image"), object.source.locate("spec.image"), key);
      assert.deepEqual(other.source.locate(), object.source.locate(), key);
    }
  });

  test("a tree that needs more memory than the worker may have is refused, and the next load works", async () => {
    const small = new OffThreadLoader({ maxHeapMb: 32 });
    try {
      const files: Record<string, string> = {};
      for (let i = 0; i < 4; i++) files[`keys${i}.yaml`] = Array.from({ length: 60_000 }, (_, k) => `k${k}: v`).join("\n");
      const refused = await small.load(writeTree(files), { revision: "abc123" });
      assert.deepEqual(lines(refused.errors), [".:1:1: reading the manifests needed more memory than the limit of 32 MB"]);
      assert.equal(refused.revision, "abc123");
      const next = await small.load(writeTree({ "g.yaml": gosuto("g") }));
      assert.deepEqual(next.errors, []);
      assert.deepEqual([...next.objects.keys()], ["Gosuto/g"]);
    } finally {
      await small.close();
    }
  });
});
