/**
 * What one manifest tree may cost to read. A YAML parser's cost is not proportional to its input: 1 MiB of
 * `[` made the position-keeping parser build a million nested collections (2 s, 1 GB) before any depth check
 * could run. So the limits that bound the cost are checked on the bytes and the text before the parser sees
 * them: sizes and counts in load.ts, nesting and documents here, in one pass over the characters. Pure.
 */

/** Limits of a whole tree; the per-file ones are ParseLimits (parse.ts). */
export interface TreeLimits {
  /** Refuse trees with more manifest files than this. */
  maxFiles: number;
  /** Refuse trees whose manifest files add up to more bytes than this, before reading any of them. */
  maxTotalBytes: number;
  /** Stop checking files once this many errors are found: the revision is refused anyway. */
  maxErrors: number;
}

export const DEFAULT_TREE_LIMITS: TreeLimits = {
  maxFiles: 20_000,
  maxTotalBytes: 64 * 1024 * 1024,
  maxErrors: 1000,
};

/** A structure the scan proves too costly, at the character where it proved it. */
export interface StructureFinding {
  code: "too-deep" | "too-many-documents";
  /** Character offset in the text. */
  offset: number;
}

export interface StructureScan {
  /** A lower bound of the deepest nesting (the root collection is 1), up to the first finding. */
  depth: number;
  /** `---` markers seen, up to the first finding: each starts a document. */
  markers: number;
  finding?: StructureFinding;
}

/**
 * Scans YAML text for nesting deeper than `maxDepth` and more than `maxDocuments` `---` markers, stopping at
 * the first. Linear, and allocates nothing per character.
 *
 * The depth it counts is a lower bound of the real one, so it never refuses a file that nests less than the
 * limit: it counts only the collections it is sure of — flow collections (`[`, `{`), and the block sequences
 * and explicit keys opened on one line (`- - - x`, `? ? x`) — and skips what it can judge without a parser:
 * comments, quoted scalars, block scalars (`|`, `>`). Nesting by indentation is not counted: it takes a line
 * per level, so a file within the size limit cannot nest deeper than about 1,400 levels that way, which the
 * parser builds cheaply and the exact check after it refuses.
 */
export function scanStructure(text: string, maxDepth = Infinity, maxDocuments = Infinity): StructureScan {
  return new Scanner(text, maxDepth, maxDocuments).run();
}

/**
 * Whether `text` is too plain for scanStructure to find anything: the nesting it counts takes one `[`, `{`,
 * or `-`/`?` before a blank per level, and each document marker is a `---`. A file with no more of those than
 * the limits allow needs no scan; most manifests have a few dozen. One pass over the characters, no allocation.
 */
export function tooFewIndicatorsToExceed(text: string, maxDepth: number, maxDocuments: number): boolean {
  let indicators = 0;
  for (let at = 0; at < text.length; at++) {
    const c = text.charCodeAt(at);
    if (c === OPEN_BRACKET || c === OPEN_BRACE || ((c === DASH || c === QUESTION) && isBlankCode(text.charCodeAt(at + 1)))) {
      if (++indicators > maxDepth) return false;
    }
  }
  let markers = 0;
  for (let at = text.indexOf("---"); at !== -1; at = text.indexOf("---", at + 3)) {
    if (++markers > maxDocuments) return false;
  }
  return true;
}

const [OPEN_BRACKET, OPEN_BRACE, DASH, QUESTION] = ["[", "{", "-", "?"].map((c) => c.charCodeAt(0)) as [number, number, number, number];
/** A blank as isBlankChar means it, by code: NaN is past the end. */
const isBlankCode = (c: number) => Number.isNaN(c) || c === 32 || c === 9 || c === 10 || c === 13;

