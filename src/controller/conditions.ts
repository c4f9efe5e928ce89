import type { Condition, ConditionStatus, ConditionType } from "../store/agent-status-store.ts";

/**
 * Sets a condition, keeping its transition time when its status does not change (kstatus convention),
 * so "since when" stays true across the many reconciles that confirm the same state.
 */
export function setCondition(
  conditions: readonly Condition[],
  type: ConditionType,
  status: ConditionStatus,
  reason: string,
  message: string,
  now: string,
): Condition[] {
  const existing = conditions.find((c) => c.type === type);
  const lastTransitionTime = existing && existing.status === status ? existing.lastTransitionTime : now;
  const next = conditions.filter((c) => c.type !== type);
  next.push({ type, status, reason, message, lastTransitionTime });
  const order: ConditionType[] = ["Ready", "Reconciling", "Stalled", "AwaitingApproval"];
  return next.sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));
}

export function conditionOf(conditions: readonly Condition[], type: ConditionType): Condition | undefined {
  return conditions.find((c) => c.type === type);
}

export function isTrue(conditions: readonly Condition[], type: ConditionType): boolean {
  return conditionOf(conditions, type)?.status === "True";
}

/** The one-word summary `ruriko status` shows. */
export function phaseOf(conditions: readonly Condition[]): string {
  if (isTrue(conditions, "Stalled")) return "Stalled";
  if (isTrue(conditions, "AwaitingApproval")) return "AwaitingApproval";
  if (isTrue(conditions, "Ready")) return "Ready";
  if (isTrue(conditions, "Reconciling")) return "Reconciling";
  return conditionOf(conditions, "Ready")?.reason ?? "Unknown";
}

/** How many agents have each condition at each status: the `ruriko_agents` gauge, filled at scrape time. */
export function conditionCounts(statuses: Iterable<{ conditions: readonly Condition[] }>): Array<{ condition: ConditionType; status: ConditionStatus; count: number }> {
  const counts = new Map<string, { condition: ConditionType; status: ConditionStatus; count: number }>();
  for (const { conditions } of statuses) {
    for (const c of conditions) {
      const key = `${c.type}/${c.status}`;
      const seen = counts.get(key);
      if (seen) seen.count++;
      else counts.set(key, { condition: c.type, status: c.status, count: 1 });
    }
  }
  return [...counts.values()];
}
