/** Cron gateways: what a schedule means (croner, in an explicit zone), and how CronGateways keeps time. */
import assert from "node:assert/strict";
import { afterEach, describe, mock, test } from "node:test";
import { setImmediate as settle } from "node:timers/promises";
import { checkSchedule, CronGateways, nextRuns, type Gateway } from "../../../src/gitai/gateways/cron-gateways.ts";

const at = (iso: string) => new Date(iso);
const isoRuns = (schedule: string, timeZone: string, from: string, n: number) => nextRuns(schedule, timeZone, at(from), n).map((d) => d.toISOString());

const cron = (name: string, schedule: string, extra: Partial<Gateway> = {}): Gateway => ({
  name,
  type: "cron",
  schedule,
  timeZone: "UTC",
  target: "!reports:example.org",
  prompt: "Report.",
  ...extra,
});

/** A logger that keeps its lines, and a fire that records and does what the test says. */
function harness(fire: (gateway: Gateway) => Promise<void> = async () => {}) {
  const lines: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
  const log = (level: string) => (fields: Record<string, unknown>, msg: string) => void lines.push({ level, msg, fields });
  const fired: string[] = [];
  const gateways = new CronGateways({
    fire: (gateway) => {
      fired.push(gateway.name);
      return fire(gateway);
    },
    logger: { info: log("info"), warn: log("warn") } as never,
  });
  return { gateways, fired, lines, state: (name: string) => gateways.status().find((s) => s.name === name)! };
}

