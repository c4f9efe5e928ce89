import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import { agentYaml, GOSUTO_NEWSBOT, writeTree } from "../../helpers/manifest-tree.ts";

const REPO = join(import.meta.dirname, "../../..");
const CLI = join(REPO, "src/cli/ruriko.ts");

function validate(path: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, "validate", path, ...args], { encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("ruriko validate", () => {
  test("the example manifests are valid", () => {
    const r = validate(join(REPO, "manifests-example"));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^valid: 8 objects in \d+ files \(sha256:[0-9a-f]{64}\)$/m);
  });

  test("the templates are valid Gosuto documents", () => {
    for (const template of ["cron-agent", "browser-agent"]) {
      const r = validate(join(REPO, "templates", template));
      assert.equal(r.code, 0, `${template}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /^valid: 1 object in 1 file/m);
    }
  });

  test("a bad field names file, line, column, kind/name and path", () => {
    const dir = writeTree({
      "gosutos/newsbot.yaml": GOSUTO_NEWSBOT,
      "agents/newsbot.yaml": agentYaml("newsbot", "  resources:\n    memory: lots\n"),
    });
    const r = validate(dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^agents\/newsbot\.yaml:9:5: Agent\/newsbot: spec\.resources\.memory: must be a size like 512Mi/m);
  });

  test("every error is printed, not only the first", () => {
    const dir = writeTree({
      "gosutos/newsbot.yaml": GOSUTO_NEWSBOT,
      "agents/a.yaml": agentYaml("a", "  state: Sleeping\n"),
      "agents/b.yaml": agentYaml("b", "  colour: blue\n"),
      "agents/c.yaml": agentYaml("c", "", "missing-gosuto"),
    });
    const r = validate(dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^agents\/a\.yaml:8:3: Agent\/a: spec\.state: must be one of "Running", "Stopped"$/m);
    assert.match(r.stdout, /^agents\/b\.yaml:8:3: Agent\/b: spec\.colour: unknown field; expected one of .*image/m);
    assert.match(r.stdout, /^agents\/c\.yaml:7:3: Agent\/c: spec\.gosuto: refers to Gosuto "missing-gosuto", which is not defined$/m);
    assert.match(r.stdout, /^invalid: 3 errors; /m);
  });

  test("a missing required field points at its parent", () => {
    const dir = writeTree({
      "agents/a.yaml": "apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata:\n  name: a\nspec:\n  gosuto: x\n",
      "gosutos/x.yaml": GOSUTO_NEWSBOT.replace("name: newsbot", "name: x"),
    });
    const r = validate(dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^agents\/a\.yaml:5:1: Agent\/a: spec\.image: is required$/m);
  });

  test("the same kind and name twice names both places", () => {
    const dir = writeTree({
      "gosutos/newsbot.yaml": GOSUTO_NEWSBOT,
      "agents/one.yaml": agentYaml("newsbot"),
      "agents/two.yaml": `# a comment\n${agentYaml("newsbot")}`,
    });
    const r = validate(dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^agents\/two\.yaml:5:3: Agent\/newsbot: metadata\.name: Agent\/newsbot is defined twice: here and at agents\/one\.yaml:4:3$/m);
  });

  test("a SecretBinding to a missing agent is refused", () => {
    const dir = writeTree({
      "b.yaml": "apiVersion: ruriko.dev/v1alpha1\nkind: SecretBinding\nmetadata:\n  name: ghost-key\nspec:\n  agent: ghost\n  secret: openai-api-key\n  env: OPENAI_API_KEY\n",
    });
    const r = validate(dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^b\.yaml:6:3: SecretBinding\/ghost-key: spec\.agent: refers to Agent "ghost", which is not defined$/m);
  });

  test("unknown kind and unknown apiVersion", () => {
    const dir = writeTree({
      "x.yaml": "apiVersion: ruriko.dev/v1alpha1\nkind: Deployment\nmetadata:\n  name: web\nspec: {}\n---\napiVersion: apps/v1\nkind: Agent\nmetadata:\n  name: web\nspec: {}\n",
    });
    const r = validate(dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^x\.yaml:2:1: Deployment\/web: kind: unknown kind "Deployment"; expected one of Agent, Gosuto, SecretBinding, ApprovalPolicy$/m);
    assert.match(r.stdout, /^x\.yaml:7:1: Agent\/web: apiVersion: unknown apiVersion "apps\/v1"; expected ruriko\.dev\/v1alpha1$/m);
  });

  test("--output json carries every error with its location", () => {
    const dir = writeTree({
      "gosutos/newsbot.yaml": GOSUTO_NEWSBOT,
      "agents/newsbot.yaml": agentYaml("newsbot", "  resources:\n    memory: lots\n"),
    });
    const r = validate(dir, "--output", "json");
    assert.equal(r.code, 1);
    const report = JSON.parse(r.stdout) as { valid: boolean; errors: Array<Record<string, unknown>> };
    assert.equal(report.valid, false);
    assert.equal(report.errors.length, 1);
    assert.deepEqual(
      { file: report.errors[0]!.file, line: report.errors[0]!.line, column: report.errors[0]!.column, kind: report.errors[0]!.kind, name: report.errors[0]!.name, path: report.errors[0]!.path },
      { file: "agents/newsbot.yaml", line: 9, column: 5, kind: "Agent", name: "newsbot", path: "spec.resources.memory" },
    );
  });

  test("a path that does not exist is an error, not a crash", () => {
    const r = validate("/nonexistent/manifests");
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^\/nonexistent\/manifests:1:1: does not exist$/m);
  });
});

