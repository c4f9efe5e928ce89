/**
 * What the loader keeps of a tree until it is all read, outside the JavaScript heap: each file's path, digest
 * and (if it holds objects) bytes, and each validated object as its JSON text with its name and digest. The
 * snapshot's objects are made from it at the end, and each parses its text when it is read.
 *
 * Why not keep the objects themselves: 10,000 agents are 20,000 objects, 45 MB of small JavaScript objects.
 * Made one by one while a hundred times their size in garbage goes by (parsing, validating, digesting), each is
 * copied by a young-generation collection or two, and V8 answers what survives by growing its young generation,
 * to 128 MB that the process keeps. Bytes in buffers are never copied by a collection and cost their size:
 * about 500 bytes an object, and each object here is a few fields (StoredObject).
 */
import type { ManifestError, SourcePosition } from "./errors.ts";
import { KINDS, type Kind, type ManifestObject, type ObjectKey } from "./kinds.ts";
import type { LoadedObject, ObjectSource } from "./parse.ts";
import type { ObjectChecks } from "./references.ts";

const CHUNK_BYTES = 1024 * 1024;
/** `sha256:` and 64 hex digits. */
const DIGEST_BYTES = 71;

/** What a store holds, as plain data and buffers that can be transferred to another thread. */
export interface StoredTree {
  chunks: ArrayBuffer[];
  /** Per file: chunk, start, end; its digest, then its bytes if it holds objects. */
  fileIndex: Int32Array;
  files: string[];
  /** Per object: chunk, start, end of its header, end of its JSON. */
  objectIndex: Int32Array;
  /** Checks of single objects that found something, by object number: a healthy tree has none. */
  checks: Array<[number, ObjectChecks]>;
}

export class ObjectStore {
  private readonly chunks: Buffer[] = [];
  private current = -1;
  private used = 0;
  private readonly files: string[] = [];
  private readonly fileIndex = new IntColumn(3);
  private readonly objectIndex = new IntColumn(4);
  private readonly checks: Array<[number, ObjectChecks]> = [];
  /** Objects of each key in the file added last (two with one key are an error, and their positions differ). */
  private readonly keysInFile = new Map<string, number>();

  /** A file read; its bytes are kept (copied) when objects of it follow, for finding their positions. */
  addFile(path: string, digest: string, bytes: Uint8Array | undefined): void {
    this.keysInFile.clear();
    const [chunk, start] = this.room(DIGEST_BYTES + (bytes?.length ?? 0));
    const buffer = this.chunks[chunk]!;
    buffer.write(digest, start, "latin1");
    if (bytes) buffer.set(bytes, start + DIGEST_BYTES);
    this.files.push(path);
    this.fileIndex.push(chunk, start, start + DIGEST_BYTES + (bytes?.length ?? 0));
  }

  /** An object of the file added last, with what the checks of it alone found (references.ts). */
  add(object: LoadedObject, checks: ObjectChecks): void {
    const occurrence = this.keysInFile.get(object.key) ?? 0;
    this.keysInFile.set(object.key, occurrence + 1);
    const header = JSON.stringify([this.files.length - 1, object.key, object.digest, checks.references ?? null, occurrence]);
    const json = JSON.stringify(object.object);
    // Room for the longest UTF-8 the text can be (3 bytes per UTF-16 unit), rather than measuring it first.
    const longest = 3 * (header.length + json.length);
    const [chunk, start] = longest > CHUNK_BYTES / 4 ? this.room(Buffer.byteLength(header) + Buffer.byteLength(json)) : this.room(longest);
    const buffer = this.chunks[chunk]!;
    const headerEnd = start + buffer.write(header, start);
    const end = headerEnd + buffer.write(json, headerEnd);
    if (chunk === this.current) this.used = end;
    if (checks.errors.length > 0 || checks.warnings.length > 0) this.checks.push([this.objectIndex.length, checks]);
    this.objectIndex.push(chunk, start, headerEnd, end);
  }

  /** The store's content. The chunks are not copied: transferring them to another thread empties this store. */
  contents(): StoredTree {
    return {
      chunks: this.chunks.map((c) => c.buffer as ArrayBuffer),
      fileIndex: this.fileIndex.values(),
      files: this.files,
      objectIndex: this.objectIndex.values(),
      checks: this.checks,
    };
  }

