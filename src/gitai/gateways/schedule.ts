/**
 * Cron schedules as a Gosuto's `gateways[].schedule` and `timeZone` state them, read by croner. Pure: nothing
 * here starts a timer, so Ruriko's validation and Gitai's scheduler agree on what a schedule means.
 *
 * What is accepted: five fields (minute hour day-of-month month day-of-week), six with seconds in front, or one
 * of the aliases the schema lists. croner also reads its extensions (`L`, `W`, `#`, `?`, names like MON or JAN);
 * a seventh field (years) is refused, since the schema does not promise it.
 */
import { Cron, type CronOptions } from "croner";

export const DEFAULT_TIME_ZONE = "UTC";

/** The schema's aliases; croner knows a few more (@midnight), which the schema's pattern refuses anyway. */
const ALIASES = new Set(["@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually"]);

/** croner's options for a schedule: five or six fields, read in an explicit zone, never the host's. */
export function cronOptions(timeZone: string): CronOptions {
  return { mode: "5-or-6-parts", timezone: timeZone };
}

/** An error message for a zone Intl cannot use, or undefined. */
export function checkTimeZone(timeZone: string): string | undefined {
  if (timeZone.trim() === "") return "is empty; name an IANA time zone such as Europe/Paris, or leave it out for UTC";
  try {
    new Intl.DateTimeFormat("en", { timeZone });
    return undefined;
  } catch {
    return `"${timeZone}" is not a time zone this runtime knows; name an IANA time zone such as Europe/Paris or UTC`;
  }
}

/**
 * An error message for a schedule that cannot run (does not parse, or never comes round), or undefined when
 * it is valid. The zone is checked too, since a schedule only has run times in one.
 */
export function checkSchedule(schedule: string, timeZone: string = DEFAULT_TIME_ZONE): string | undefined {
  const zoneProblem = checkTimeZone(timeZone);
  if (zoneProblem) return `time zone ${zoneProblem}`;
  const text = schedule.trim();
  if (text.startsWith("@") && !ALIASES.has(text.toLowerCase())) {
    return `"${schedule}" is not a schedule: the aliases are ${[...ALIASES].join(", ")}`;
  }
  let job: Cron;
  try {
    job = new Cron(text, cronOptions(timeZone));
  } catch (error) {
    return `"${schedule}" is not a schedule: ${withoutPrefix(error)}`;
  }
  // A job without a function starts no timer; asking it for a run is the only way to find "Feb 30".
  if (job.nextRun() === null) return `"${schedule}" never runs: no date matches it`;
  return undefined;
}

/** The next `n` run times after `from`; none for a schedule `checkSchedule` refuses. */
export function nextRuns(schedule: string, timeZone: string, from: Date, n: number): Date[] {
  if (checkSchedule(schedule, timeZone) !== undefined) return [];
  return new Cron(schedule.trim(), cronOptions(timeZone)).nextRuns(n, from);
}

/** croner's messages start with the class that threw ("CronPattern: …"), which means nothing to a reader. */
function withoutPrefix(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^Cron[A-Za-z]*:\s*/, "");
}
