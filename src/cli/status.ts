import { existsSync } from "node:fs";
import { join } from "node:path";
import { buildStatusReport, renderStatusTable } from "../controller/status-report.ts";
import { openState, STATE_DB_FILE } from "../store/state.ts";

export function runStatus(opts: { stateDir: string; output: "table" | "json" }): number {
  if (!existsSync(join(opts.stateDir, STATE_DB_FILE))) {
    console.error(`no Ruriko state in ${opts.stateDir} (start \`ruriko serve\` first, or pass --state-dir)`);
    return 1;
  }
  const state = openState(opts.stateDir);
  try {
    const report = buildStatusReport(state);
    process.stdout.write(opts.output === "json" ? JSON.stringify(report, null, 2) + "\n" : renderStatusTable(report));
    return 0;
  } finally {
    state.close();
  }
}
