import { isUtf8 } from "node:buffer";
import { CORE_SCHEMA, loadAll } from "js-yaml";
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from "yaml";
import { positionOfOffset, scanStructure, tooFewIndicatorsToExceed } from "./budget.ts";
import { digestOf } from "./digest.ts";
import { formatJsonPath, type ManifestError, type ManifestErrorCode, type SourcePosition } from "./errors.ts";
import { API_VERSION, isKind, KINDS, objectKey, type Kind, type ManifestObject, type ObjectKey } from "./kinds.ts";
import type { ObjectChecks } from "./references.ts";
import { fastValidatorFor, validatorFor, type SchemaError } from "./schemas.ts";
import { firstInvalidUtf8Offset, positionOfByteOffset } from "./utf8.ts";

/** One validated object and where it came from. */
export interface LoadedObject {
  key: ObjectKey;
  kind: Kind;
  name: string;
  /** Its content, defaults filled in. Read-only: of an object from a store (object-store.ts), each read may be a new copy. */
  object: ManifestObject;
  /** Digest of the object's content with defaults filled in (see digest.ts). */
  digest: string;
  source: ObjectSource;
  /** What the checks of this object alone found, when the loader ran them as it read it (references.ts). */
  checks?: ObjectChecks | undefined;
}

export interface ObjectSource {
  file: string;
  /**
   * Where a field (dotted path, e.g. `spec.gosuto`) or, without a path, the document starts. Only errors
   * need positions, so for documents that took the fast path they are computed on first use.
   */
  locate(path?: string): SourcePosition;
}