  /** A chunk and where in it `length` bytes go: the current chunk, a new one, or one of their own if large. */
  private room(length: number): [number, number] {
    if (length > CHUNK_BYTES / 4) {
      this.chunks.push(Buffer.allocUnsafeSlow(length));
      return [this.chunks.length - 1, 0];
    }
    if (this.current === -1 || this.used + length > CHUNK_BYTES) {
      this.chunks.push(Buffer.allocUnsafeSlow(CHUNK_BYTES));
      this.current = this.chunks.length - 1;
      this.used = 0;
    }
    const start = this.used;
    this.used += length;
    return [this.current, start];
  }
}

/** Rows of `width` integers, in a typed array that grows by doubling. */
class IntColumn {
  private readonly width: number;
  private data: Int32Array;
  /** Rows pushed. */
  length = 0;

  constructor(width: number) {
    this.width = width;
    this.data = new Int32Array(width * 256);
  }

  /** A row; numbers past `width` are ignored. */
  push(a: number, b: number, c: number, d = 0): void {
    if ((this.length + 1) * this.width > this.data.length) {
      const larger = new Int32Array(this.data.length * 2);
      larger.set(this.data);
      this.data = larger;
    }
    const at = this.length * this.width;
    this.data[at] = a;
    this.data[at + 1] = b;
    this.data[at + 2] = c;
    if (this.width > 3) this.data[at + 3] = d;
    this.length++;
  }

  values(): Int32Array {
    return this.data.slice(0, this.length * this.width);
  }
}

/** Makes the sources of one file's objects from its path and bytes (parse.ts: fileSources). */
export type SourcesOfFile = (file: string, bytes: Uint8Array) => (kind: Kind, name: string, occurrence: number) => ObjectSource;

/** Each file's digest, by path. */
export function fileDigestsOf(stored: StoredTree): Map<string, string> {
  const chunks = stored.chunks.map((c) => Buffer.from(c));
  const digests = new Map<string, string>();
  for (let file = 0; file < stored.files.length; file++) {
    const [chunk, start] = [stored.fileIndex[file * 3]!, stored.fileIndex[file * 3 + 1]!];
    digests.set(stored.files[file]!, chunks[chunk]!.toString("latin1", start, start + DIGEST_BYTES));
  }
  return digests;
}

/**
 * The objects of a store, on the thread that filled it or another, in the order they were added. Each holds
 * little besides its key, name and digest (object-store.ts says why): its source, its checks and its content
 * are made when read.
 */
export function objectsOf(stored: StoredTree, sourcesOfFile: SourcesOfFile): LoadedObject[] {
  const files = new StoredFiles(stored, sourcesOfFile);
  const checks = new Map(stored.checks);
  const out: LoadedObject[] = [];
  const index = stored.objectIndex;
  for (let at = 0; at < index.length; at += 4) {
    const chunk = files.chunks[index[at]!]!;
    const [start, headerEnd, end] = [index[at + 1]!, index[at + 2]!, index[at + 3]!];
    const [file, key, digest, references, occurrence] = JSON.parse(chunk.toString("utf8", start, headerEnd)) as [number, ObjectKey, string, string | null, number];
    out.push(new StoredObject(key, digest, { files, file, occurrence }, { buffer: chunk, start: headerEnd, end }, checks.get(at / 4) ?? references ?? undefined));
  }
  return out;
}

/** The files of a store: their paths, and the sources of their objects, made on first use and kept per file. */
class StoredFiles {
  readonly chunks: Buffer[];
  private readonly stored: StoredTree;
  private readonly sourcesOfFile: SourcesOfFile;
  private readonly sources = new Map<number, (kind: Kind, name: string, occurrence: number) => ObjectSource>();

  constructor(stored: StoredTree, sourcesOfFile: SourcesOfFile) {
    this.stored = stored;
    this.sourcesOfFile = sourcesOfFile;
    this.chunks = stored.chunks.map((c) => Buffer.from(c));
  }

  path(file: number): string {
    return this.stored.files[file]!;
  }

