import type { Snapshot } from "../api/snapshot.ts";

/**
 * A source produces Snapshots of desired state and knows nothing of what consumes them (Flux's
 * source/applier split). It never judges validity: a snapshot with errors is delivered like any other,
 * and the controller refuses it.
 */
export interface Source {
  readonly kind: "directory" | "git";
  /** Resolves once the first snapshot has been delivered. */
  start(onSnapshot: (snapshot: Snapshot) => void): Promise<void>;
  stop(): Promise<void>;
  /** Reloads or fetches now (a webhook, an operator). Concurrent calls coalesce. */
  refresh(reason: string): Promise<void>;
  describe(): string;
}

export class SourceError extends Error {
  readonly source: string;
  readonly action: string;
  constructor(source: string, action: string, message: string, options?: { cause?: unknown }) {
    super(`${source}: ${action}: ${message}`, options);
    this.name = "SourceError";
    this.source = source;
    this.action = action;
  }
}

/** Removes credentials from a URL before it goes into a message or a log. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, "$1***@");
}

/** Runs `task` with at most one run in flight and at most one more queued behind it. */
export function coalescing(task: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  const run = (): Promise<void> => {
    if (!running) {
      running = task().finally(() => {
        running = undefined;
      });
      return running;
    }
    queued ??= running.then(() => {
      queued = undefined;
      return run();
    });
    return queued;
  };
  return run;
}