export interface ParseLimits {
  /** Files larger than this are refused unread. */
  maxFileBytes: number;
  /** Deeper nesting of mappings and sequences is refused. */
  maxDepth: number;
  /** Alias expansions per document; YAML "billion laughs" bombs blow far past it. */
  maxAliasCount: number;
  maxDocumentsPerFile: number;
  /** A file stops being checked after this many errors: each costs a position lookup, and a report to read. */
  maxErrorsPerFile: number;
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = {
  maxFileBytes: 1024 * 1024,
  maxDepth: 32,
  maxAliasCount: 100,
  maxDocumentsPerFile: 1000,
  maxErrorsPerFile: 100,
};

/**
 * Anchors and aliases send a file down the slow path, which counts alias expansions (the fast parser
 * would hand back a shared graph whose traversal an alias bomb makes exponential).
 */
const MAY_USE_ALIASES = /(^|[\s[{,:-])[&*][^\s,\]}"']/m;

export interface ParsedFile {
  objects: LoadedObject[];
  errors: ManifestError[];
}

/**
 * Parses and validates one manifest file. Pure: the caller reads the bytes. Every problem becomes a
 * ManifestError with a position; a document with errors yields no object, the others still do.
 */
export function parseManifestFile(file: string, bytes: Uint8Array, limits: ParseLimits = DEFAULT_PARSE_LIMITS): ParsedFile {
  const fileError = (code: ManifestErrorCode, message: string, at?: SourcePosition) => wholeFileError(file, code, message, at);
  if (bytes.length > limits.maxFileBytes) {
    return fileError("too-large", `file is ${bytes.length} bytes, over the limit of ${limits.maxFileBytes} bytes`);
  }
  const nul = bytes.indexOf(0);
  if (nul !== -1) return fileError("binary", "binary file (contains a NUL byte); manifests must be UTF-8 text", positionOfByteOffset(bytes, nul));
  // isUtf8 is native; the offset of the first invalid byte is looked for only when there is one.
  const invalid = isUtf8(bytes) ? -1 : firstInvalidUtf8Offset(bytes);
  if (invalid !== -1) return fileError("encoding", "invalid UTF-8; manifests must be UTF-8 text", positionOfByteOffset(bytes, invalid));

  const text = UTF8.decode(bytes);
  // Before any parser: what would make parsing cost far more than the file's size (budget.ts). Most files have
  // too few of the characters that nest to need the scan.
  if (!tooFewIndicatorsToExceed(text, limits.maxDepth, limits.maxDocumentsPerFile)) {
    const { finding } = scanStructure(text, limits.maxDepth, limits.maxDocumentsPerFile);
    if (finding?.code === "too-deep") return fileError("too-deep", tooDeep(limits), positionOfOffset(text, finding.offset));
    if (finding?.code === "too-many-documents") {
      return fileError("too-large", `file has more than ${limits.maxDocumentsPerFile} documents, over the limit`, positionOfOffset(text, finding.offset));
    }
  }
  return (!MAY_USE_ALIASES.test(text) && parseFast(file, text, bytes, limits)) || parseWithPositions(file, text, limits);
}

/** Decoding is stateless when not streamed: one decoder serves every file (a byte order mark is dropped). */
const UTF8 = new TextDecoder("utf-8", { ignoreBOM: false });

const tooDeep = (limits: ParseLimits) => `nesting is deeper than the limit of ${limits.maxDepth} levels`;

/**
 * The fast path: a plain parse (js-yaml, core schema), validation and digests, with no source positions. It gives up (returns undefined) on the first sign of any
 * problem, and the file is parsed again with positions so that every error can say where it is. Most files in
 * a healthy tree never need the slow path.
 */
function parseFast(file: string, text: string, bytes: Uint8Array, limits: ParseLimits): ParsedFile | undefined {
  let documents: unknown[];
  try {
    documents = loadAll(text, null, { schema: CORE_SCHEMA, json: false });
  } catch {
    return undefined;
  }
  if (documents.length > limits.maxDocumentsPerFile) return undefined;
  let positions: FilePositions | undefined;
  const objects: LoadedObject[] = [];
  for (const raw of documents) {
    if (raw === null || raw === undefined) continue;
    if (typeof raw !== "object" || Array.isArray(raw) || nestsDeeperThan(raw, limits.maxDepth)) return undefined;
    const value = raw as Record<string, unknown>;
    if (value.apiVersion !== API_VERSION || !isKind(value.kind)) return undefined;
    const kind = value.kind;
    if (!fastValidatorFor(kind)(value)) return undefined;
    const digest = digestOf(value);
    const object = value as unknown as ManifestObject;
    const name = object.metadata.name;
    positions ??= new FilePositions(file, bytes, limits);
    objects.push({ key: objectKey(kind, name), kind, name, object, digest, source: positions.sourceOf(kind, name) });
  }
  return { objects, errors: [] };
}

/**
 * Where things are in a file that took the fast path, found by parsing it again with positions on first use.
 * It keeps the file's bytes, outside the JavaScript heap, rather than its text.
 */
class FilePositions {
  private readonly file: string;
  private readonly bytes: Uint8Array;
  private readonly limits: ParseLimits;
  private locator: Locator | undefined;
  /** Objects of each key met so far in the file, for telling apart two with one key (a duplicate). */
  private seen: Map<string, number> | undefined;

  constructor(file: string, bytes: Uint8Array, limits: ParseLimits) {
    this.file = file;
    this.bytes = bytes;
    this.limits = limits;
  }

  locate(kind: string, name: string, occurrence: number, path?: string): SourcePosition {
    this.locator ??= positionLocator(this.file, UTF8.decode(this.bytes), this.limits);
    return this.locator(kind, name, occurrence, path);
  }

  /** The source of the next object of the file with this kind and name (the first, unless it is a duplicate). */
  sourceOf(kind: string, name: string): ObjectSource {
    const key = `${kind}/${name}`;
    const occurrence = this.seen?.get(key) ?? 0;
    (this.seen ??= new Map()).set(key, occurrence + 1);
    return this.sourceAt(kind, name, occurrence);
  }

  sourceAt(kind: string, name: string, occurrence: number): ObjectSource {
    return new DocumentSource(this.file, kind, name, occurrence, this);
  }
}

/** Where a field of the `occurrence`th object with a kind and name in a file is (the first is 0). */
type Locator = (kind: string, name: string, occurrence: number, path?: string) => SourcePosition;

/**
 * The sources of a file's objects, for objects made from it later (object-store.ts): they find positions by
 * parsing `bytes` again with positions, on first use.
 */
export function fileSources(limits: ParseLimits): (file: string, bytes: Uint8Array) => (kind: string, name: string, occurrence: number) => ObjectSource {
  return (file, bytes) => {
    const positions = new FilePositions(file, bytes, limits);
    return (kind, name, occurrence) => positions.sourceAt(kind, name, occurrence);
  };
}

/** One document's source in a file that took the fast path. */
class DocumentSource implements ObjectSource {
  readonly file: string;
  private readonly kind: string;
  private readonly name: string;
  private readonly occurrence: number;
  private readonly positions: FilePositions;

  constructor(file: string, kind: string, name: string, occurrence: number, positions: FilePositions) {
    this.file = file;
    this.kind = kind;
    this.name = name;
    this.occurrence = occurrence;
    this.positions = positions;
  }

  locate(path?: string): SourcePosition {
    return this.positions.locate(this.kind, this.name, this.occurrence, path);
  }
}

function wholeFileError(file: string, code: ManifestErrorCode, message: string, at: SourcePosition = { line: 1, column: 1 }): ParsedFile {
  return { objects: [], errors: [{ code, file, ...at, path: "", message }] };
}

/**
 * Whether a collection in `value` (the root one is level 1) is nested deeper than `levels`. Recursive, without
 * allocating: the parsers of the fast path refuse nesting past about 100 levels, so the stack stays shallow.
 */
function nestsDeeperThan(value: object, levels: number): boolean {
  if (levels === 0) return true;
  if (Array.isArray(value)) {
    for (const child of value) if (typeof child === "object" && child !== null && nestsDeeperThan(child, levels - 1)) return true;
  } else {
    for (const key in value) {
      const child = (value as Record<string, unknown>)[key];
      if (typeof child === "object" && child !== null && nestsDeeperThan(child, levels - 1)) return true;
    }
  }
  return false;
}

/**
 * Positions in a file whose objects were read without them (the fast path, or a store: object-store.ts), found
 * by parsing it once more with positions.
 */
function positionLocator(file: string, text: string, limits: ParseLimits): Locator {
  const parsed = parseWithPositions(file, text, limits);
  return (kind, name, occurrence, path) => {
    const found = parsed.objects.filter((o) => o.kind === kind && o.name === name)[occurrence];
    return found ? found.source.locate(path) : { line: 1, column: 1 };
  };
}

/** The slow path: a parse that keeps every node's position, for exact error locations. */
function parseWithPositions(file: string, text: string, limits: ParseLimits): ParsedFile {
  const fileError = (code: ManifestErrorCode, message: string, at?: SourcePosition) => wholeFileError(file, code, message, at);
  const lineCounter = new LineCounter();
  let documents: Document.Parsed[];
  try {
    // Duplicate keys are found by findTooDeepOrDuplicate: the parser's own check compares every key with every
    // other (60,000 keys took 23 s).
    documents = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: false }) as Document.Parsed[];
  } catch (error) {
    // The parser recurses on nesting; a pathological file can exhaust the stack before any depth check.
    if (error instanceof RangeError) return fileError("too-deep", tooDeep(limits));
    throw error;
  }
  if (!Array.isArray(documents)) documents = [documents];
  if (documents.length > limits.maxDocumentsPerFile) {
    return fileError("too-large", `file has ${documents.length} documents, over the limit of ${limits.maxDocumentsPerFile}`);
  }

