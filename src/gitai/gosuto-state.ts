/**
 * The Gosuto in force inside the agent. Validated with the same parser, schema and digest code Ruriko
 * uses, persisted under the data volume (atomically) so that it survives a container restart, and
 * replaced only by a valid document: a refused one leaves the previous config in force.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatManifestError } from "../api/errors.ts";
import type { GosutoManifest } from "../api/generated/types.ts";
import { parseManifestFile } from "../api/parse.ts";

const STATE_FILE = "gosuto.json";

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
  private readonly dir: string;
  private applied: AppliedGosuto | undefined;

  constructor(dataDir: string) {
    this.dir = dataDir;
  }

  get current(): AppliedGosuto | undefined {
    return this.applied;
  }

  /** Loads what was persisted; a file that no longer validates is ignored (Ruriko pushes again). */
  load(): { loaded: boolean; problem?: string } {
    let text: string;
    try {
      text = readFileSync(join(this.dir, STATE_FILE), "utf8");
    } catch {
      this.applied = undefined;
      return { loaded: false };
    }
    try {
      const stored = JSON.parse(text) as { yaml: string; digest: string };
      const verdict = checkGosuto(stored.yaml, stored.digest);
      if (!verdict.ok) return { loaded: false, problem: verdict.errors.join("; ") };
      this.applied = verdict.applied;
      return { loaded: true };
    } catch (error) {
      return { loaded: false, problem: `unreadable ${STATE_FILE}: ${(error as Error).message}` };
    }
  }

  apply(yaml: string, digest: string): GosutoVerdict {
    const verdict = checkGosuto(yaml, digest);
    if (!verdict.ok) return verdict;
    mkdirSync(this.dir, { recursive: true });
    const tmp = join(this.dir, `.${STATE_FILE}.tmp`);
    writeFileSync(tmp, JSON.stringify({ digest, yaml, appliedAt: verdict.applied.appliedAt }), { mode: 0o600 });
    renameSync(tmp, join(this.dir, STATE_FILE));
    this.applied = verdict.applied;
    return verdict;
  }
}
