import { lstat, readdir, readFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import type { ManifestError } from "./errors.ts";
import { DEFAULT_PARSE_LIMITS, parseManifestFile, type LoadedObject, type ParseLimits } from "./parse.ts";
import { buildSnapshot, type Snapshot } from "./snapshot.ts";

export interface LoadOptions {
  limits?: Partial<ParseLimits>;
  /** Refuse trees with more manifest files than this. */
  maxFiles?: number;
  /** Revision to stamp on the snapshot (a commit SHA); defaults to the content digest. */
  revision?: string;
}

const MANIFEST_FILE = /\.ya?ml$/i;

/**
 * Reads every `*.yaml`/`*.yml` file under `root` into a Snapshot. Hidden entries (`.git`, `.github`) are
 * skipped and symbolic links are not followed, so a manifest tree cannot reach files outside itself.
 */
export async function loadSnapshotFromDirectory(root: string, options: LoadOptions = {}): Promise<Snapshot> {
  const limits = { ...DEFAULT_PARSE_LIMITS, ...options.limits };
  const maxFiles = options.maxFiles ?? 20_000;
  const errors: ManifestError[] = [];
  const objects: LoadedObject[] = [];

  const rootStat = await lstat(root).catch(() => undefined);
  if (!rootStat?.isDirectory()) {
    const message = rootStat ? "is not a directory" : "does not exist";
    return buildSnapshot({ objects, files: [], errors: [{ code: "io", file: root, line: 1, column: 1, path: "", message }], ...revisionOf(options) });
  }

  const files = await listManifestFiles(root);
  if (files.length > maxFiles) {
    errors.push({ code: "too-many-files", file: ".", line: 1, column: 1, path: "", message: `${files.length} manifest files, over the limit of ${maxFiles}` });
    return buildSnapshot({ objects, errors, files: [], ...revisionOf(options) });
  }
  for (const file of files) {
    const absolute = join(root, file);
    const size = (await lstat(absolute)).size;
    if (size > limits.maxFileBytes) {
      errors.push({ code: "too-large", file, line: 1, column: 1, path: "", message: `file is ${size} bytes, over the limit of ${limits.maxFileBytes} bytes` });
      continue;
    }
    let bytes: Buffer;
    try {
      bytes = await readFile(absolute);
    } catch (error) {
      errors.push({ code: "io", file, line: 1, column: 1, path: "", message: `cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}` });
      continue;
    }
    const parsed = parseManifestFile(file, bytes, limits);
    objects.push(...parsed.objects);
    errors.push(...parsed.errors);
  }
  return buildSnapshot({ objects, errors, files, ...revisionOf(options) });
}

function revisionOf(options: LoadOptions): { revision?: string } {
  return options.revision ? { revision: options.revision } : {};
}

async function listManifestFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.name.startsWith(".")) continue;
      const absolute = join(dir, entry.name);
      if (entry.isDirectory()) pending.push(absolute);
      else if (entry.isFile() && MANIFEST_FILE.test(entry.name)) out.push(relative(root, absolute).split(sep).join("/"));
    }
  }
  return out.sort();
}
