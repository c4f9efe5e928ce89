import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface MetricsSources {
  collectAgents: () => Array<{ condition: string; status: string; count: number }>;
  collectPendingApprovals: () => number;
}

/** How often the event-loop lag (nodejs_eventloop_lag_*_seconds) is sampled. */
export const EVENT_LOOP_SAMPLE_MS = 1000;

/** Prometheus metrics of one controller, on a registry of its own (tests run several side by side). */
export class ControllerMetrics {
  readonly registry = new Registry();
  readonly reconcileDuration: Histogram<"result">;
  readonly reconcilesTotal: Counter<"result">;
  readonly queueDepth: Gauge;
  readonly snapshotsTotal: Counter<"outcome">;
  readonly lastAppliedTimestamp: Gauge;
  /** Filled at scrape time from `collectAgents`. */
  readonly agentsByCondition: Gauge<"condition" | "status">;
  /** Filled at scrape time from `collectPendingApprovals`. */
  readonly pendingApprovals: Gauge;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    this.reconcileDuration = new Histogram({
      name: "ruriko_reconcile_duration_seconds",
      help: "Time of one reconcile of one agent.",
      labelNames: ["result"],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.reconcilesTotal = new Counter({ name: "ruriko_reconcile_total", help: "Reconciles by result.", labelNames: ["result"], registers });
    this.queueDepth = new Gauge({ name: "ruriko_queue_depth", help: "Agents waiting for or in a reconcile.", registers });
    this.snapshotsTotal = new Counter({ name: "ruriko_snapshots_total", help: "Snapshots from the source by outcome.", labelNames: ["outcome"], registers });
    this.lastAppliedTimestamp = new Gauge({ name: "ruriko_last_applied_revision_timestamp_seconds", help: "When the revision in force was accepted.", registers });
    this.agentsByCondition = new Gauge({
      name: "ruriko_agents",
      help: "Agents by condition and status.",
      labelNames: ["condition", "status"],
      registers,
      collect() {
        this.reset();
        for (const { condition, status, count } of sources.collectAgents()) this.labels(condition, status).set(count);
      },
    });
    this.pendingApprovals = new Gauge({
      name: "ruriko_pending_approvals",
      help: "Approval requests waiting for a decision.",
      registers,
      collect() {
        this.set(sources.collectPendingApprovals());
      },
    });
    // The event-loop lag histogram samples on a timer: prom-client's 10 ms default woke the process 100 times a
    // second, most of serve's idle CPU. Once a second still catches every stall longer than that.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  }

  /** One reconcile of one agent ended: its time and result, and the queue's depth after it. */
  reconciled(result: "success" | "error", durationMs: number, queueDepth: number): void {
    this.reconcileDuration.labels(result).observe(durationMs / 1000);
    this.reconcilesTotal.labels(result).inc();
    this.queueDepth.set(queueDepth);
  }

  /** A snapshot from the source was applied or rejected. */
  snapshotTaken(outcome: "applied" | "rejected", nowMs = Date.now()): void {
    this.snapshotsTotal.labels(outcome).inc();
    if (outcome === "applied") this.lastAppliedTimestamp.set(nowMs / 1000);
  }

  /**
   * Registers `ruriko_kubernetes_requests_total` (serve on Kubernetes only: on Docker it would read as "no calls")
   * and returns what counts one request.
   */
  kubernetesRequestCounter(): (request: { verb: string; resource: string }) => void {
    const counter = new Counter({
      name: "ruriko_kubernetes_requests_total",
      help: "Requests and watches sent to the Kubernetes API server, by verb and resource (as the API server names them).",
      labelNames: ["verb", "resource"],
      registers: [this.registry],
    });
    return ({ verb, resource }) => counter.labels(verb, resource).inc();
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
