/**
 * Returns the byte offset of the first invalid UTF-8 sequence in `bytes`, or -1 when it is all valid.
 * TextDecoder can reject invalid input but cannot say where, and a user needs the line to fix it.
 */
export function firstInvalidUtf8Offset(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i += 1;
      continue;
    }
    let need: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) [need, min] = [1, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [need, min] = [2, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [need, min] = [3, 0x10000];
    else return i;
    let codePoint = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      codePoint = (codePoint << 6) | (c & 0x3f);
    }
    if (codePoint < min || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

/** 1-based line and column of a byte offset, counting columns in characters of the valid prefix. */
export function positionOfByteOffset(bytes: Uint8Array, offset: number): { line: number; column: number } {
  const prefix = new TextDecoder("utf-8").decode(bytes.subarray(0, offset));
  const lines = prefix.split("\n");
  return { line: lines.length, column: [...lines[lines.length - 1]!].length + 1 };
}
