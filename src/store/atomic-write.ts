/**
 * Writes a file so that a crash leaves its old content or the new, never part of either: a temporary file in the
 * same directory, flushed, then renamed over the target (rename is atomic within one file system). Written here
 * rather than taken from write-file-atomic: that package loads worker_threads and signal-exit when imported, about
 * 9 MiB of RSS in every agent and in serve, for a temporary file's name and a cleanup at exit that a synchronous
 * write does not need. Used by Ruriko's state files and by Gitai's files in its data volume.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

let written = 0;

/** `mode` applies from the first byte (a token file is never readable by others, even half-written). */
export function writeFileAtomicSync(file: string, data: string | Buffer, options: { mode?: number } = {}): void {
  // Synchronous, so one thread never has two under way; the counter covers a name reused after a failed rename.
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${++written}.tmp`);
  try {
    const fd = openSync(temp, "w", options.mode ?? 0o644);
    try {
      writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}
