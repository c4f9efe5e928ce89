/**
 * Collecting an agent's decision journal (GET /events) into the audit log: pure steps, so that the rules — when
 * to fetch at all, what a gap or a replaced journal looks like, what an entry holds — are tested without an
 * agent. agent-sync.ts does the I/O around them.
 *
 * Idle costs nothing: Ruriko polls /status anyway, and only a moved `events.last` leads to a fetch. What an
 * agent reports is its own claim (its tool servers share the volume the journal is on): entries are filed
 * under `agent:<name>`, never as Ruriko's own observations, and their strings are cut to a bounded length.
 */
import type { AcpEvent, AcpEvents } from "../api/generated/types.ts";
import type { EventCursor } from "../store/agent-event-cursor-store.ts";
import type { AuditEntry } from "../store/audit-log.ts";

export type AuditInput = Omit<AuditEntry, "id" | "ts"> & { ts?: string };

/** Where the next GET /events starts. reset: the journal is another one; the cursor starts over. */
export interface EventsFetch {
  after: number;
  reset?: string;
}

/** One page per request, at the route's maximum: a collector behind by a full journal catches up in a few. */
export const EVENTS_PAGE = 500;
/** A reconcile reads at most this many pages; the rest waits for the next poll (the journal holds 2×keep). */
export const EVENTS_MAX_PAGES = 8;

/** Decisions people hear of in the status room; the rest is in the audit log only. */
const REPORTED: ReadonlySet<AcpEvent["kind"]> = new Set(["tool.denied", "tool.waiting", "tool.approved", "tool.rejected", "tool.expired", "limit.reached"]);
const REFUSED: ReadonlySet<AcpEvent["kind"]> = new Set(["tool.denied", "tool.rejected", "tool.expired"]);

const STRING_MAX = 500;
const TRACE_MAX = 128;

export const isReported = (e: AcpEvent): boolean => REPORTED.has(e.kind);

/** Names one event of one journal: a journal that holds another event at the same seq is another journal. */
export const anchorOf = (e: AcpEvent): string => `${e.at} ${e.traceId}`;

/**
 * Whether to fetch, and from where; undefined when nothing moved (the idle case) or the agent keeps no
 * journal. With an anchor, asks from the cursor's own event, to check it is still the same journal.
 */
export function planFetch(last: number | undefined, cursor: EventCursor | undefined): EventsFetch | undefined {
  if (last === undefined) return undefined;
  const seq = cursor?.seq ?? 0;
  if (last === seq) return undefined;
  if (last < seq) return { after: 0, reset: `the journal went back from ${seq} to ${last} (a new data volume)` };
  return { after: seq > 0 && cursor?.anchor ? seq - 1 : seq };
}

/** An event as an audit entry: the event's own time and trace, its fields but seq, at and traceId. */
export function auditOfEvent(agent: string, e: AcpEvent): AuditInput {
  const { seq: _seq, at, traceId, ...fields } = e;
  const payload = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, typeof v === "string" ? v.slice(0, STRING_MAX) : v]));
  return {
    ts: at,
    traceId: traceId.slice(0, TRACE_MAX),
    actor: `agent:${agent}`,
    action: `agent.${e.kind}`,
    target: `Agent/${agent}`,
    payload,
    result: e.kind === "schedule.failed" ? "error" : REFUSED.has(e.kind) ? "refused" : "info",
  };
}

export interface CollectedPage {
  /** To append, in order, in one transaction with the new cursor. */
  entries: AuditInput[];
  cursor: EventCursor;
  /** The events for the status room. */
  reported: AcpEvent[];
  /** The next request of this collection, if there is more to read. */
  next?: EventsFetch;
}

/**
 * One page of GET /events against the cursor. Events at or before the cursor are skipped (the overlap asked for,
 * or an agent repeating itself); seqs that are missing — dropped by compaction before Ruriko read them, or lines
 * lost in a crash — become one entry saying how many. A page whose first event contradicts the cursor's anchor
 * comes from another journal: nothing is written, and the next fetch starts that journal from the beginning.
 */
