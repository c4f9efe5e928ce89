/**
 * The Gosuto's cron gateways: one croner job per `gateways[]` entry of type cron, each calling `fire` at its
 * run times. What is fired (a turn, a post to the target room) is the caller's; this module only keeps time.
 *
 * Missed runs are not made up for. A schedule starts at its next run time after now, so nothing missed while the
 * agent was down runs at start. If the process stalls (a suspended host, a blocked event loop) past several
 * run times, croner notices one overdue run when it wakes, fires it once, and then looks for the next run
 * time after now. A run that comes due while the previous one is still going is skipped (croner's `protect`)
 * and logged: one agent does one scheduled task at a time, and a slow model must not pile up work.
 *
 * `apply` is called with every Gosuto; a gateway keeps its job (and its last run) while its definition is the
 * same, and is restarted only when it changed. A firing in progress when its gateway changes or goes finishes;
 * its outcome is no longer reported.
 */
import { Cron } from "croner";
import { digestOf } from "../../api/digest.ts";
import type { AcpGatewayState, Gateways } from "../../api/generated/types.ts";
import type { Logger } from "../../observability/logger.ts";
import { checkSchedule, cronOptions, DEFAULT_TIME_ZONE } from "./schedule.ts";

export { checkSchedule, checkTimeZone, DEFAULT_TIME_ZONE, nextRuns } from "./schedule.ts";

export type Gateway = Gateways[number];
export type GatewayStateName = "scheduled" | "running" | "failed" | "not supported";

export interface CronGatewaysOptions {
  /** Runs the gateway's prompt and posts the result. A rejection marks the gateway failed; its schedule stays. */
  fire: (gateway: Gateway) => Promise<void>;
  logger: Pick<Logger, "info" | "warn">;
  /** The clock for lastRunAt and nextRunAt; croner's timers keep real time. */
  now?: () => Date;
}

interface Entry {
  gateway: Gateway;
  digest: string;
  job: Cron | undefined;
  state: GatewayStateName;
  lastRunAt: string | null;
  lastError: string | null;
}

export class CronGateways {
  private readonly o: Required<CronGatewaysOptions>;
  /** In the Gosuto's order, for status(). */
  private entries: Entry[] = [];

  constructor(options: CronGatewaysOptions) {
    this.o = { now: () => new Date(), ...options };
  }

  /** Brings the jobs in line with `gateways`: unchanged ones keep running, changed ones restart, gone ones stop. */
  apply(gateways: readonly Gateway[] | undefined): void {
    const wanted = (gateways ?? []).map((gateway) => ({ gateway, digest: digestOf(gateway) }));
    const kept = new Map<string, Entry>();
    for (const entry of this.entries) {
      if (wanted.some((w) => w.gateway.name === entry.gateway.name && w.digest === entry.digest)) kept.set(entry.gateway.name, entry);
      else this.halt(entry, "gateway stopped");
    }
    this.entries = wanted.map(({ gateway, digest }) => kept.get(gateway.name) ?? this.start(gateway, digest));
  }

  status(): AcpGatewayState[] {
    return this.entries.map((entry) => ({
      name: entry.gateway.name,
      type: entry.gateway.type,
      state: entry.state,
      nextRunAt: iso(entry.job?.nextRun(this.o.now()) ?? null),
      lastRunAt: entry.lastRunAt,
      lastError: entry.lastError,
    }));
  }

  stop(): void {
    this.apply([]);
  }

  private start(gateway: Gateway, digest: string): Entry {
    const entry: Entry = { gateway, digest, job: undefined, state: "scheduled", lastRunAt: null, lastError: null };
    if (gateway.type !== "cron") {
      entry.state = "not supported";
      this.o.logger.warn({ gateway: gateway.name, type: gateway.type }, "gateway ignored: only cron gateways are implemented");
      return entry;
    }
    const problem = problemWith(gateway);
    if (problem) {
      entry.state = "failed";
      entry.lastError = problem;
      this.o.logger.warn({ gateway: gateway.name, err: problem }, "gateway cannot be scheduled");
      return entry;
    }
    entry.job = new Cron(
      gateway.schedule!.trim(),
      {
        ...cronOptions(gateway.timeZone ?? DEFAULT_TIME_ZONE),
        protect: () => this.o.logger.warn({ gateway: gateway.name }, "scheduled run skipped: the previous run is still going"),
        // The process is kept alive by its ACP server; a schedule alone never holds up an exit.
        unref: true,
      },
      () => this.run(entry),
    );
    this.o.logger.info({ gateway: gateway.name, nextRunAt: iso(entry.job.nextRun(this.o.now())) }, "gateway scheduled");
    return entry;
  }

  /** One firing. Awaited by croner, which is how `protect` knows the run is still going. */
  private async run(entry: Entry): Promise<void> {
    entry.state = "running";
    entry.lastRunAt = this.o.now().toISOString();
    this.o.logger.info({ gateway: entry.gateway.name }, "gateway fired");
    try {
      await this.o.fire(entry.gateway);
      entry.state = "scheduled";
      entry.lastError = null;
    } catch (error) {
      entry.state = "failed";
      entry.lastError = error instanceof Error ? error.message : String(error);
      this.o.logger.warn({ gateway: entry.gateway.name, err: entry.lastError }, "scheduled run failed");
    }
  }

  private halt(entry: Entry, message: string): void {
    if (!entry.job) return;
    entry.job.stop();
    this.o.logger.info({ gateway: entry.gateway.name }, message);
  }
}

/** Why a cron gateway cannot run, or undefined. Validation refuses all of these; Gitai says so rather than guess. */
export function problemWith(gateway: Gateway): string | undefined {
  if (!gateway.schedule) return "has no schedule";
  if (!gateway.prompt) return "has no prompt";
  if (!gateway.target) return "has no target room";
  return checkSchedule(gateway.schedule, gateway.timeZone ?? DEFAULT_TIME_ZONE);
}

function iso(date: Date | null): string | null {
  return date ? date.toISOString() : null;
}
