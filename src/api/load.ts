import { readFileSync, statSync } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { sha256 } from "./digest.ts";
import type { ManifestError } from "./errors.ts";
import { DEFAULT_PARSE_LIMITS, parseManifestFile, type LoadedObject, type ParsedFile, type ParseLimits } from "./parse.ts";
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
  // Synchronous reads: for many small files they cost a fraction of promise-based I/O, and a snapshot is
  // read rarely (a change, a commit), not on a hot path.
  const fileDigests = new Map<string, string>();
  for (const file of files) {
    const result = readAndParse(root, file, limits);
    objects.push(...result.objects);
    errors.push(...result.errors);
    if (result.digest) fileDigests.set(file, result.digest);
  }
  return buildSnapshot({ objects, errors, files, fileDigests, ...revisionOf(options) });
}

function readAndParse(root: string, file: string, limits: ParseLimits): ParsedFile & { digest?: string } {
  const fileError = (code: ManifestError["code"], message: string): ParsedFile => ({ objects: [], errors: [{ code, file, line: 1, column: 1, path: "", message }] });
  try {
    const path = join(root, file);
    const { size } = statSync(path);
    if (size > limits.maxFileBytes) return fileError("too-large", `file is ${size} bytes, over the limit of ${limits.maxFileBytes} bytes`);
    const bytes = readFileSync(path);
    return { ...parseManifestFile(file, bytes, limits), digest: sha256(bytes) };
  } catch (error) {
    return fileError("io", `cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
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
