/** What /readyz answers while serve is not ready (docs/operations.md lists them; a unit test holds them together). */
export const NOT_READY = {
  storage: "the state database failed",
  snapshot: "no snapshot from the source yet",
  revision: "no valid revision applied yet",
} as const;

export interface ReadinessFacts {
  storageOk: boolean;
  /** The source has given a snapshot, valid or not. */
  snapshotSeen: boolean;
  /** A valid revision is in force: the last snapshot that validated. */
  revisionInForce: boolean;
}

/** Ready when nothing of NOT_READY holds; else every reason that does. */
export function readiness(facts: ReadinessFacts): { ready: boolean; reasons: string[] } {
  const reasons: string[] = [];
  if (!facts.storageOk) reasons.push(NOT_READY.storage);
  if (!facts.snapshotSeen) reasons.push(NOT_READY.snapshot);
  if (!facts.revisionInForce) reasons.push(NOT_READY.revision);
  return { ready: reasons.length === 0, reasons };
}
