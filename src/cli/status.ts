import { existsSync } from "node:fs";
import { join } from "node:path";
import { decisionLines } from "../controller/agent-events.ts";
import { buildStatusReport, renderStatusTable } from "../controller/status-report.ts";
import { openState, STATE_DB_FILE } from "../store/state.ts";

/** How many of each agent's latest decisions the table lists. */
const RECENT_DECISIONS = 5;

export function runStatus(opts: { stateDir: string; output: "table" | "json" }): number {
  if (!existsSync(join(opts.stateDir, STATE_DB_FILE))) {
    console.error(`no Ruriko state in ${opts.stateDir} (start \`ruriko serve\` first, or pass --state-dir)`);
    return 1;
  }
  const state = openState(opts.stateDir);
  try {
    const report = buildStatusReport(state);
    if (opts.output === "json") {
      process.stdout.write(JSON.stringify(report, null, 2) + "\n");
      return 0;
    }
    process.stdout.write(renderStatusTable(report));
    // The table's companion, not part of the JSON document (which /api/v1/status serves too): what each agent
    // decided last, from the audit log — one indexed read per agent.
    const decided = report.agents.map((a) => ({ name: a.name, lines: decisionLines(state.audit.byActor(`agent:${a.name}`, RECENT_DECISIONS)) })).filter((a) => a.lines.length > 0);
    if (decided.length > 0) {
      process.stdout.write(["", "latest decisions (newest first; /ruriko audit and /ruriko trace ID in chat tell more):", ...decided.flatMap((a) => [`  ${a.name}`, ...a.lines.map((l) => `    ${l}`)])].join("\n") + "\n");
    }
    return 0;
  } finally {
    state.close();
  }
}
