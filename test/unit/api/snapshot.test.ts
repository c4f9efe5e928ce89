import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { canonicalJson } from "../../../src/api/digest.ts";
import { parseManifestFile } from "../../../src/api/parse.ts";
import { buildSnapshot } from "../../../src/api/snapshot.ts";
import { firstInvalidUtf8Offset } from "../../../src/api/utf8.ts";
import { agentYaml, GOSUTO_NEWSBOT } from "../../helpers/manifest-tree.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function snapshotOf(files: Record<string, string>) {
  const objects = [];
  const errors = [];
  for (const [file, text] of Object.entries(files)) {
    const parsed = parseManifestFile(file, enc(text));
    objects.push(...parsed.objects);
    errors.push(...parsed.errors);
  }
  return buildSnapshot({ objects, errors, files: Object.keys(files) });
}

describe("digests", () => {
  test("do not depend on key order, comments, quoting or formatting", () => {
    const a = snapshotOf({ "a.yaml": GOSUTO_NEWSBOT + "---\n" + agentYaml("newsbot", "  env: {TZ: UTC, LANG: C}\n") });
    const b = snapshotOf({
      "z/other-name.yml": `# reformatted\nkind: "Agent"\nspec:\n  env:\n    LANG: "C"\n    TZ: UTC   # zone\n  gosuto: newsbot\n  image: 'ruriko/gitai:dev'\nmetadata: {name: newsbot}\napiVersion: ruriko.dev/v1alpha1\n---\n${GOSUTO_NEWSBOT}`,
    });
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
    assert.equal(a.objects.get("Agent/newsbot")!.digest, b.objects.get("Agent/newsbot")!.digest);
    assert.equal(a.digest, b.digest);
  });

  test("writing a default explicitly changes nothing; changing a value changes the object and the snapshot", () => {
    const base = snapshotOf({ "a.yaml": GOSUTO_NEWSBOT + "---\n" + agentYaml("newsbot") });
    const explicit = snapshotOf({ "a.yaml": GOSUTO_NEWSBOT + "---\n" + agentYaml("newsbot", "  state: Running\n  drift: heal\n") });
    const stopped = snapshotOf({ "a.yaml": GOSUTO_NEWSBOT + "---\n" + agentYaml("newsbot", "  state: Stopped\n") });
    assert.equal(base.digest, explicit.digest);
    assert.notEqual(base.objects.get("Agent/newsbot")!.digest, stopped.objects.get("Agent/newsbot")!.digest);
    assert.equal(base.objects.get("Gosuto/newsbot")!.digest, stopped.objects.get("Gosuto/newsbot")!.digest);
    assert.notEqual(base.digest, stopped.digest);
  });

  test("canonical JSON sorts keys at every depth", () => {
    assert.equal(canonicalJson({ b: [{ d: 1, c: 2 }], a: null }), '{"a":null,"b":[{"c":2,"d":1}]}');
  });
});

