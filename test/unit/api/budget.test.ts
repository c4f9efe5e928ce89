import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { loadAll } from "js-yaml";
import { isMap, isPair, isSeq, parseAllDocuments, stringify, type Node } from "yaml";
import { positionOfOffset, scanStructure, tooFewIndicatorsToExceed } from "../../../src/api/budget.ts";
import { billionLaughs, compactNesting, MIB } from "../../helpers/hostile-tree.ts";
import { seededRandom } from "../../helpers/seeded-random.ts";

/** The deepest collection of a parsed document, keys included (the root collection is 1). */
function realDepth(text: string): number {
  let deepest = 0;
  for (const doc of parseAllDocuments(text)) {
    const stack: Array<[unknown, number]> = [[doc.contents, 1]];
    while (stack.length > 0) {
      const [node, depth] = stack.pop()!;
      if (isMap(node) || isSeq(node)) {
        deepest = Math.max(deepest, depth);
        for (const item of node.items) {
          if (isPair(item)) stack.push([item.key, depth + 1], [item.value, depth + 1]);
          else stack.push([item as Node, depth + 1]);
        }
      }
    }
  }
  return deepest;
}

/** Valid YAML by both parsers: `yaml` alone lets some junk through silently (text after a quoted key). */
function parsesCleanly(text: string): boolean {
  try {
    loadAll(text);
  } catch {
    return false;
  }
  return parseAllDocuments(text).every((d) => d.errors.length === 0);
}


describe("scanStructure", () => {
  test("finds the nesting of the costly shapes within the first bytes", () => {
    const shapes: Record<string, string> = {
      brackets: "[".repeat(MIB),
      braces: "{".repeat(MIB),
      "flow mappings": "{a: ".repeat(MIB / 4),
      "compact sequences": compactNesting(),
      "explicit keys": "? ".repeat(MIB / 2),
      "after a tag": `key: !t${"[".repeat(100)}`,
      "after an anchor": `- &a ${"[".repeat(100)}`,
      "after a quoted key": `"k": ${"[".repeat(100)}`,
      "after a block scalar, back at its parent's column": `- a: |\n    text\n  b: ${"[".repeat(100)}`,
      "on a plain scalar's next line, after a colon": `a: b\n  c: ${"[".repeat(100)}`,
      "a comment-looking # inside flow": `[#${"[".repeat(100)}`,
      "after a quote the scan closed": `['it''s', "a \\" b", ${"[".repeat(100)}`,
      "after an unclosed quote, past a document marker": `a: "never closed\n---\n${"[".repeat(100)}`,
    };
    for (const [shape, text] of Object.entries(shapes)) {
      const scan = scanStructure(text, 32);
      assert.equal(scan.finding?.code, "too-deep", shape);
      assert.ok(scan.finding!.offset < 1000, `${shape}: found at ${scan.finding!.offset}`);
    }
  });

  test("does not take brackets in text for nesting", () => {
    const texts = [
      `description: see [docs] and {this}${"[".repeat(50)}\n`,
      `url: http://x/${"[".repeat(50)}\n`,
      `# ${"[".repeat(50)}\nkey: 1\n`,
      `a: 1 # ${"[".repeat(50)}\n`,
      `text: "${"[".repeat(50)}"\nother: '${"{".repeat(50)}'\n`,
      `prompt: |\n  ${"[".repeat(50)}\n  - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -\nnext: 1\n`,
      `prompt: >-\n    a\n\n    ${"[".repeat(50)}\n`,
      `--- |\n${"[".repeat(50)}\n`,
      `folded: this plain scalar\n  goes on ${"[".repeat(50)}\n  and on\n`,
      `- item\n  ${"[".repeat(50)}\n`,
      `multi: "first line\n  ${"[".repeat(50)}"\n`,
      `list: [a, "b ]]] [[[ ${"[".repeat(50)}", 'c''${"[".repeat(50)}']\n`,
      `k: it's ${"[".repeat(50)}\n`,
      `cron: 0 * * * ${"[".repeat(50)}\n`,
    ];
    for (const text of texts) {
      assert.ok(parsesCleanly(text), `the sample parses: ${JSON.stringify(text.slice(0, 40))}`);
      const scan = scanStructure(text, 32);
      assert.equal(scan.finding, undefined, JSON.stringify(text.slice(0, 60)));
      assert.ok(scan.depth <= realDepth(text), JSON.stringify(text.slice(0, 60)));
    }
  });

  test("never counts deeper than the parser finds, over generated documents", () => {
    const rand = seededRandom(13);
    const pick = <T>(items: readonly T[]) => items[Math.floor(rand() * items.length)]!;
    const chars = "ab -:#[]{},?|>&*!'\"\n\\%@`";
    const word = () => Array.from({ length: 1 + Math.floor(rand() * 8) }, () => (rand() < 0.6 ? "abcxyz"[Math.floor(rand() * 6)] : pick([...chars]))).join("");
    const value = (depth: number): unknown => {
      const r = rand();
      if (depth > 6 || r < 0.35) return pick([word(), 42, true, null, "", word() + "\n" + word()]);
      if (r < 0.65) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(rand() * 4) }, () => [word(), value(depth + 1)]));
    };
    let checked = 0;
    for (let i = 0; i < 1500; i++) {
      const options = {
        collectionStyle: pick(["any", "block", "flow"] as const),
        indentSeq: rand() < 0.5,
        indent: 1 + Math.floor(rand() * 4),
        lineWidth: pick([0, 20, 80]),
        minContentWidth: 0,
        defaultStringType: pick(["PLAIN", "QUOTE_DOUBLE", "QUOTE_SINGLE", "BLOCK_LITERAL", "BLOCK_FOLDED"] as const),
        defaultKeyType: pick([null, "PLAIN", "QUOTE_DOUBLE"] as const),
      };
      const text = stringify(value(0), options) + (rand() < 0.3 ? `---\n${stringify(value(0), options)}` : "");
      if (!parsesCleanly(text)) continue;
      checked++;
      const real = realDepth(text);
      const scan = scanStructure(text);
      assert.ok(scan.depth <= real, `scan ${scan.depth} > real ${real} in\n${text}`);
    }
    assert.ok(checked > 1000, `only ${checked} documents checked`);
  });

  test("never counts deeper than the parser finds, over token soup the parser accepts", () => {
    const rand = seededRandom(5);
    const tokens = ["[", "]", "{", "}", ", ", ": ", ":", "- ", "? ", "\n", "\n  ", "\n    ", "a", "b c", "'q'", '"d"', "# c\n", "|\n", ">-\n", "&x ", "*x", "!t ", "---\n", "'", '"', "#", "\\"];
    let checked = 0;
    for (let i = 0; i < 50_000; i++) {
      const text = Array.from({ length: 1 + Math.floor(rand() * 14) }, () => tokens[Math.floor(rand() * tokens.length)]).join("");
      if (!parsesCleanly(text)) continue;
      checked++;
      const scan = scanStructure(text);
      assert.ok(scan.depth <= realDepth(text), `scan ${scan.depth} > real ${realDepth(text)} in ${JSON.stringify(text)}`);
    }
    assert.ok(checked > 1000, `only ${checked} texts checked`);
  });

  test("counts document markers, not document ends or markers inside text", () => {
    assert.equal(scanStructure("a: 1\n---\nb: 2\n...\n---\nc: 3\n").markers, 2);
    assert.equal(scanStructure("a: |\n  ---\n  text\n").markers, 0, "indented: text, not a marker");
    assert.equal(scanStructure("---\n".repeat(2000), Infinity, 1000).finding?.code, "too-many-documents");
    assert.equal(scanStructure("---\n".repeat(1000), Infinity, 1000).finding, undefined);
  });

  test("the example of a bomb is not deep: aliases are the parser's limit, not the scan's", () => {
    assert.equal(scanStructure(billionLaughs(), 32).finding, undefined);
  });

  test("positions of offsets are 1-based lines and columns", () => {
    assert.deepEqual(positionOfOffset("ab\ncd\nef", 0), { line: 1, column: 1 });
    assert.deepEqual(positionOfOffset("ab\ncd\nef", 4), { line: 2, column: 2 });
    assert.deepEqual(positionOfOffset("ab\ncd\nef", 6), { line: 3, column: 1 });
  });
});