describe("checkSchedule", () => {
  test("five fields, six with seconds in front, and the schema's aliases are schedules", () => {
    for (const schedule of ["0 * * * *", "*/5 9-17 * * MON-FRI", "30 0 9 * * *", "*/1 * * * * *", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually"]) {
      assert.equal(checkSchedule(schedule, "UTC"), undefined, schedule);
    }
  });

  test("bad expressions say why", () => {
    assert.match(checkSchedule("* * * *", "UTC")!, /^"\* \* \* \*" is not a schedule: .*five, six, or seven/);
    assert.match(checkSchedule("0 0 * * * * 2030", "UTC")!, /is not a schedule: .*5 or 6 parts/);
    assert.match(checkSchedule("61 * * * *", "UTC")!, /is not a schedule: Invalid value for minute: 61/);
    assert.match(checkSchedule("every hour", "UTC")!, /is not a schedule/);
    assert.match(checkSchedule("@midnight", "UTC")!, /the aliases are @hourly, @daily/);
    assert.match(checkSchedule("@reboot", "UTC")!, /the aliases are/);
    assert.equal(checkSchedule("0 0 30 2 *", "UTC"), '"0 0 30 2 *" never runs: no date matches it');
  });

  test("a time zone must be one the runtime knows", () => {
    assert.equal(checkSchedule("@daily", "Europe/Paris"), undefined);
    assert.match(checkSchedule("@daily", "Nowhere/Land")!, /^time zone "Nowhere\/Land" is not a time zone this runtime knows/);
    assert.match(checkSchedule("@daily", "")!, /^time zone is empty/);
  });
});

describe("nextRuns", () => {
  test("a daily time is read in the gateway's zone, across a daylight-saving change", () => {
    // Paris moves from UTC+1 to UTC+2 on 2026-03-29.
    assert.deepEqual(isoRuns("0 9 * * *", "Europe/Paris", "2026-03-28T12:00:00Z", 2), ["2026-03-29T07:00:00.000Z", "2026-03-30T07:00:00.000Z"]);
    assert.deepEqual(isoRuns("0 9 * * *", "UTC", "2026-03-28T12:00:00Z", 1), ["2026-03-29T09:00:00.000Z"]);
    assert.deepEqual(isoRuns("@daily", "America/New_York", "2026-01-10T12:00:00Z", 1), ["2026-01-11T05:00:00.000Z"]);
  });

  test("seconds in front; an invalid schedule has no runs", () => {
    assert.deepEqual(isoRuns("*/20 * * * * *", "UTC", "2026-01-01T00:00:00Z", 3), ["2026-01-01T00:00:20.000Z", "2026-01-01T00:00:40.000Z", "2026-01-01T00:01:00.000Z"]);
    assert.deepEqual(isoRuns("0 * * * *", "UTC", "2026-01-01T00:00:00Z", 2), ["2026-01-01T01:00:00.000Z", "2026-01-01T02:00:00.000Z"]);
    assert.deepEqual(isoRuns("nope", "UTC", "2026-01-01T00:00:00Z", 2), []);
  });
});

describe("CronGateways on a mocked clock", () => {
  afterEach(() => mock.timers.reset());
  const clockAt = (iso: string) => mock.timers.enable({ apis: ["setTimeout", "Date"], now: Date.parse(iso) });

  test("a start schedules only the next run time: nothing missed before it runs", async () => {
    clockAt("2026-01-01T00:00:30Z");
    const { gateways, fired, state } = harness();
    gateways.apply([cron("minutely", "* * * * *")]);
    assert.deepEqual(state("minutely"), { name: "minutely", type: "cron", state: "scheduled", nextRunAt: "2026-01-01T00:01:00.000Z", lastRunAt: null, lastError: null });
    mock.timers.tick(29_000);
    await settle();
    assert.deepEqual(fired, []);
    mock.timers.tick(1_000);
    await settle();
    assert.deepEqual(fired, ["minutely"]);
    assert.equal(state("minutely").lastRunAt, "2026-01-01T00:01:00.000Z");
    gateways.stop();
  });

  test("a process stalled past several run times fires once, not once per missed run", async () => {
    clockAt("2026-01-01T00:00:30Z");
    const { gateways, fired, state } = harness();
    gateways.apply([cron("minutely", "* * * * *")]);
    mock.timers.setTime(Date.parse("2026-01-01T00:10:45Z")); // ten run times pass without the timers running
    mock.timers.tick(1);
    await settle();
    assert.deepEqual(fired, ["minutely"]);
    assert.equal(state("minutely").nextRunAt, "2026-01-01T00:11:00.000Z");
    gateways.stop();
  });

  test("a run due while the previous one is still going is skipped and logged", async () => {
    clockAt("2026-01-01T00:00:00.500Z");
    let finish = () => {};
    const { gateways, fired, lines, state } = harness(() => new Promise<void>((resolve) => (finish = resolve)));
    gateways.apply([cron("busy", "* * * * * *")]);
    mock.timers.tick(500);
    await settle();
    assert.deepEqual(fired, ["busy"]);
    assert.equal(state("busy").state, "running");
    for (let i = 0; i < 3; i++) {
      mock.timers.tick(1_000);
      await settle();
    }
    mock.timers.tick(0); // croner tells `protect` on a zero timeout
    await settle();
    assert.deepEqual(fired, ["busy"]);
    assert.ok(lines.some((l) => l.level === "warn" && /skipped: the previous run is still going/.test(l.msg)));
    finish();
    await settle();
    assert.equal(state("busy").state, "scheduled");
    mock.timers.tick(1_000);
    await settle();
    assert.deepEqual(fired, ["busy", "busy"]);
    gateways.stop();
  });

  test("a firing that fails marks the gateway failed and keeps its schedule; the next success clears it", async () => {
    clockAt("2026-01-01T00:00:00.500Z");
    let fail = true;
    const { gateways, fired, state } = harness(async () => {
      if (fail) throw new Error("the model did not answer in time");
    });
    gateways.apply([cron("flaky", "* * * * * *")]);
    mock.timers.tick(500);
    await settle();
    assert.deepEqual(state("flaky"), {
      name: "flaky",
      type: "cron",
      state: "failed",
      nextRunAt: "2026-01-01T00:00:02.000Z",
      lastRunAt: "2026-01-01T00:00:01.000Z",
      lastError: "the model did not answer in time",
    });
    fail = false;
    mock.timers.tick(1_000);
    await settle();
    assert.equal(fired.length, 2);
    assert.equal(state("flaky").state, "scheduled");
    assert.equal(state("flaky").lastError, null);
    gateways.stop();
  });

  test("apply restarts only changed gateways, stops removed ones, and reports the rest", async () => {
    clockAt("2026-01-01T00:00:30Z");
    const { gateways, lines, state } = harness();
    gateways.apply([cron("a", "* * * * *"), cron("b", "* * * * *")]);
    mock.timers.tick(30_000);
    await settle();
    assert.equal(state("a").lastRunAt, "2026-01-01T00:01:00.000Z");
    assert.equal(state("b").lastRunAt, "2026-01-01T00:01:00.000Z");

    lines.length = 0;
    gateways.apply([
      cron("a", "* * * * *"),
      cron("b", "0 * * * *"),
      { name: "hook", type: "webhook" },
      cron("broken", "0 0 30 2 *"),
      cron("untargeted", "@daily", { target: undefined }),
    ]);
    assert.equal(state("a").lastRunAt, "2026-01-01T00:01:00.000Z", "unchanged: same job, same history");
    assert.deepEqual(state("b"), { name: "b", type: "cron", state: "scheduled", nextRunAt: "2026-01-01T01:00:00.000Z", lastRunAt: null, lastError: null });
    assert.deepEqual(state("hook"), { name: "hook", type: "webhook", state: "not supported", nextRunAt: null, lastRunAt: null, lastError: null });
    assert.deepEqual(state("broken"), { name: "broken", type: "cron", state: "failed", nextRunAt: null, lastRunAt: null, lastError: '"0 0 30 2 *" never runs: no date matches it' });
    assert.equal(state("untargeted").lastError, "has no target room");
    assert.deepEqual(lines.filter((l) => l.msg === "gateway stopped").map((l) => l.fields.gateway), ["b"]);
    assert.deepEqual(lines.filter((l) => l.msg === "gateway scheduled").map((l) => l.fields.gateway), ["b"]);

    gateways.apply([cron("a", "* * * * *")]);
    assert.deepEqual(gateways.status().map((s) => s.name), ["a"]);
    gateways.stop();
    assert.deepEqual(gateways.status(), []);
  });
});

describe("CronGateways on the real clock", () => {
  test("a schedule every second fires", async () => {
    let resolveFired: (name: string) => void = () => {};
    const firstFire = new Promise<string>((resolve) => (resolveFired = resolve));
    const { gateways } = harness(async (gateway) => resolveFired(gateway.name));
    gateways.apply([cron("every-second", "*/1 * * * * *")]);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => (timer = setTimeout(() => resolve("timed out"), 15_000)));
    try {
      assert.equal(await Promise.race([firstFire, timeout]), "every-second");
      assert.ok(gateways.status()[0]!.lastRunAt);
    } finally {
      clearTimeout(timer);
      gateways.stop();
    }
  });
});
