import { closeSync, lstatSync, openSync, readSync } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { DEFAULT_TREE_LIMITS, type TreeLimits } from "./budget.ts";
import { sha256 } from "./digest.ts";
import type { ManifestError, ManifestErrorCode } from "./errors.ts";
import { fileDigestsOf, ObjectStore, objectsOf, type StoredTree } from "./object-store.ts";
import { DEFAULT_PARSE_LIMITS, fileSources, parseManifestFile, type ParsedFile, type ParseLimits } from "./parse.ts";
import { checkObject } from "./references.ts";
import { buildSnapshot, type Snapshot } from "./snapshot.ts";

export type LoadLimits = ParseLimits & TreeLimits;

export const DEFAULT_LOAD_LIMITS: LoadLimits = { ...DEFAULT_PARSE_LIMITS, ...DEFAULT_TREE_LIMITS };

export interface LoadOptions {
  /** Per file and for the whole tree; plain data, so that the options can go to a worker thread. */
  limits?: Partial<LoadLimits>;
  /** Revision to stamp on the snapshot (a commit SHA); defaults to the content digest. */
  revision?: string;
}

/** A tree as read: the snapshot, and the store its objects are in (load-off-thread.ts transfers it). */
export interface LoadedTree {
  snapshot: Snapshot;
  stored: StoredTree | undefined;
}

const MANIFEST_FILE = /\.ya?ml$/i;

/**
 * Reads every `*.yaml`/`*.yml` file under `root` into a Snapshot. Hidden entries (`.git`, `.github`) are
 * skipped and symbolic links are not followed (each is a warning), so a manifest tree cannot reach files
 * outside itself. Within the limits (budget.ts): too many files, or too many bytes in all, and nothing is
 * read; a file over its own limits is refused with an error naming it; past the error limit the remaining
 * files are not checked. Synchronous parsing: `serve` calls this on a worker thread (load-off-thread.ts).
 */
export async function loadSnapshotFromDirectory(root: string, options: LoadOptions = {}): Promise<Snapshot> {
  return (await readManifestTree(root, options)).snapshot;
}

/** The same, with the store its objects are in (the worker thread transfers it). */
export async function readManifestTree(root: string, options: LoadOptions = {}): Promise<LoadedTree> {
  const limits = { ...DEFAULT_LOAD_LIMITS, ...options.limits };
  const revision = options.revision ? { revision: options.revision } : {};
  const refuse = (file: string, code: ManifestErrorCode, message: string, warnings: ManifestError[] = []): LoadedTree => ({
    snapshot: buildSnapshot({ objects: [], files: [], errors: [treeError(file, code, message)], warnings, ...revision }),
    stored: undefined,
  });

  const rootStat = await lstat(root).catch(() => undefined);
  if (!rootStat?.isDirectory()) return refuse(root, "io", rootStat ? "is not a directory" : "does not exist");

  const { files, symlinks } = await listManifestFiles(root);
  const warnings = symlinks.map((file) => treeError(file, "symlink", "symbolic link, not followed: what it points to is not read"));
  if (files.length > limits.maxFiles) return refuse(".", "too-many-files", `${files.length} manifest files, over the limit of ${limits.maxFiles}`, warnings);
  const overBudget = totalBytesError(files, limits);
  if (overBudget) return refuse(".", "too-large", overBudget, warnings);

  const errors: ManifestError[] = [];
  // Objects go to the store as they are validated (object-store.ts says why), and come back at the end.
  const store = new ObjectStore();
  let bytesRead = 0;
  for (const [index, listed] of files.entries()) {
    if (errors.length >= limits.maxErrors) {
      errors.push(treeError(".", "too-many-errors", `stopped after ${errors.length} errors; ${files.length - index} more files not checked`));
      break;
    }
    const file = listed.path;
    const result = readAndParse(root, listed, limits);
    for (const error of result.errors) errors.push(error);
    if (!result.bytes) continue;
    store.addFile(file, sha256(result.bytes), result.objects.length > 0 ? result.bytes : undefined);
    for (const object of result.objects) store.add(object, checkObject(object));
    // Sizes were added up before reading; a file that grew since then is caught here.
    bytesRead += result.bytes.length;
    if (bytesRead > limits.maxTotalBytes) return refuse(".", "too-large", `manifest files add up to more than the limit of ${limits.maxTotalBytes} bytes`, warnings);
  }
  const stored = store.contents();
  const objects = objectsOf(stored, fileSources(limits));
  return { snapshot: buildSnapshot({ objects, errors, warnings, files: files.map((f) => f.path), fileDigests: fileDigestsOf(stored), ...revision }), stored };
}

