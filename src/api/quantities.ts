/** Parsers for the quantity strings manifests use. The schemas check the shape; these give the numbers. */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `15m`, `1h30m`, `7d` → milliseconds. Throws on anything else. */
export function parseDuration(text: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (const match of text.matchAll(re)) {
    total += Number(match[1]) * DURATION_UNITS[match[2]!]!;
    consumed += match[0].length;
  }
  if (consumed !== text.length || consumed === 0) throw new Error(`not a duration: ${JSON.stringify(text)}`);
  return total;
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** `512Mi`, `1Gi`, `256M`, `1048576` → bytes. Throws on anything else. */
export function parseMemorySize(text: string | number): number {
  if (typeof text === "number") return text;
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|K|M|G|T)?$/.exec(text);
  if (!match) throw new Error(`not a memory size: ${JSON.stringify(text)}`);
  return Math.round(Number(match[1]) * SIZE_UNITS[match[2] ?? ""]!);
}
