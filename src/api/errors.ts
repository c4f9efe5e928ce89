/**
 * Manifest errors are values, not exceptions: the loader collects every problem in a tree so that
 * `ruriko validate` and the controller can report all of them at once, each pointing at a place a
 * user can open in an editor.
 */
export interface SourcePosition {
  /** 1-based line. */
  line: number;
  /** 1-based column. */
  column: number;
}

export type ManifestErrorCode =
  | "io"
  | "too-large"
  | "binary"
  | "encoding"
  | "syntax"
  | "alias-limit"
  | "too-deep"
  | "not-a-mapping"
  | "unknown-api-version"
  | "unknown-kind"
  | "schema"
  | "duplicate"
  | "missing-reference"
  | "conflict"
  | "too-many-files"
  /** More errors than a file or a tree reports: the rest were not looked for (budget.ts). */
  | "too-many-errors"
  /** A warning, not an error: a field that is still accepted but ignored. */
  | "deprecated"
  /** A warning, not an error: a symbolic link in the tree, not followed. */
  | "symlink";

export interface ManifestError extends SourcePosition {
  code: ManifestErrorCode;
  /** Path relative to the manifest root, with forward slashes. */
  file: string;
  kind?: string;
  name?: string;
  /** Dotted JSON path inside the object, e.g. `spec.resources.memory`; empty for whole-document errors. */
  path: string;
  message: string;
}

/** `agents/newsbot.yaml:12:5: Agent/newsbot: spec.resources.memory: must match a size like 512Mi` */
export function formatManifestError(error: ManifestError): string {
  const parts = [`${error.file}:${error.line}:${error.column}`];
  if (error.kind || error.name) parts.push(`${error.kind ?? "?"}/${error.name ?? "?"}`);
  if (error.path) parts.push(error.path);
  parts.push(error.message);
  return parts.join(": ");
}

/** Orders errors the way a reader scans a tree: by file, then line, then column. */
export function compareManifestErrors(a: ManifestError, b: ManifestError): number {
  return a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column;
}

/** Renders a JSON path as users write it: `spec.capabilities[2].tool`. */
export function formatJsonPath(segments: ReadonlyArray<string | number>): string {
  let out = "";
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}