/** 1-based line and column of a character offset. */
export function positionOfOffset(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let at = text.indexOf("\n"); at !== -1 && at < offset; at = text.indexOf("\n", at + 1)) {
    line++;
    lineStart = at + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

const isBlankChar = (c: string | undefined) => c === undefined || c === " " || c === "\t" || c === "\n" || c === "\r";
const isFlowIndicator = (c: string | undefined) => c === "," || c === "[" || c === "]" || c === "{" || c === "}";

/**
 * The scan's state is carried from line to line: open flow collections, an open quoted scalar, an open block
 * scalar, a plain scalar that may go on over the next lines.
 */
class Scanner {
  private readonly text: string;
  private readonly maxDepth: number;
  private readonly maxDocuments: number;
  private at = 0;
  private depth = 0;
  private markers = 0;
  private finding: StructureFinding | undefined;

  /** Open flow collections, and the block collections open on the line where the outermost of them opened. */
  private flow = 0;
  private flowBase = 0;
  /** Block collections opened by `- ` and `? ` on the current line. */
  private indicators = 0;
  /** Whether the next character may start a node, or is inside a plain scalar. */
  private tokenStart = true;
  /** In flow context, a `:` right after a quoted scalar or a collection is a value indicator (JSON style). */
  private afterJsonKey = false;
  private quote: '"' | "'" | undefined;
  /** An open block scalar: its parent's column, and its content's indentation once its first line is seen. */
  private blockScalar: { parent: number; indent?: number } | undefined;
  /** A plain scalar that may go on over the following lines indented deeper than this column. */
  private plainParent: number | undefined;
  /**
   * Columns of the block collections open around the current line (keys, `- `, `? `): a scalar's text may go
   * on over lines indented deeper than its parent's, which only they tell. Used for that, not for the depth.
   */
  private readonly columns: number[] = [];

  /** Per line: where it starts, the column of the collection the current node belongs to. */
  private lineStart = 0;
  private parentColumn = 0;
  private tokenColumn = 0;

  constructor(text: string, maxDepth: number, maxDocuments: number) {
    this.text = text;
    this.maxDepth = maxDepth;
    this.maxDocuments = maxDocuments;
  }

  run(): StructureScan {
    while (this.at < this.text.length && !this.finding) this.line();
    return { depth: this.depth, markers: this.markers, ...(this.finding ? { finding: this.finding } : {}) };
  }

  private nest(count: number, at: number): void {
    if (count > this.depth) this.depth = count;
    if (count > this.maxDepth && !this.finding) this.finding = { code: "too-deep", offset: at };
  }

  /** One line, from its first character to past its newline. */
  private line(): void {
    const start = this.at;
    const newline = this.text.indexOf("\n", start);
    const end = newline === -1 ? this.text.length : newline;
    let first = start;
    while (first < end && this.text[first] === " ") first++;
    const indent = first - start;
    // Empty: only spaces. Blank: spaces and tabs (a tab is text in a block scalar, a separator elsewhere).
    const empty = first >= end || (this.text[first] === "\r" && first + 1 >= end);
    let content = first;
    while (content < end && isBlankChar(this.text[content])) content++;
    const blank = content >= end;
    const three = this.text.slice(start, start + 3);
    const marker = (three === "---" || three === "...") && isBlankChar(this.text[start + 3]) ? three : undefined;
    this.lineStart = start;
    this.at = end + 1;

    // A document marker ends whatever was open: the parser starts over there, and so does the scan.
    if (marker) {
      this.columns.length = 0;
      this.flow = 0;
      this.quote = undefined;
      this.blockScalar = undefined;
      this.plainParent = undefined;
    }
    if (this.quote || this.flow > 0) return this.scan(first, end);
    if (this.blockScalar) {
      if (empty) return;
      const isText = this.blockScalar.indent === undefined ? indent > this.blockScalar.parent : indent >= this.blockScalar.indent;
      if (isText) {
        this.blockScalar.indent ??= indent;
        return;
      }
      this.blockScalar = undefined;
    }
    if (this.plainParent !== undefined) {
      if (blank) return;
      // The scalar's next line: text, unless a `: ` turns it into something else (an error the parser will
      // still build from, so it is counted).
      if (indent > this.plainParent) return this.scan(first, end, true);
      this.plainParent = undefined;
    }
    this.indicators = 0;
    this.tokenStart = true;
    // A line belongs to the collections opened at its column or left of it.
    while (this.columns.length > 0 && this.columns.at(-1)! > indent) this.columns.pop();
    this.parentColumn = this.columns.at(-1) ?? -1;
    if (marker === "...") return;
    if (marker === "---") {
      this.markers++;
      if (this.markers > this.maxDocuments && !this.finding) this.finding = { code: "too-many-documents", offset: start };
      return this.scan(start + 3, end);
    }
    if (indent === 0 && this.text[start] === "%") return; // a directive
    this.scan(first, end);
  }

  /** The characters of a line from `from`. `continuation`: the line goes on with a plain scalar. */
  private scan(from: number, end: number, continuation = false): void {
    let plainValue = continuation;
    let properties: number | undefined;
    if (continuation) {
      this.tokenStart = false;
      this.indicators = 0;
    }
    let at = from;
    while (at < end && !this.finding) {
      if (this.quote) {
        at = this.closeQuote(at, end);
        continue;
      }
      const c = this.text[at]!;
      if (c === " " || c === "\t" || c === "\r") {
        at++;
        continue;
      }
      // A comment starts with a `#` at the start of a line or after a blank, in a plain scalar too.
      if (c === "#" && (at === this.lineStart || isBlankChar(this.text[at - 1]))) break;
      if (this.flow > 0) {
        at = this.inFlow(c, at, end);
        if (this.flow === 0) this.indicators = this.flowBase;
        continue;
      }
      const next = this.text[at + 1];
      if (!this.tokenStart) {
        // Inside a plain scalar, or after a quoted one or a flow collection: only `: ` ends it, as a key.
        if (c === ":" && isBlankChar(next)) {
          this.tokenStart = true;
          plainValue = false;
          this.open(this.tokenColumn);
        }
        at++;
        continue;
      }
      const column = at - this.lineStart;
      // A node starts where its anchor or tag does.
      const nodeColumn = properties ?? column;
      if (c !== "&" && c !== "!") properties = undefined;
      if ((c === "-" || c === "?") && isBlankChar(next)) {
        this.indicators++;
        this.nest(this.indicators, at);
        this.open(column);
        at++;
      } else if (c === ":" && isBlankChar(next)) {
        // A value with an empty key, or an explicit key's value: in the mapping at this column.
        this.open(nodeColumn);
        at++;
      } else if (c === "[" || c === "{") {
        this.flow = 1;
        this.flowBase = this.indicators;
        this.tokenColumn = nodeColumn;
        this.afterJsonKey = false;
        this.nest(this.flowBase + 1, at);
        at++;
      } else if (c === '"' || c === "'") {
        this.quote = c;
        this.tokenStart = false;
        this.tokenColumn = nodeColumn;
        at++;
      } else if (c === "|" || c === ">") {
        // A block scalar: the lines after it indented deeper than its parent are its text, whatever they hold.
        // Its content's indentation is given (`|2`: two more than the parent's), or its first line's.
        const given = /^[+-]?([1-9])/.exec(this.text.slice(at + 1, at + 3))?.[1];
        this.blockScalar = { parent: this.parentColumn, ...(given ? { indent: Math.max(this.parentColumn, 0) + Number(given) } : {}) };
        this.plainParent = undefined;
        return;
      } else if (c === "&" || c === "!") {
        properties ??= column;
        at = this.propertyEnd(at + 1, end);
      } else if (c === "*") {
        at = this.propertyEnd(at + 1, end);
        this.tokenStart = false;
        this.tokenColumn = nodeColumn;
      } else {
        this.tokenStart = false;
        this.tokenColumn = nodeColumn;
        plainValue = true;
        at++;
      }
    }
    // A plain scalar may go on over the lines that follow, indented deeper than its parent collection (a
    // document's root scalar, at column 0 too: its parent is -1).
    const goesOn = this.flow === 0 && !this.quote && plainValue && !this.tokenStart;
    this.plainParent = !goesOn ? undefined : continuation ? this.plainParent : this.parentColumn;
  }

  /** A block collection opens at `column`: what follows on the line belongs to it. */
  private open(column: number): void {
    this.columns.push(column);
    this.parentColumn = column;
  }

  /** One character in flow context; returns where to go on. */
  private inFlow(c: string, at: number, end: number): number {
    const next = this.text[at + 1];
    if (c === "[" || c === "{") {
      this.flow++;
      this.nest(this.flowBase + this.flow, at);
      this.tokenStart = true;
      this.afterJsonKey = false;
    } else if (c === "]" || c === "}") {
      this.flow--;
      this.tokenStart = false;
      this.afterJsonKey = true;
    } else if (c === ",") {
      this.tokenStart = true;
      this.afterJsonKey = false;
    } else if (c === ":") {
      // `a: b`, `[a]:b` and JSON's `"a":"b"` are value indicators; the `:` of `http://x` is text.
      this.tokenStart = this.tokenStart || isBlankChar(next) || isFlowIndicator(next) || this.afterJsonKey;
      this.afterJsonKey = false;
    } else if (this.tokenStart && (c === '"' || c === "'")) {
      this.quote = c;
      this.tokenStart = false;
    } else if (this.tokenStart && c === "?" && isBlankChar(next)) {
      // An explicit key: what follows starts a node.
    } else if (this.tokenStart && (c === "&" || c === "!")) {
      return this.propertyEnd(at + 1, end);
    } else if (this.tokenStart && c === "*") {
      this.tokenStart = false;
      this.afterJsonKey = false;
      return this.propertyEnd(at + 1, end);
    } else {
      this.tokenStart = false;
      this.afterJsonKey = false;
    }
    return at + 1;
  }

  /** The end of an anchor, tag or alias name: a blank or a flow indicator (neither can be part of one). */
  private propertyEnd(from: number, end: number): number {
    let at = from;
    while (at < end && !isBlankChar(this.text[at]) && !isFlowIndicator(this.text[at])) at++;
    return at;
  }

  /** Inside a quoted scalar: past its closing quote on this line, or to the end of the line. */
  private closeQuote(from: number, end: number): number {
    const quote = this.quote!;
    for (let at = from; at < end; at++) {
      const c = this.text[at];
      if (quote === '"' && c === "\\") {
        at++;
      } else if (c === quote) {
        if (quote === "'" && this.text[at + 1] === "'") {
          at++;
          continue;
        }
        this.quote = undefined;
        this.afterJsonKey = true;
        return at + 1;
      }
    }
    return end;
  }
}
