import { formatManifestError } from "../api/errors.ts";
import { loadSnapshotFromDirectory } from "../api/load.ts";
import type { Snapshot } from "../api/snapshot.ts";

export type ValidateOutput = "text" | "json";

/** JSON shape of `ruriko validate --output json`, meant for pull-request checks that annotate lines. */
export function validationReport(snapshot: Snapshot) {
  return {
    valid: snapshot.errors.length === 0,
    digest: snapshot.digest,
    files: snapshot.files.length,
    objects: [...snapshot.objects.values()].map((o) => ({
      kind: o.kind,
      name: o.name,
      file: o.source.file,
      line: o.source.locate().line,
      digest: o.digest,
    })),
    errors: snapshot.errors.map((e) => ({ ...e, text: formatManifestError(e) })),
    warnings: snapshot.warnings.map((e) => ({ ...e, text: formatManifestError(e) })),
  };
}

export function renderValidationText(snapshot: Snapshot): string {
  const lines = [...snapshot.errors.map(formatManifestError), ...snapshot.warnings.map((w) => `warning: ${formatManifestError(w)}`)];
  const objects = `${snapshot.objects.size} object${snapshot.objects.size === 1 ? "" : "s"} in ${snapshot.files.length} file${snapshot.files.length === 1 ? "" : "s"}`;
  if (snapshot.errors.length === 0) lines.push(`valid: ${objects} (${snapshot.digest})`);
  else lines.push(`invalid: ${snapshot.errors.length} error${snapshot.errors.length === 1 ? "" : "s"}; ${objects}`);
  return lines.join("\n") + "\n";
}

/** Returns the process exit code: 0 when the tree is valid, 1 when it is not. */
export async function runValidate(path: string, output: ValidateOutput): Promise<number> {
  const snapshot = await loadSnapshotFromDirectory(path);
  process.stdout.write(output === "json" ? JSON.stringify(validationReport(snapshot), null, 2) + "\n" : renderValidationText(snapshot));
  return snapshot.errors.length === 0 ? 0 : 1;
}
