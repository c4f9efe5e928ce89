import type { Kind } from "./kinds.ts";
import { validatorFor } from "./schemas.ts";

/** Each kind's spec with nothing set but the schema's defaults: what a new object's fields are compared with. */
const emptySpecs = new Map<Kind, Record<string, unknown>>();

function emptySpecOf(kind: Kind): Record<string, unknown> {
  let spec = emptySpecs.get(kind);
  if (!spec) {
    spec = {};
    // Validation fails for kinds with required fields; it fills in the defaults all the same.
    validatorFor(kind)({ apiVersion: "ruriko.dev/v1alpha1", kind, metadata: { name: "empty" }, spec });
    emptySpecs.set(kind, spec);
  }
  return spec;
}

/**
 * The top-level spec fields that differ between two versions of an object's spec, sorted; a field left out
 * reads as its default. A new object (`from` undefined) changes every field it sets to other than the default.
 */
export function changedFields(kind: Kind, from: object | undefined, to: object | undefined): string[] {
  const empty = emptySpecOf(kind);
  const before: Record<string, unknown> = { ...empty, ...from };
  const after: Record<string, unknown> = { ...empty, ...to };
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => !sameContent(before[k], after[k])).sort();
}

/** Equal as content: key order does not matter and an undefined member is no member (as in digests). */
function sameContent(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((x, i) => sameContent(x, (b as unknown[])[i]));
  const entries = (o: object) => Object.entries(o).filter(([, v]) => v !== undefined);
  const [ea, eb] = [entries(a), entries(b)];
  const other = b as Record<string, unknown>;
  return ea.length === eb.length && ea.every(([k, v]) => sameContent(v, other[k]));
}