describe("tooFewIndicatorsToExceed", () => {
  test("never lets a text past that the scan would have refused, over token soup and small limits", () => {
    const rand = seededRandom(21);
    const tokens = ["[", "]", "{", "}", ", ", ": ", "- ", "-", "? ", "?", "\n", "\n  ", "a", "'q'", '"d"', "# c\n", "|\n", "---\n", "---", "--- a\n", "...\n", "-\t", "- -"];
    let passed = 0;
    for (let i = 0; i < 50_000; i++) {
      const text = Array.from({ length: 1 + Math.floor(rand() * 20) }, () => tokens[Math.floor(rand() * tokens.length)]).join("");
      const [maxDepth, maxDocuments] = [1 + Math.floor(rand() * 4), Math.floor(rand() * 3)];
      if (!tooFewIndicatorsToExceed(text, maxDepth, maxDocuments)) continue;
      passed++;
      assert.equal(scanStructure(text, maxDepth, maxDocuments).finding, undefined, `${JSON.stringify(text)} with depth ${maxDepth}, documents ${maxDocuments}`);
    }
    assert.ok(passed > 5000, `only ${passed} texts passed`);
  });

  test("lets a manifest past, and not the costly shapes", () => {
    assert.ok(tooFewIndicatorsToExceed(`apiVersion: v\nkind: Agent\nmetadata: {name: a, labels: {team: t}}\nspec:\n  env: {A: "1"}\n`, 32, 1000));
    assert.ok(!tooFewIndicatorsToExceed("[".repeat(33), 32, 1000));
    assert.ok(!tooFewIndicatorsToExceed(compactNesting(100), 32, 1000));
    assert.ok(!tooFewIndicatorsToExceed("---\n".repeat(1001), 32, 1000));
  });
});
