/**
 * Ruriko's side of an agent's decision journal, for tests that run a real Gitai in-process: a real state directory
 * (the SQLite audit log, the event cursors, the outbox), the collector called as agent-sync.ts calls it after a
 * /status read, and each decision it reports written to the status room's outbox as `serve` wires it
 * (matrix-bot.ts: onChange → describeChange → StatusReporter.report). Not the whole controller — no Docker, no
 * reconcile — but the code path from GET /events to the audit log, the status-room outbox and the queries is the
 * real one.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AcpClient, AcpEndpoint } from "../../src/acp/client.ts";
import { collectAgentEvents, type Collected } from "../../src/controller/agent-event-collector.ts";
import { querySourcesFor } from "../../src/matrix/query-sources.ts";
import { answerQuery } from "../../src/matrix/queries.ts";
import { describeChange } from "../../src/matrix/status-messages.ts";
import { StatusReporter } from "../../src/matrix/status-reporter.ts";
import { createLogger } from "../../src/observability/logger.ts";
import type { Runtime } from "../../src/runtime/runtime.ts";
import { openState, type StateStores } from "../../src/store/state.ts";

export const STATUS_ROOM = "!status:ruriko.test";

export interface RurikoJournal {
  stateDir: string;
  state: StateStores;
  /** One collection, as after a reconcile's /status read: only a journal that moved is read. */
  collect(ep: AcpEndpoint): Promise<Collected>;
  /** Every line the status room is to hear, oldest first, with its trace id. */
  statusLines(): Array<{ text: string; traceId: string }>;
  /** A `/ruriko …` chat query, answered from this state (no snapshot, no engine: audit, trace and agent queries only). */
  ask(query: string): Promise<string>;
  close(): void;
}

export function rurikoJournal(acp: AcpClient): RurikoJournal {
  const stateDir = mkdtempSync(join(tmpdir(), "ruriko-journal-"));
  const state = openState(stateDir);
  const reporter = new StatusReporter({ room: STATUS_ROOM, outbox: state.outbox });
  const log = createLogger({ level: "silent", pretty: false });
  let collections = 0;
  const noEngine = new Proxy({} as Runtime, {
    get: () => {
      throw new Error("these queries do not reach the engine");
    },
  });
  const sources = querySourcesFor({ state, snapshot: () => undefined, runtime: noEngine });
  return {
    stateDir,
    state,
    async collect(ep) {
      const traceId = `collect-${++collections}`;
      const status = await acp.status(ep, traceId);
      return collectAgentEvents(
        {
          acp,
          audit: state.audit,
          cursors: state.eventCursors,
          transaction: state.transaction,
          now: () => new Date(),
          onDecision: (agent, event) => void reporter.report(describeChange({ agent, traceId: event.traceId, what: "decision", event })),
        },
        ep,
        status.events?.last,
        traceId,
        log,
      );
    },
    statusLines: () => state.outbox.pending(STATUS_ROOM, 0, 10_000).map((m) => ({ text: m.line?.text ?? m.body, traceId: m.traceId })),
    async ask(query) {
      const reply = await answerQuery(sources, query);
      if (!reply) throw new Error(`not a query: ${query}`);
      return reply.body;
    },
    close() {
      state.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
