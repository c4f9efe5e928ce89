/**
 * The loader validates with a fast validator first and with the detailed one only for documents that fail
 * (src/api/schemas.ts): the two must accept the same documents and fill in the same defaults. Checked on the
 * repository's manifests and on many random mutations of them.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { CORE_SCHEMA, loadAll } from "js-yaml";
import { isKind, KINDS } from "../../../src/api/kinds.ts";
import { detailedValidatorFor, fastValidatorFor, validatorFor } from "../../../src/api/schemas.ts";
import { agentYaml, GOSUTO_NEWSBOT } from "../../helpers/manifest-tree.ts";
import { seededRandom } from "../../helpers/seeded-random.ts";


/** The manifests in the repository: examples, templates, and the YAML the tests hold. */
function repositoryDocuments(): Array<Record<string, unknown>> {
  const root = join(import.meta.dirname, "../../..");
  const documents: Array<Record<string, unknown>> = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.ya?ml$/.test(name)) {
        try {
          for (const d of loadAll(readFileSync(path, "utf8"), null, { schema: CORE_SCHEMA })) {
            if (d && typeof d === "object" && isKind((d as { kind?: unknown }).kind)) documents.push(d as Record<string, unknown>);
          }
        } catch {
          // Not YAML this test can use.
        }
      }
    }
  };
  for (const dir of ["manifests-example", "templates", "test"]) walk(join(root, dir));
  const helpers = [GOSUTO_NEWSBOT, agentYaml("newsbot", "  env: {TZ: UTC}\n  resources: {memory: 128Mi, cpus: 0.5}\n  matrix: {provision: true}\n")];
  for (const text of helpers) documents.push(...(loadAll(text, null, { schema: CORE_SCHEMA }) as Array<Record<string, unknown>>));
  return documents;
}

const ODD_VALUES = [null, "", "x", "512Mi", "@a:b", "!r:x", -1, 0, 0.5, 1e9, true, [], ["x"], {}, { name: "x" }];

/** A copy of `document` with one to three random changes: a member removed, replaced by an odd value, or added. */
function mutate(document: Record<string, unknown>, next: () => number): Record<string, unknown> {
  const copy = structuredClone(document);
  for (let n = 1 + Math.floor(next() * 3); n > 0; n--) {
    const containers: Array<Record<string, unknown> | unknown[]> = [];
    const collect = (value: unknown) => {
      if (value && typeof value === "object") {
        containers.push(value as Record<string, unknown>);
        for (const child of Object.values(value)) collect(child);
      }
    };
    collect(copy);
    const target = containers[Math.floor(next() * containers.length)]!;
    const keys = Object.keys(target);
    const odd = structuredClone(ODD_VALUES[Math.floor(next() * ODD_VALUES.length)]);
    const r = next();
    if (r < 0.3 && keys.length > 0 && !Array.isArray(target)) delete target[keys[Math.floor(next() * keys.length)]!];
    else if (r < 0.8 && keys.length > 0) (target as Record<string, unknown>)[keys[Math.floor(next() * keys.length)]!] = odd;
    else if (Array.isArray(target)) target.push(odd);
    else target[next() < 0.5 ? "unknownField" : "name"] = odd;
  }
  return copy;
}

describe("the fast validator", () => {
  test("validatorFor fills in the defaults of a document that fails, and gives its errors when asked", () => {
    const validate = validatorFor("Agent");
    const spec = {};
    assert.equal(validate({ apiVersion: "ruriko.dev/v1alpha1", kind: "Agent", metadata: { name: "empty" }, spec }), false, "image and gosuto are required");
    assert.ok("state" in spec, "the defaults are filled in all the same");
    assert.ok(validate.errors && validate.errors.length > 0);
  });

  const documents = repositoryDocuments();

  test("accepts what the detailed one accepts, with the same defaults, on the repository's manifests", () => {
    assert.ok(documents.length > 10, `only ${documents.length} documents found`);
    for (const document of documents) {
      const [fast, detailed] = [structuredClone(document), structuredClone(document)];
      const kind = document.kind as (typeof KINDS)[number];
      assert.equal(fastValidatorFor(kind)(fast), detailedValidatorFor(kind)(detailed), JSON.stringify(document));
      assert.equal(JSON.stringify(fast), JSON.stringify(detailed));
    }
  });

  test("and on random mutations of them", () => {
    const next = seededRandom(7);
    let valid = 0;
    for (let i = 0; i < 20_000; i++) {
      const document = mutate(documents[Math.floor(next() * documents.length)]!, next);
      const kind = document.kind;
      if (!isKind(kind)) continue;
      const [fast, detailed] = [structuredClone(document), structuredClone(document)];
      const verdict = detailedValidatorFor(kind)(detailed);
      assert.equal(fastValidatorFor(kind)(fast), verdict, JSON.stringify(document));
      if (verdict) {
        valid++;
        assert.equal(JSON.stringify(fast), JSON.stringify(detailed));
      } else {
        // validatorFor: the fast validator, then the detailed one for the errors, on what the fast one left.
        const errors = detailedValidatorFor(kind).errors;
        const validate = validatorFor(kind);
        assert.equal(validate(structuredClone(document)), false);
        assert.deepEqual(validate.errors, errors, JSON.stringify(document));
      }
    }
    assert.ok(valid > 1000, `only ${valid} valid mutations`);
  });

  test("fills in the same defaults in an empty spec (what a new object's fields are compared with)", () => {
    for (const kind of KINDS) {
      const [fast, detailed] = [{}, {}];
      fastValidatorFor(kind)({ apiVersion: "ruriko.dev/v1alpha1", kind, metadata: { name: "empty" }, spec: fast });
      detailedValidatorFor(kind)({ apiVersion: "ruriko.dev/v1alpha1", kind, metadata: { name: "empty" }, spec: detailed });
      assert.deepEqual(fast, detailed, kind);
    }
  });
});