  /** Where in `file` a field of an object is (ObjectSource.locate): the file's positions are found on first use. */
  locate(file: number, kind: Kind, name: string, occurrence: number, path?: string): SourcePosition {
    let sources = this.sources.get(file);
    if (!sources) {
      const [chunk, start, end] = [this.stored.fileIndex[file * 3]!, this.stored.fileIndex[file * 3 + 1]!, this.stored.fileIndex[file * 3 + 2]!];
      sources = this.sourcesOfFile(this.path(file), this.chunks[chunk]!.subarray(start + DIGEST_BYTES, end));
      this.sources.set(file, sources);
    }
    return sources(kind, name, occurrence).locate(path);
  }
}

const NONE: readonly ManifestError[] = Object.freeze([]);
const NOTHING_FOUND: ObjectChecks = { errors: NONE, warnings: NONE };

/** The one string of each kind, rather than a copy per object. */
const KINDS_BY_NAME = new Map<string, Kind>(KINDS.map((kind) => [kind, kind]));

/**
 * An object whose content is JSON text in a store. Reading `object` parses it; the few read last are kept, so
 * that reading one field after another of an object parses it once. Treat what it gives as read-only: a later
 * read may be a fresh copy.
 */
export class StoredObject implements LoadedObject {
  readonly key: ObjectKey;
  readonly kind: Kind;
  readonly name: string;
  readonly digest: string;
  /** Its file, and which one of the objects with its key in that file it is (a duplicate is not the first). */
  private readonly files: StoredFiles;
  private readonly file: number;
  private readonly occurrence: number;
  /** Where its JSON text is. */
  private readonly buffer: Buffer;
  private readonly start: number;
  private readonly end: number;
  /** What the checks of this object alone found while it was loaded, or only the name it refers to. */
  private readonly found: ObjectChecks | string | undefined;

  constructor(
    key: ObjectKey,
    digest: string,
    where: { files: StoredFiles; file: number; occurrence: number },
    text: { buffer: Buffer; start: number; end: number },
    found: ObjectChecks | string | undefined,
  ) {
    const slash = key.indexOf("/");
    const kind = KINDS_BY_NAME.get(key.slice(0, slash));
    if (!kind) throw new Error(`stored object ${key} has no kind`);
    this.key = key;
    this.kind = kind;
    this.name = key.slice(slash + 1);
    this.digest = digest;
    this.files = where.files;
    this.file = where.file;
    this.occurrence = where.occurrence;
    this.buffer = text.buffer;
    this.start = text.start;
    this.end = text.end;
    this.found = found;
  }

  /** Made on each read: a snapshot's objects are many, and most are never asked where they are. */
  get source(): ObjectSource {
    const { files, file, kind, name, occurrence } = this;
    return { file: files.path(file), locate: (path) => files.locate(file, kind, name, occurrence, path) };
  }

  get checks(): ObjectChecks {
    if (typeof this.found === "string") return { references: this.found, errors: NONE, warnings: NONE };
    return this.found ?? NOTHING_FOUND;
  }

  get object(): ManifestObject {
    return recentlyRead.get(this) ?? recentlyRead.add(this, JSON.parse(this.buffer.toString("utf8", this.start, this.end)) as ManifestObject);
  }
}

/**
 * The objects read last, at most `size`: enough for the fields of one agent read one at a time, few enough that
 * they die young. A ring, so that keeping them costs no allocation.
 */
class RecentlyRead {
  private readonly stored: Array<StoredObject | undefined>;
  private readonly objects: Array<ManifestObject | undefined>;
  private next = 0;

  constructor(size: number) {
    this.stored = new Array<StoredObject | undefined>(size).fill(undefined);
    this.objects = new Array<ManifestObject | undefined>(size).fill(undefined);
  }

  get(stored: StoredObject): ManifestObject | undefined {
    for (let i = 0; i < this.stored.length; i++) if (this.stored[i] === stored) return this.objects[i];
    return undefined;
  }

  add(stored: StoredObject, object: ManifestObject): ManifestObject {
    this.stored[this.next] = stored;
    this.objects[this.next] = object;
    this.next = (this.next + 1) % this.stored.length;
    return object;
  }
}

const recentlyRead = new RecentlyRead(8);
