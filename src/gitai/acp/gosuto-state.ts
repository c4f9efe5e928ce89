/**
 * The Gosuto in force inside the agent. Validated with the same parser, schema and digest code Ruriko uses, and
 * replaced only by a valid document: a refused one leaves the previous config in force.
 *
 * In memory only. A file on the data volume could be rewritten by the agent's own tool servers (same user, same
 * volume) and widen its policy at the next start; a restarted agent instead waits, inert, for Ruriko to push
 * its Gosuto again — which Ruriko does at once, as it hands the new process its token.
 */
import { formatManifestError } from "../../api/errors.ts";
import type { GosutoManifest } from "../../api/generated/types.ts";
import { parseManifestFile } from "../../api/parse.ts";

export interface AppliedGosuto {
  digest: string;
  gosuto: GosutoManifest;
  yaml: string;
  appliedAt: string;
}

export type GosutoVerdict = { ok: true; applied: AppliedGosuto } | { ok: false; errors: string[] };

/** Parses and validates a Gosuto document; pure apart from the clock. */
export function checkGosuto(yaml: string, expectedDigest: string): GosutoVerdict {
  const parsed = parseManifestFile("gosuto.yaml", Buffer.from(yaml, "utf8"));
  if (parsed.errors.length > 0) return { ok: false, errors: parsed.errors.map(formatManifestError) };
  const [only, ...rest] = parsed.objects;
  if (!only || rest.length > 0 || only.kind !== "Gosuto") return { ok: false, errors: ["gosuto.yaml: the document must be exactly one Gosuto object"] };
  if (only.digest !== expectedDigest) return { ok: false, errors: [`digest mismatch: the agent computed ${only.digest}, Ruriko sent ${expectedDigest}`] };
  return { ok: true, applied: { digest: only.digest, gosuto: only.object as GosutoManifest, yaml, appliedAt: new Date().toISOString() } };
}

export class GosutoState {
  private applied: AppliedGosuto | undefined;

  get current(): AppliedGosuto | undefined {
    return this.applied;
  }

  apply(yaml: string, digest: string): GosutoVerdict {
    const verdict = checkGosuto(yaml, digest);
    if (verdict.ok) this.applied = verdict.applied;
    return verdict;
  }
}
