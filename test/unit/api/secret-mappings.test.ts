/**
 * Where a granted secret goes inside an agent: the Gosuto's `secrets[]: {name, envVar, mcps}` (schemas/gosuto.schema.json
 * and src/api/references.ts), and `SecretBinding.spec.env`, which is deprecated: still valid, warned about, ignored.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import { formatManifestError } from "../../../src/api/errors.ts";
import { parseManifestFile } from "../../../src/api/parse.ts";
import { checkAcrossObjects, warningsAbout } from "../../../src/api/references.ts";
import { agentYaml, writeTree } from "../../helpers/manifest-tree.ts";

const CLI = join(import.meta.dirname, "../../../src/cli/ruriko.ts");

const gosuto = (secrets: string) => `apiVersion: ruriko.dev/v1alpha1
kind: Gosuto
metadata:
  name: newsbot
spec:
  mcps:
    - {name: search, command: brave-search-mcp-server}
    - {name: fetch, command: mcp-fetch-server}
  secrets:
${secrets}`;

/** Every error `ruriko validate` would print for this one Gosuto: the schema's, then the checks across its parts. */
function errorsOf(text: string): { schema: string[]; parts: string[]; warnings: string[] } {
  const parsed = parseManifestFile("gosutos/newsbot.yaml", new TextEncoder().encode(text));
  return {
    schema: parsed.errors.map(formatManifestError),
    parts: checkAcrossObjects(parsed.objects).map(formatManifestError),
    warnings: warningsAbout(parsed.objects).map(formatManifestError),
  };
}

describe("Gosuto secrets[]: which servers see a granted secret", () => {
  test("a mapping to defined servers, one variable per server, is valid", () => {
    const r = errorsOf(gosuto(`    - {name: search-api-key, envVar: BRAVE_API_KEY, mcps: [search]}
    - {name: proxy-token, envVar: PROXY_TOKEN, mcps: [search, fetch]}
    - {name: other-token, envVar: BRAVE_API_KEY, mcps: [fetch]}
`));
    assert.deepEqual(r, { schema: [], parts: [], warnings: [] });
  });

  test("mcps: [] is refused: a secret mapped nowhere is not mapped", () => {
    const r = errorsOf(gosuto(`    - name: search-api-key
      envVar: BRAVE_API_KEY
      mcps: []
`));
    assert.deepEqual(r.schema, ["gosutos/newsbot.yaml:12:7: Gosuto/newsbot: spec.secrets[0].mcps: must name at least one server of mcps[]: a secret mapped nowhere is not mapped"]);
  });

  test("a mapping without mcps is refused too", () => {
    const r = errorsOf(gosuto("    - {name: search-api-key, envVar: BRAVE_API_KEY}\n"));
    assert.deepEqual(r.schema, ["gosutos/newsbot.yaml:10:7: Gosuto/newsbot: spec.secrets[0].mcps: is required"]);
  });

  test("a mapping naming a server the Gosuto does not define is refused, at that server's name", () => {
    const r = errorsOf(gosuto(`    - name: search-api-key
      envVar: BRAVE_API_KEY
      mcps: [search, serach]
`));
    assert.deepEqual(r.schema, []);
    assert.deepEqual(r.parts, ['gosutos/newsbot.yaml:12:22: Gosuto/newsbot: spec.secrets[0].mcps[1]: names MCP server "serach", which this Gosuto does not define in mcps[]']);
  });

  test("two secrets under the same variable for the same server conflict; the later one is named", () => {
    const r = errorsOf(gosuto(`    - {name: search-api-key, envVar: BRAVE_API_KEY, mcps: [search]}
    - name: old-search-key
      envVar: BRAVE_API_KEY
      mcps: [fetch, search]
`));
    assert.deepEqual(r.schema, []);
    assert.deepEqual(r.parts, ['gosutos/newsbot.yaml:12:7: Gosuto/newsbot: spec.secrets[1].envVar: server "search" already receives BRAVE_API_KEY from spec.secrets[0]']);
  });
});

describe("SecretBinding.spec.env is deprecated", () => {
  const binding = (env: string) => `apiVersion: ruriko.dev/v1alpha1
kind: SecretBinding
metadata:
  name: newsbot-search
spec:
  agent: newsbot
  secret: search-api-key
${env}`;
  const validate = (dir: string) => spawnSync(process.execPath, [CLI, "validate", dir], { encoding: "utf8", timeout: 60_000 });
  const tree = (env: string) =>
    writeTree({
      "gosutos/newsbot.yaml": gosuto("    - {name: search-api-key, envVar: BRAVE_API_KEY, mcps: [search]}\n"),
      "agents/newsbot.yaml": agentYaml("newsbot"),
      "bindings/newsbot-search.yaml": binding(env),
    });

  test("validate warns, naming the Gosuto field to use, and still exits 0", () => {
    const r = validate(tree("  env: BRAVE_API_KEY\n"));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /^warning: bindings\/newsbot-search\.yaml:8:3: SecretBinding\/newsbot-search: spec\.env: is deprecated and ignored: the agent's Gosuto says where a granted secret goes \(spec\.secrets\[\]: \{name, envVar, mcps\}\)$/m,
    );
    assert.match(r.stdout, /^valid: 3 objects in 3 files/m);
  });

  test("without env there is no warning", () => {
    const r = validate(tree(""));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /warning/);
  });
});
