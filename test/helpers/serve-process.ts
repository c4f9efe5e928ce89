import { spawn, type ChildProcess } from "node:child_process";
import { openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { StatusReport } from "../../src/controller/status-report.ts";
import { freePort } from "./synapse.ts";

const CLI = join(import.meta.dirname, "../../src/cli/ruriko.ts");

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  logFile: string;
  status(): Promise<StatusReport | undefined>;
  /** The last lines of its log, to explain a failed wait. */
  logTail(lines?: number): string;
  /** Graceful stop (SIGTERM). */
  stop(): Promise<void>;
  /** kill -9. */
  kill(): Promise<void>;
}

/** Runs `ruriko serve` as its own process, as an operator would. */
export async function startServe(args: string[], opts: { stateDir: string; env?: Record<string, string> }): Promise<ServeProcess> {
  const port = await freePort();
  const logFile = join(opts.stateDir, `serve-${Date.now()}.log`);
  const out = openSync(logFile, "a");
  const child = spawn(process.execPath, [CLI, "serve", "--state-dir", opts.stateDir, "--http", `127.0.0.1:${port}`, "--log-level", "debug", ...args], {
    stdio: ["ignore", out, out],
    env: { ...process.env, ...opts.env },
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`ruriko serve exited with ${child.exitCode}; see ${logFile}`);
    const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    url,
    logFile,
    status: () => fetch(`${url}/api/v1/status`).then((r) => r.json() as Promise<StatusReport>, () => undefined),
    // The test's own status polls are left out: they would be all there is.
    logTail: (lines = 40) =>
      readFileSync(logFile, "utf8").trimEnd().split("\n").filter((line) => !line.includes('"msg":"http request"')).slice(-lines).join("\n"),
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
    async kill() {
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}
