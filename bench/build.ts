/** Ruriko as its image runs it: the `tsc` build of the tree as it is now, in a temporary directory. */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const REPO = join(import.meta.dirname, "..");

/** The entry point's V8 flags, as the image's ENTRYPOINT and `npm start` pass them. */
export const ENTRY_POINT_FLAGS = ["--max-semi-space-size=4"];

/** Builds into a new temporary directory (with the repository's node_modules linked) and returns it; the caller removes it. */
export function buildRuriko(): string {
  const out = mkdtempSync(join(tmpdir(), "ruriko-bench-build-"));
  const tsc = spawnSync(process.execPath, [join(REPO, "node_modules/typescript/bin/tsc"), "-p", join(REPO, "tsconfig.build.json"), "--outDir", out], { encoding: "utf8" });
  // tsc writes its output even when the tree has a type error; a missing entry point is what stops the bench.
  if (!existsSync(join(out, "src/cli/ruriko.js"))) throw new Error(`the build failed:\n${tsc.stdout}${tsc.stderr}`);
  if (tsc.status !== 0) console.warn(`build: tsc reported errors; measuring what it wrote\n${tsc.stdout.split("\n").slice(0, 5).join("\n")}`);
  symlinkSync(join(REPO, "node_modules"), join(out, "node_modules"));
  return out;
}