  const result: ParsedFile = { objects: [], errors: [] };
  for (const doc of documents) {
    const parsed = parseDocument(file, doc, lineCounter, limits);
    if ("error" in parsed) for (const error of parsed.error) result.errors.push(error);
    else if (parsed.object) result.objects.push(parsed.object);
    if (result.errors.length > limits.maxErrorsPerFile) return capErrors(result, file, limits);
  }
  return result;
}

/** The first errors of a file, and one that says the rest were not looked for. */
function capErrors(result: ParsedFile, file: string, limits: ParseLimits): ParsedFile {
  const kept = result.errors.slice(0, limits.maxErrorsPerFile);
  const last = kept.at(-1)!;
  const stop: ManifestError = { code: "too-many-errors", file, line: last.line, column: last.column, path: "", message: `stopped checking this file after ${limits.maxErrorsPerFile} errors` };
  return { objects: result.objects, errors: [...kept, stop] };
}

function parseDocument(
  file: string,
  doc: Document.Parsed,
  lineCounter: LineCounter,
  limits: ParseLimits,
): { object?: LoadedObject } | { error: ManifestError[] } {
  const pos = (offset: number | undefined): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset ?? 0);
    return { line, column: col };
  };
  const fail = (code: ManifestErrorCode, message: string, at: SourcePosition, path = "", kind?: string, name?: string) => ({
    error: [{ code, file, ...at, path, message, ...(kind ? { kind } : {}), ...(name ? { name } : {}) }],
  });

  if (doc.errors.length > 0) {
    // The parser reports exhausting its stack on absurd nesting as a syntax error: call it what it is.
    const overflow = doc.errors.find((e) => /stack (size|overflow)/i.test(e.message));
    if (overflow) return fail("too-deep", tooDeep(limits), pos(overflow.pos[0]));
    return {
      // One more than the file may report, so that the file's report says it stopped.
      error: doc.errors.slice(0, limits.maxErrorsPerFile + 1).map((e) => ({
        code: "syntax" as const,
        file,
        ...pos(e.pos[0]),
        path: "",
        message: `YAML syntax error: ${firstLine(e.message)}`,
      })),
    };
  }
  const contents = doc.contents;
  const docStart = pos(contents?.range?.[0] ?? doc.range?.[0]);
  // An empty document (a stray `---`, a file of comments) declares nothing.
  if (contents === null || (isScalar(contents) && contents.value === null)) return {};
  if (!isMap(contents)) {
    return fail("not-a-mapping", "document must be a mapping with apiVersion, kind, metadata and spec", docStart);
  }
  const { deep, duplicates } = findTooDeepOrDuplicate(contents, limits.maxDepth);
  if (deep) return fail("too-deep", tooDeep(limits), pos(deep.range?.[0]));
  if (duplicates.length > 0) {
    return {
      error: duplicates.slice(0, limits.maxErrorsPerFile + 1).map((key) => ({ code: "syntax" as const, file, ...pos(key.range?.[0]), path: "", message: "YAML syntax error: Map keys must be unique" })),
    };
  }

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: limits.maxAliasCount });
  } catch (error) {
    if (error instanceof ReferenceError || (error instanceof Error && /alias/i.test(error.message))) {
      return fail("alias-limit", `too many alias expansions (limit ${limits.maxAliasCount}); refusing a possible alias bomb`, docStart);
    }
    throw error;
  }
  const raw = value as Record<string, unknown>;
  const rawKind = raw.kind;
  const metadata = raw.metadata;
  const rawName =
    metadata && typeof metadata === "object" && typeof (metadata as Record<string, unknown>).name === "string"
      ? ((metadata as Record<string, unknown>).name as string)
      : undefined;
  const kindLabel = typeof rawKind === "string" ? rawKind : undefined;

  if (raw.apiVersion !== API_VERSION) {
    const at = locate(contents, ["apiVersion"]);
    const message =
      raw.apiVersion === undefined
        ? `is required (${API_VERSION})`
        : `unknown apiVersion ${JSON.stringify(raw.apiVersion)}; expected ${API_VERSION}`;
    return fail("unknown-api-version", message, at === undefined ? docStart : pos(at), "apiVersion", kindLabel, rawName);
  }
  if (!isKind(rawKind)) {
    const at = locate(contents, ["kind"]);
    const message =
      rawKind === undefined ? `is required (one of ${KINDS.join(", ")})` : `unknown kind ${JSON.stringify(rawKind)}; expected one of ${KINDS.join(", ")}`;
    return fail("unknown-kind", message, at === undefined ? docStart : pos(at), "kind", kindLabel, rawName);
  }

  const validate = validatorFor(rawKind);
  if (!validate(raw)) {
    const schemaErrors = (validate.errors ?? []).slice(0, limits.maxErrorsPerFile + 1);
    return { error: schemaErrorsToManifestErrors(schemaErrors, raw, contents, file, rawKind, rawName, pos, docStart) };
  }
  const object = raw as unknown as ManifestObject;
  const name = object.metadata.name;
  const source: ObjectSource = {
    file,
    locate: (path) => {
      if (!path) return docStart;
      const at = locate(contents, path.split("."));
      return at === undefined ? docStart : pos(at);
    },
  };
  return { object: { key: objectKey(rawKind, name), kind: rawKind, name, object, digest: digestOf(object), source } };
}