describe("documents", () => {
  test("defaults from the schema are filled in", () => {
    const s = snapshotOf({ "a.yaml": GOSUTO_NEWSBOT + "---\n" + agentYaml("newsbot") });
    const agent = s.objects.get("Agent/newsbot")!.object;
    assert.equal(agent.kind, "Agent");
    if (agent.kind === "Agent") {
      assert.equal(agent.spec.state, "Running");
      assert.equal(agent.spec.drift, "heal");
    }
  });

  test("empty documents and comment-only files declare nothing", () => {
    const s = snapshotOf({ "a.yaml": "---\n# nothing here\n---\n", "b.yaml": "" });
    assert.deepEqual(s.errors, []);
    assert.equal(s.objects.size, 0);
  });

  test("approval rooms: classic and room-version-12 ids and aliases pass; a bare name is refused at its line", () => {
    const policy = (room: string) =>
      `apiVersion: ruriko.dev/v1alpha1\nkind: ApprovalPolicy\nmetadata: {name: p}\nspec:\n  room: "${room}"\n  approvers: ["@a:example.org"]\n  rules: []\n`;
    for (const room of ["!abc:example.org", "!tUs1PMBqqj504ajpujmqzydxekXokDHns027fHH6yLY", "#ops:example.org:8448"]) {
      assert.deepEqual(snapshotOf({ "p.yaml": policy(room) }).errors, [], room);
    }
    for (const room of ["ops", "#ops", "!a b:example.org"]) {
      const [error] = snapshotOf({ "p.yaml": policy(room) }).errors;
      assert.equal(error?.path, "spec.room", room);
      assert.equal(error?.line, 5, room);
    }
  });

  test("a Gosuto trusts room ids of any room version, aliases and *; one message per mistake", () => {
    const gosuto = (rooms: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: g}\nspec:\n  trust:\n    allowedRooms: ${rooms}\n`;
    assert.deepEqual(snapshotOf({ "g.yaml": gosuto(`["*", "!abc:example.org", "!tUs1PMBqqj504ajpujmqzydxekXokDHns027fHH6yLY", "#ops:example.org"]`) }).errors, []);
    const errors = snapshotOf({ "g.yaml": gosuto(`["ops"]`) }).errors;
    assert.equal(errors.length, 1, errors.map((e) => e.message).join("; "));
    assert.equal(errors[0]!.path, "spec.trust.allowedRooms[0]");
    assert.match(errors[0]!.message, /room id like !abc:example.org, an alias like #ops:example.org, or \*/);
  });

  test("an Agent's Matrix account is an existing userId or a provisioned one, not both", () => {
    const agent = (matrix: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: a}\nspec:\n  image: ruriko/gitai:dev\n  gosuto: a\n  matrix: ${matrix}\n---\napiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: a}\nspec: {}\n`;
    for (const ok of [`{userId: "@a:example.org"}`, `{provision: true, displayName: A}`, `{userId: "@a:example.org", provision: false}`]) assert.deepEqual(snapshotOf({ "a.yaml": agent(ok) }).errors, [], ok);
    const [error] = snapshotOf({ "a.yaml": agent(`{userId: "@a:example.org", provision: true}`) }).errors;
    assert.equal(error?.path, "spec.matrix");
    assert.equal(error?.line, 7);
    assert.match(error!.message, /either userId .* or provision: true .*, not both/);
  });

  test("Matrix credentials in the secret store cannot be bound to an agent", () => {
    const binding = (secret: string) => `apiVersion: ruriko.dev/v1alpha1\nkind: SecretBinding\nmetadata: {name: b}\nspec: {agent: a, secret: "${secret}"}\n`;
    for (const reserved of ["matrix-registration-secret", "matrix-access-token", "agent.other.matrix-token", "matrix-account.other.password", "registry.docker.io", "registry-5000.127.0.0.1"]) {
      const [error] = snapshotOf({ "b.yaml": binding(reserved) }).errors;
      assert.equal(error?.path, "spec.secret", reserved);
      assert.match(error!.message, /a name Ruriko keeps for its own credentials/, reserved);
    }
  });

  test("duplicate keys in a mapping are a syntax error", () => {
    const s = snapshotOf({ "a.yaml": "apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nkind: Agent\nmetadata: {name: x}\nspec: {}\n" });
    assert.equal(s.errors.length, 1);
    assert.equal(s.errors[0]!.code, "syntax");
    assert.equal(s.errors[0]!.line, 3);
  });

  test("an object defined twice in one file is reported at the second definition, pointing at the first", () => {
    const twice = `${GOSUTO_NEWSBOT}---\n${GOSUTO_NEWSBOT}`;
    assert.deepEqual(
      snapshotOf({ "a.yaml": twice }).errors.map((e) => `${e.file}:${e.line}:${e.column}: ${e.message}`),
      ["a.yaml:15:3: Gosuto/newsbot is defined twice: here and at a.yaml:4:3"],
    );
  });
});

describe("UTF-8 validation", () => {
  test("finds the first invalid sequence", () => {
    assert.equal(firstInvalidUtf8Offset(enc("héllo ✓ 😀")), -1);
    assert.equal(firstInvalidUtf8Offset(Uint8Array.from([0x61, 0xc0, 0x80])), 1); // overlong
    assert.equal(firstInvalidUtf8Offset(Uint8Array.from([0x61, 0x62, 0xed, 0xa0, 0x80])), 2); // surrogate
    assert.equal(firstInvalidUtf8Offset(Uint8Array.from([0xe2, 0x82])), 0); // truncated
    assert.equal(firstInvalidUtf8Offset(Uint8Array.from([0xf8, 0x88, 0x80, 0x80, 0x80])), 0);
  });
});