function treeError(file: string, code: ManifestErrorCode, message: string): ManifestError {
  return { code, file, line: 1, column: 1, path: "", message };
}

/** The files that will be read (those within the per-file limit) add up to more than the tree may hold. */
function totalBytesError(files: ReadonlyArray<{ path: string; size: number }>, limits: LoadLimits): string | undefined {
  const readable = files.filter((f) => f.size <= limits.maxFileBytes);
  const total = readable.reduce((sum, f) => sum + f.size, 0);
  if (total <= limits.maxTotalBytes) return undefined;
  const largest = [...readable].sort((a, b) => b.size - a.size).slice(0, 3).map((f) => `${f.path} ${f.size}`);
  return `manifest files add up to ${total} bytes, over the limit of ${limits.maxTotalBytes} bytes (largest: ${largest.join(", ")}); nothing was read`;
}

function readAndParse(root: string, listed: { path: string; size: number }, limits: ParseLimits): ParsedFile & { bytes?: Uint8Array } {
  const file = listed.path;
  const fileError = (code: ManifestErrorCode, message: string): ParsedFile => ({ objects: [], errors: [treeError(file, code, message)] });
  const overLimit = (size: number | string) => fileError("too-large", `file is ${size} bytes, over the limit of ${limits.maxFileBytes} bytes`);
  if (listed.size > limits.maxFileBytes) return overLimit(listed.size);
  let bytes: Uint8Array;
  try {
    bytes = readAtMost(join(root, file), listed.size, limits.maxFileBytes + 1);
  } catch (error) {
    return fileError("io", `cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  if (bytes.length > limits.maxFileBytes) return overLimit(`more than ${limits.maxFileBytes}`);
  return { ...parseManifestFile(file, bytes, limits), bytes };
}

/**
 * Reads a file listed at `expected` bytes, but never more than `max` bytes of it: reading must not trust
 * that it kept its size. Synchronous: for many small files it costs a fraction of promise-based I/O.
 */
function readAtMost(path: string, expected: number, max: number): Uint8Array {
  const fd = openSync(path, "r");
  try {
    // One byte more than expected tells a file that grew; it then gets room up to `max`.
    let buffer = new Uint8Array(Math.min(expected + 1, max));
    let length = 0;
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length === buffer.length && buffer.length < max) {
        const larger = new Uint8Array(max);
        larger.set(buffer);
        buffer = larger;
      }
    }
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/** Manifest files with their sizes, and the symbolic links met on the way (not followed), sorted. */
async function listManifestFiles(root: string): Promise<{ files: Array<{ path: string; size: number }>; symlinks: string[] }> {
  const files: Array<{ path: string; size: number }> = [];
  const symlinks: string[] = [];
  // Each directory with its path relative to the root, forward slashes (path.relative per file costs more).
  const pending: Array<[string, string]> = [[root, ""]];
  while (pending.length > 0) {
    const [dir, prefix] = pending.pop()!;
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.name.startsWith(".")) continue;
      const absolute = join(dir, entry.name);
      const path = `${prefix}${entry.name}`;
      if (entry.isSymbolicLink()) symlinks.push(path);
      else if (entry.isDirectory()) pending.push([absolute, `${path}/`]);
      else if (entry.isFile() && MANIFEST_FILE.test(entry.name)) files.push({ path, size: lstatSync(absolute).size });
    }
  }
  const byPath = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return { files: files.sort((a, b) => byPath(a.path, b.path)), symlinks: symlinks.sort(byPath) };
}