function firstLine(message: string): string {
  return message.split("\n")[0]!.trim();
}

/**
 * The first node nested deeper than `maxDepth`, and else the keys that repeat one before them in their
 * mapping (scalar keys, compared by value, as the parser's own check does). Iterative, so that a hostile
 * document cannot overflow the stack here; linear, with a set of keys per mapping.
 */
function findTooDeepOrDuplicate(root: Node, maxDepth: number): { deep?: Node; duplicates: Node[] } {
  const duplicates: Node[] = [];
  const stack: Array<[Node, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > maxDepth) return { deep: node, duplicates };
    if (isMap(node)) {
      const keys = new Set<unknown>();
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        if (isScalar(pair.key)) {
          if (keys.has(pair.key.value)) duplicates.push(pair.key);
          keys.add(pair.key.value);
        }
        if (pair.value && !isAlias(pair.value)) stack.push([pair.value as Node, depth + 1]);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) if (item && !isAlias(item)) stack.push([item as Node, depth + 1]);
    }
  }
  // In the order of the text, as the parser reported them.
  return { duplicates: duplicates.sort((a, b) => (a.range?.[0] ?? 0) - (b.range?.[0] ?? 0)) };
}

/**
 * Offset of the node at `path`: of the key for a mapping member (where a reader's eye goes), of the item
 * for a sequence element. When the path runs out early, the offset of the deepest node that exists.
 */
