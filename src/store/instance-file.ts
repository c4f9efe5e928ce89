/**
 * The instance id, written beside the state database (`<state-dir>/instance-id`) whenever it is known. It is
 * the evidence that a state directory had a database: if the database is then missing, empty or without an
 * id, it was lost or replaced, and starting over would make a second instance beside the first one's
 * containers, forgetting every secret, approval and audit row. openState (state.ts) refuses that.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomicSync } from "./atomic-write.ts";

export const INSTANCE_FILE = "instance-id";

/** Instance ids go into container names and labels. */
const INSTANCE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** The id recorded in the state directory, or undefined when there is none. A malformed file is an error. */
export function readInstanceFile(stateDir: string): string | undefined {
  const path = join(stateDir, INSTANCE_FILE);
  if (!existsSync(path)) return undefined;
  const id = readFileSync(path, "utf8").trim();
  if (!INSTANCE_ID.test(id)) throw new Error(`${path} does not hold an instance id (${JSON.stringify(id.slice(0, 40))}); restore it or remove it`);
  return id;
}

/** Records the id (atomically: a crash leaves the old file or the new one). */
export function writeInstanceFile(stateDir: string, id: string): void {
  if (readInstanceFile(stateDir) === id) return;
  writeFileAtomicSync(join(stateDir, INSTANCE_FILE), `${id}\n`, { mode: 0o644 });
}

export type DbFileState = "missing" | "empty" | "present";

/** Whether the database file is there and has anything in it. */
export function dbFileState(path: string): DbFileState {
  if (!existsSync(path)) return "missing";
  return statSync(path).size === 0 ? "empty" : "present";
}

/** What to do with a state directory, from the id in its database and the id recorded beside it. Pure. */
export type InstanceVerdict =
  /** Neither: a new installation. */
  | { kind: "new" }
  /** The database has its id (a directory from before the file existed gets the file now). */
  | { kind: "known"; instance: string }
  /** The directory had instance `instance` but its database does not say so: it was lost or replaced. */
  | { kind: "lost"; instance: string }
  /** The database is another instance's. */
  | { kind: "mismatch"; database: string; recorded: string };

export function judgeInstance(inDatabase: string | undefined, recorded: string | undefined): InstanceVerdict {
  if (inDatabase && recorded && inDatabase !== recorded) return { kind: "mismatch", database: inDatabase, recorded };
  if (inDatabase) return { kind: "known", instance: inDatabase };
  if (recorded) return { kind: "lost", instance: recorded };
  return { kind: "new" };
}

const describeDb: Record<DbFileState | "no-id", string> = {
  missing: "is missing",
  empty: "is empty (0 bytes)",
  present: "is there",
  "no-id": "holds no instance id (it was emptied or replaced)",
};

/** The state directory had a database that is gone. `found` says what is there now. */
export class LostStateError extends Error {
  readonly stateDir: string;
  readonly instance: string;
  readonly found: DbFileState | "no-id";
  /**
   * `detail`: what the engine shows of the instance; `adoptable`: whether `--adopt-orphans` can take it over there
   * (the engine's runtime reads its containers back: Runtime.readBack).
   */
  constructor(stateDir: string, dbFile: string, instance: string, found: DbFileState | "no-id", detail = "", adoptable = true) {
    super(
      `state directory ${stateDir} belongs to Ruriko instance ${instance} (${join(stateDir, INSTANCE_FILE)}), but its database ${dbFile} ${describeDb[found]}. ` +
        `Starting over would run a second instance beside the containers of ${instance} and forget its secrets, approvals and audit log, so Ruriko refuses.${detail} ` +
        (adoptable
          ? `Restore a backup (ruriko restore FILE), or take over what instance ${instance} left on the engine with \`ruriko serve --adopt-orphans\` (docs/operations.md#adopting-a-lost-instance). `
          : `Restore a backup (ruriko restore FILE): what instance ${instance} left on this engine cannot be adopted (its containers cannot be read back). `) +
        `To start a new installation here instead, remove ${join(stateDir, INSTANCE_FILE)}.`,
    );
    this.name = "LostStateError";
    this.stateDir = stateDir;
    this.instance = instance;
    this.found = found;
  }
}

/** The database in a state directory belongs to another instance than the one recorded beside it. */
export class InstanceMismatchError extends Error {
  constructor(stateDir: string, dbFile: string, database: string, recorded: string) {
    super(
      `the state database ${dbFile} belongs to Ruriko instance ${database}, but ${join(stateDir, INSTANCE_FILE)} says this directory is instance ${recorded}: ` +
        `it comes from another installation (a backup of another one?). Restore a backup of instance ${recorded}, or, if this directory is to become instance ${database}, remove ${join(stateDir, INSTANCE_FILE)}.`,
    );
    this.name = "InstanceMismatchError";
  }
}