export function collectPage(agent: string, cursor: EventCursor, fetch: EventsFetch, page: AcpEvents, traceId: string): CollectedPage {
  const entries: AuditInput[] = [];
  let base = cursor;
  if (fetch.reset) {
    entries.push({ traceId, actor: "controller", action: "agent.events.reset", target: `Agent/${agent}`, payload: { reason: fetch.reset, from: cursor.seq, last: page.last }, result: "info" });
    base = { seq: 0, anchor: null };
  } else if (base.anchor && fetch.after < base.seq) {
    const at = page.events.find((e) => e.seq === base.seq);
    if (at && anchorOf(at) !== base.anchor) return { entries: [], cursor, reported: [], next: { after: 0, reset: `the journal holds another event at ${base.seq} (a new data volume)` } };
  }

  let seq = base.seq;
  let anchor = base.anchor;
  let lost = 0;
  let fresh = 0;
  const reported: AcpEvent[] = [];
  for (const e of page.events) {
    if (e.seq <= seq) continue;
    lost += e.seq - seq - 1;
    entries.push(auditOfEvent(agent, e));
    if (isReported(e)) reported.push(e);
    seq = e.seq;
    anchor = anchorOf(e);
    fresh++;
  }
  // Nothing after the cursor although the agent counts further: those events are gone (else every poll would
  // fetch again for them).
  if (fresh === 0 && page.last > seq) {
    lost += page.last - seq;
    seq = page.last;
    anchor = null;
  }
  const caughtUp = fresh === 0 || seq >= page.last;
  if (lost > 0) {
    const gap = { traceId, actor: "controller", action: "agent.events.lost", target: `Agent/${agent}`, payload: { after: base.seq, first: page.first, last: page.last, lost }, result: "error" } as const;
    entries.splice(fetch.reset ? 1 : 0, 0, gap);
  }
  return { entries, cursor: { seq, anchor }, reported, ...(caughtUp ? {} : { next: { after: seq } }) };
}

/** The audit entries of the collection itself (a gap, a replaced journal), beside the agent's own. */
const isCollectionEntry = (e: Pick<AuditEntry, "action">): boolean => e.action === "agent.events.lost" || e.action === "agent.events.reset";

/** True for an entry an agent reported, or one about collecting its journal. */
export const isDecisionEntry = (e: Pick<AuditEntry, "actor" | "action">): boolean => e.actor.startsWith("agent:") || isCollectionEntry(e);

/** The order in which an event's fields are told; anything else follows. */
const DETAIL_ORDER = ["rule", "limit", "reason", "approval", "sender", "room", "gateway", "size", "argsDigest", "lost", "after", "first", "last", "from"];

/**
 * An agent decision's payload in a few words ("fetch.fetch_markdown rule=deny-everything-else"), for audit
 * listings; empty for any other entry, whose listing stays as it was.
 */
export function decisionDetail(e: Pick<AuditEntry, "actor" | "action" | "payload">): string {
  if (!isDecisionEntry(e)) return "";
  const p = e.payload;
  const words: string[] = [];
  if (typeof p.tool === "string") words.push(typeof p.mcp === "string" ? `${p.mcp}.${p.tool}` : p.tool);
  const keys = [...DETAIL_ORDER, ...Object.keys(p).filter((k) => !DETAIL_ORDER.includes(k)).sort()];
  for (const key of keys) {
    if (key === "tool" || key === "mcp" || key === "kind") continue;
    const value = p[key];
    if (value === undefined || value === null || typeof value === "object") continue;
    const text = String(value).replace(/\s+/g, " ");
    words.push(`${key}=${key === "argsDigest" ? text.replace(/^sha256:/, "").slice(0, 12) : text.slice(0, 80)}`);
  }
  return words.join(" ");
}

/** One line per decision, newest first: "2025-… tool.denied fetch.fetch_markdown rule=… trace 3f2a…". */
export function decisionLines(entries: readonly AuditEntry[]): string[] {
  return entries.map((e) => [e.ts, e.action.replace(/^agent\./, "").padEnd(16), decisionDetail(e), `trace ${e.traceId}`].filter((w) => w !== "").join("  "));
}