function locate(root: Node, path: ReadonlyArray<string | number>): number | undefined {
  let node: Node | null | undefined = root;
  let offset = root.range?.[0];
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) return offset;
      offset = (pair.key as Node).range?.[0] ?? offset;
      node = pair.value as Node | null;
    } else if (isSeq(node)) {
      const item = node.items[Number(segment)] as Node | undefined;
      if (!item) return offset;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      return offset;
    }
  }
  return offset;
}

function pointerToSegments(pointer: string, root: unknown): Array<string | number> {
  if (!pointer) return [];
  const segments: Array<string | number> = [];
  let current: unknown = root;
  for (const rawSegment of pointer.slice(1).split("/")) {
    const segment = rawSegment.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(current)) {
      segments.push(Number(segment));
      current = current[Number(segment)];
    } else {
      segments.push(segment);
      current = current && typeof current === "object" ? (current as Record<string, unknown>)[segment] : undefined;
    }
  }
  return segments;
}

/** Keywords that only say "a sub-schema failed"; the sub-schema's own errors say what is wrong. */
const WRAPPER_KEYWORDS = new Set(["if", "then", "else", "allOf", "anyOf", "oneOf", "not", "$ref"]);

function schemaErrorsToManifestErrors(
  schemaErrors: SchemaError[],
  raw: unknown,
  contents: Node,
  file: string,
  kind: Kind,
  name: string | undefined,
  pos: (offset: number | undefined) => SourcePosition,
  docStart: SourcePosition,
): ManifestError[] {
  const hasSpecific = schemaErrors.some((e) => !WRAPPER_KEYWORDS.has(e.keyword));
  // Where a schema gives its own message for a value, and one it refers to does too, the outer one (reported
  // last) speaks for both: one mistake, one message.
  const customAt = new Map<string, SchemaError>();
  for (const e of schemaErrors) if (e.keyword === "errorMessage") customAt.set(e.instancePath, e);
  const seen = new Set<string>();
  const errors: ManifestError[] = [];
  for (const e of schemaErrors) {
    if (hasSpecific && WRAPPER_KEYWORDS.has(e.keyword)) continue;
    if (e.keyword === "errorMessage" && customAt.get(e.instancePath) !== e) continue;
    const segments = pointerToSegments(e.instancePath, raw);
    let message = e.message ?? "is invalid";
    let target = segments;
    switch (e.keyword) {
      case "required":
        target = [...segments, (e.params as { missingProperty: string }).missingProperty];
        message = "is required";
        break;
      case "additionalProperties": {
        target = [...segments, (e.params as { additionalProperty: string }).additionalProperty];
        const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
        message = allowed.length > 0 ? `unknown field; expected one of ${allowed.join(", ")}` : "unknown field";
        break;
      }
      case "enum":
        message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(", ")}`;
        break;
      case "const":
        message = `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
        break;
      case "type": {
        const type = String((e.params as { type: string }).type);
        message = `must be ${/^[aeiou]/.test(type) ? "an" : "a"} ${type.replace(",", " or ")}`;
        break;
      }
      case "pattern":
        message = `must match the pattern ${(e.params as { pattern: string }).pattern}`;
        break;
    }
    const path = formatJsonPath(target);
    const dedupeKey = `${path}\0${message}`;
    if (seen.has(dedupeKey)) continue;
    seen.add(dedupeKey);
    const at = e.keyword === "required" ? locate(contents, segments) : locate(contents, target);
    errors.push({
      code: "schema",
      file,
      ...(at === undefined ? docStart : pos(at)),
      kind,
      ...(name ? { name } : {}),
      path,
      message,
    });
  }
  return errors;
}
