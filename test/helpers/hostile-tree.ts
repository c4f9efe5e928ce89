/**
 * The hostile manifest tree of issue 13 (items 4 and 5), for the integration test and bench/hostile-tree.ts:
 * files that cost a YAML parser far more than their size, each within the per-file size limit.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const MIB = 1024 * 1024;

/** The classic "billion laughs": nine levels of nine aliases, 9^9 strings once expanded. */
export function billionLaughs(name = "laughs"): string {
  const levels = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"];
  for (let i = 1; i < 9; i++) levels.push(`l${i}: &l${i} [${Array(9).fill(`*l${i - 1}`).join(", ")}]`);
  return `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata:\n  name: ${name}\nspec:\n  instructions:\n${levels.map((l) => `    ${l}`).join("\n")}\n`;
}

/** One line of compact block sequences (`- - - …`): nesting a parser can only find by building it. */
export function compactNesting(bytes = MIB): string {
  return "- ".repeat(Math.floor(bytes / 2));
}

/**
 * Writes the tree under `dir/sub`: `brackets` files of exactly 1 MiB of `[` (the largest file allowed), a
 * deep-nesting file and a billion-laughs file. Returns the paths written, relative to `dir`.
 */
export function writeHostileTree(dir: string, sub: string, brackets = 20): string[] {
  mkdirSync(join(dir, sub), { recursive: true });
  const files: Record<string, string> = { [`${sub}/deep.yaml`]: compactNesting(), [`${sub}/laughs.yaml`]: billionLaughs() };
  for (let i = 0; i < brackets; i++) files[`${sub}/brackets-${String(i).padStart(2, "0")}.yaml`] = "[".repeat(MIB);
  for (const [path, text] of Object.entries(files)) writeFileSync(join(dir, path), text);
  return Object.keys(files);
}
