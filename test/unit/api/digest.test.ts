/**
 * Digests must not move when their computation gets faster: every digest is stored (applied configs, approval
 * requests, container labels), and a moved one reads as a change. digest.ts against the straightforward
 * definition it replaced, over random values of every kind JSON has and some it has not.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { canonicalJson, digestOf, sha256 } from "../../../src/api/digest.ts";
import { seededRandom } from "../../helpers/seeded-random.ts";

/** Canonical JSON as first written: sorted entries, joined. */
function reference(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(reference).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${reference(v)}`).join(",")}}`;
}


const STRINGS = ["", "a", "Z", "é", "日本", "🙂", "\u2028", "\ud800", "x\udc00", 'q"uote', "back\\slash", "\n\t\u0001", "\u007f", "10", "9", "__proto__", "toJSON", "a b", "~"];
const LEAVES = [null, undefined, true, false, 0, -0, 1.5, -3, 1e21, 1e-7, NaN, Infinity, () => 1, Symbol("s")];

function randomValue(next: () => number, depth = 0): unknown {
  const r = next();
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
  if (depth > 3 || r < 0.35) return next() < 0.5 ? pick(STRINGS) : pick(LEAVES);
  if (r < 0.6) {
    const array: unknown[] = Array.from({ length: Math.floor(next() * 5) }, () => randomValue(next, depth + 1));
    if (next() < 0.1) array[array.length + 2] = 1; // holes
    return array;
  }
  const object: Record<string, unknown> = {};
  for (let i = Math.floor(next() * 7); i > 0; i--) object[pick(STRINGS) + (next() < 0.5 ? "" : String(Math.floor(next() * 30)))] = randomValue(next, depth + 1);
  return object;
}

describe("digests", () => {
  test("canonical JSON and digests are what they were, for random values", () => {
    const next = seededRandom(99);
    for (let i = 0; i < 20_000; i++) {
      const value = randomValue(next);
      const expected = reference(value);
      assert.equal(canonicalJson(value), expected);
      assert.equal(digestOf(value), `sha256:${createHash("sha256").update(expected).digest("hex")}`, expected);
    }
  });

  test("of bytes and of text, as createHash gives them", () => {
    assert.equal(sha256("héllo"), `sha256:${createHash("sha256").update("héllo").digest("hex")}`);
    assert.equal(sha256(new Uint8Array([0, 1, 255])), `sha256:${createHash("sha256").update(new Uint8Array([0, 1, 255])).digest("hex")}`);
  });

  test("a value too large for the writer's first buffer, many keys, and a digest taken while another is", () => {
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${(i * 7) % 40}`, i]));
    const large = { text: "x".repeat(200_000), list: Array.from({ length: 5000 }, (_, i) => ({ i, s: `é${i}` })), many };
    assert.equal(digestOf(large), sha256(reference(large)));
    const nested = { get inner() {
      return digestOf({ b: 1 });
    } };
    assert.equal(digestOf(nested), sha256(reference(nested)));
  });
});