describe("hostile input is refused with a clear error and no crash", () => {
  test("a YAML alias bomb", () => {
    const levels = ["a: &a [x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(", ")}]`);
    const dir = writeTree({ "bomb.yaml": `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata:\n  name: bomb\nspec:\n  lol:\n${levels.map((l) => `    ${l}`).join("\n")}\n` });
    const r = validate(dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^bomb\.yaml:1:1: too many alias expansions \(limit 100\); refusing a possible alias bomb$/m);
  });

  test("a file over the size limit", () => {
    const dir = writeTree({ "big.yaml": `# ${"x".repeat(1024 * 1024)}\n` });
    const r = validate(dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^big\.yaml:1:1: file is 1048579 bytes, over the limit of 1048576 bytes$/m);
  });

  test("invalid UTF-8 names the line and column", () => {
    const text = Buffer.concat([Buffer.from("apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata:\n  name: caf"), Buffer.from([0xc3, 0x28]), Buffer.from("\nspec: {}\n")]);
    const dir = writeTree({ "latin1.yaml": text });
    const r = validate(dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^latin1\.yaml:4:12: invalid UTF-8; manifests must be UTF-8 text$/m);
  });

  test("a document that is not a mapping", () => {
    const dir = writeTree({ "list.yaml": "apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: ok}\nspec: {}\n---\n- just\n- a list\n" });
    const r = validate(dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^list\.yaml:6:1: document must be a mapping with apiVersion, kind, metadata and spec$/m);
  });

  test("a deeply nested document", () => {
    let nested = "";
    for (let i = 0; i < 40; i++) nested += `${"  ".repeat(i + 1)}k${i}:\n`;
    const dir = writeTree({ "deep.yaml": `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata:\n  name: deep\nspec:\n${nested}${"  ".repeat(41)}leaf: 1\n` });
    const r = validate(dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^deep\.yaml:\d+:\d+: nesting is deeper than the limit of 32 levels$/m);
  });

  test("pathologically deep flow nesting does not crash the parser", () => {
    const dir = writeTree({ "flow.yaml": `${"[".repeat(200_000)}${"]".repeat(200_000)}\n` });
    const r = validate(dir);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^flow\.yaml:1:\d+: nesting is deeper than the limit of 32 levels$/m);
  });

  test("a binary file with a manifest name", () => {
    const dir = writeTree({ "agents/logo.yaml": Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00]) });
    const r = validate(dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^agents\/logo\.yaml:3:1: binary file \(contains a NUL byte\); manifests must be UTF-8 text$/m);
  });

  test("a YAML syntax error", () => {
    const dir = writeTree({ "broken.yaml": "apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata:\n  name: [unclosed\nspec: {}\n" });
    const r = validate(dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^broken\.yaml:\d+:\d+: YAML syntax error: /m);
  });
});
