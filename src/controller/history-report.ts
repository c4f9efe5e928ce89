import type { AgentHistory } from "../sources/git-history.ts";

/** One line per commit, newest first; `→` marks the agent's applied commit. The chat query and the CLI print the same text. */
export function renderHistoryText(agent: string, history: AgentHistory): string {
  if (history.commits.length === 0) return `no commits change agent ${agent}`;
  return history.commits
    .map((c) => `${c.sha === history.applied ? "→" : " "} ${c.sha.slice(0, 12)}  ${c.date.slice(0, 10)}  ${c.author}  ${c.subject}`)
    .join("\n");
}
