import { backupState, restoreState } from "../store/backup.ts";

/** `ruriko backup FILE`. */
export async function runBackup(file: string, opts: { stateDir: string; replace: boolean }): Promise<number> {
  const info = await backupState(opts.stateDir, file, { replace: opts.replace });
  console.log(`backed up instance ${info.instance} (schema ${info.schemaVersion}, ${info.bytes} bytes) to ${info.file} at ${info.takenAt}`);
  console.log("it holds the sealed secrets but not the master key: keep a copy of the key apart (docs/secrets.md)");
  return 0;
}

/** `ruriko restore FILE`. */
export function runRestore(file: string, opts: { stateDir: string }): number {
  const info = restoreState(opts.stateDir, file);
  console.log(`restored instance ${info.instance} from ${file} (taken ${info.takenAt ?? "at an unknown time"})`);
  if (info.replaced) console.log(`the database it replaced is kept as ${info.replaced}`);
  console.log("start `ruriko serve`: it first takes over from Docker what changed since the backup (docs/operations.md#restoring-a-backup)");
  return 0;
}
