/**
 * Reads an agent's decision journal over ACP into the audit log (the I/O around agent-events.ts). Called by
 * agent-sync after each /status read, with the journal's newest seq from that answer: when it has not moved past
 * the cursor, nothing is requested at all.
 */
import { AcpError, type AcpClient, type AcpEndpoint } from "../acp/client.ts";
import type { AcpEvent } from "../api/generated/types.ts";
import type { Logger } from "../observability/logger.ts";
import type { AgentEventCursorStore } from "../store/agent-event-cursor-store.ts";
import type { AuditLog } from "../store/audit-log.ts";
import { collectPage, EVENTS_MAX_PAGES, EVENTS_PAGE, planFetch, type EventsFetch } from "./agent-events.ts";

export interface EventCollectorDeps {
  acp: AcpClient;
  audit: AuditLog;
  cursors: AgentEventCursorStore;
  /** The audit entries of a page and the cursor that covers them land together or not at all. */
  transaction: <T>(fn: () => T) => T;
  now: () => Date;
  /** A decision people should hear of (a denial, an approval, a limit): called in the transaction that appends it to the audit log. */
  onDecision?: (agent: string, event: AcpEvent) => void;
}

export interface Collected {
  /** GET /events requests made: 0 when the journal had not moved. */
  requests: number;
  /** Audit entries written (the agent's events, and any gap or reset). */
  entries: number;
  /** Set when reading failed: the cursor stayed where it was, and the next poll tries again. */
  error?: string;
}

/**
 * Copies the agent's new decisions into the audit log. A crash between pages re-reads the page, never skips or
 * doubles it. A failure to read is returned (and logged), not thrown: the reconcile's business is the agent's
 * config, and the cursor did not move.
 */
export async function collectAgentEvents(deps: EventCollectorDeps, endpoint: AcpEndpoint, last: number | undefined, traceId: string, log: Logger): Promise<Collected> {
  const agent = endpoint.agent;
  const done: Collected = { requests: 0, entries: 0 };
  let cursor = deps.cursors.get(agent) ?? { seq: 0, anchor: null };
  let fetch: EventsFetch | undefined = planFetch(last, cursor);
  while (fetch && done.requests < EVENTS_MAX_PAGES) {
    done.requests++;
    let page;
    try {
      page = await deps.acp.events(endpoint, fetch.after, EVENTS_PAGE, traceId);
    } catch (error) {
      if (!(error instanceof AcpError)) throw error;
      log.warn({ err: error.message, after: fetch.after }, `events ${agent}: cannot read the agent's journal; trying again at the next poll`);
      return { ...done, error: error.message };
    }
    const step = collectPage(agent, cursor, fetch, page, traceId);
    const now = deps.now();
    // The entries, the cursor past them and what the status room hears of them: together or not at all.
    deps.transaction(() => {
      for (const entry of step.entries) deps.audit.append(entry);
      if (step.entries.length > 0 || step.cursor.seq !== cursor.seq) deps.cursors.set(agent, step.cursor, now);
      for (const event of step.reported) deps.onDecision?.(agent, event);
    });
    if (step.entries.length > 0) log.info({ from: cursor.seq, to: step.cursor.seq, entries: step.entries.length }, `events ${agent}: decisions collected`);
    done.entries += step.entries.length;
    cursor = step.cursor;
    fetch = step.next;
  }
  return done;
}
