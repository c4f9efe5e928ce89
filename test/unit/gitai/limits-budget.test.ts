/** limits.maxMonthlyCostUSD and the spend file behind it: cost from persona.pricing, months in UTC, restarts, and files that are missing, stale or broken. */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { AgentLimits, type LimitsConfig } from "../../../src/gitai/limits/limits.ts";
import { monthOf, nextMonthStart } from "../../../src/gitai/limits/spend-ledger.ts";
import type { Logger } from "../../../src/observability/logger.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** 2026-11-30 13:04:20 UTC */
const T0 = Date.UTC(2026, 10, 30, 13, 4, 20);
const DECEMBER = Date.UTC(2026, 11, 1);
const pricing = { inputPerMTok: 5, outputPerMTok: 15 };
const budget = (maxMonthlyCostUSD: number): LimitsConfig => ({ limits: { maxMonthlyCostUSD }, pricing });

function volume() {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-spend-"));
  dirs.push(dir);
  return dir;
}

/** An agent on `file`, with a clock the test moves and a logger that keeps its warnings. */
function agent(config: LimitsConfig, file: string, start = T0) {
  const clock = { t: start };
  const warnings: string[] = [];
  const logger: Pick<Logger, "warn"> = { warn: ((_fields: unknown, msg?: string) => void warnings.push(String(msg))) as Logger["warn"] };
  const limits = new AgentLimits({ config, now: () => clock.t, spendFile: file, logger });
  return { limits, clock, warnings };
}

const saved = (file: string) => JSON.parse(readFileSync(file, "utf8")) as unknown;
const spent = (limits: AgentLimits) => limits.status().find((s) => s.name === "maxMonthlyCostUSD")?.used;

describe("what a request costs", () => {
  test("prompt and completion tokens at persona.pricing, saved after every request", () => {
    const file = join(volume(), "spend.json");
    const { limits } = agent(budget(10), file);
    limits.recordUsage({ promptTokens: 1000, completionTokens: 500 });
    assert.equal(spent(limits), 0.0125); // 1000/1e6·5 + 500/1e6·15
    assert.deepEqual(saved(file), { month: "2026-11", usd: 0.0125, requests: 1, estimated: 0 });
    limits.recordUsage({ promptTokens: 2_000_000, completionTokens: 0 });
    assert.deepEqual(saved(file), { month: "2026-11", usd: 10.0125, requests: 2, estimated: 0 });
  });

  test("the file is replaced whole: no temporary file is left beside it", () => {
    const dir = volume();
    const { limits } = agent(budget(10), join(dir, "spend.json"));
    for (let i = 0; i < 5; i++) limits.recordUsage({ promptTokens: 10, completionTokens: 10 });
    assert.deepEqual(readdirSync(dir), ["spend.json"]);
  });

  test("without pricing and without a budget, requests are counted at no cost", () => {
    const file = join(volume(), "spend.json");
    const { limits } = agent({}, file);
    limits.recordUsage({ promptTokens: 1000, completionTokens: 1000 });
    assert.deepEqual(saved(file), { month: "2026-11", usd: 0, requests: 1, estimated: 0 });
    assert.deepEqual(limits.admitRequest(), { ok: true });
  });

  test("nonsense token counts cost nothing rather than poisoning the total", () => {
    const file = join(volume(), "spend.json");
    const { limits } = agent(budget(10), file);
    limits.recordUsage({ promptTokens: Number.NaN, completionTokens: -5 });
    assert.deepEqual(saved(file), { month: "2026-11", usd: 0, requests: 1, estimated: 0 });
  });
});

describe("limits.maxMonthlyCostUSD", () => {
  test("refused once this month's spend reaches the cap; one notice, then silence; rate windows untouched", () => {
    const file = join(volume(), "spend.json");
    const { limits, clock } = agent({ limits: { maxMonthlyCostUSD: 10, maxRequestsPerMinute: 100 }, pricing }, file);
    assert.deepEqual(limits.admitRequest(), { ok: true });
    limits.recordUsage({ promptTokens: 2_000_000, completionTokens: 0 }); // US$10.00
    const refused = limits.admitRequest();
    assert.deepEqual(refused, {
      ok: false,
      limit: "maxMonthlyCostUSD",
      resetsAt: "2026-12-01T00:00:00.000Z",
      notice: {
        limit: "maxMonthlyCostUSD",
        text: "The monthly budget was reached: US$10.00 of US$10.00 spent (limits.maxMonthlyCostUSD). It resets on 2026-12-01 at 00:00 UTC.",
        resetsAt: "2026-12-01T00:00:00.000Z",
      },
    });
    clock.t += 3_600_000;
    for (let i = 0; i < 5; i++) assert.deepEqual(limits.admitRequest(), { ok: false, limit: "maxMonthlyCostUSD", resetsAt: "2026-12-01T00:00:00.000Z", notice: undefined });
    const status = limits.status();
    assert.deepEqual(status.find((s) => s.name === "maxRequestsPerMinute")?.used, 0, "refused requests were not counted");
    assert.deepEqual(status.find((s) => s.name === "maxMonthlyCostUSD"), {
      name: "maxMonthlyCostUSD",
      limit: 10,
      used: 10,
      resetsAt: "2026-12-01T00:00:00.000Z",
      reachedAt: new Date(T0 + 3_600_000).toISOString(),
    });
  });

  test("the request that crosses the cap still runs: a month can end a little over", () => {
    const file = join(volume(), "spend.json");
    const { limits } = agent(budget(1), file);
    limits.recordUsage({ promptTokens: 190_000, completionTokens: 0 }); // US$0.95
    assert.deepEqual(limits.admitRequest(), { ok: true });
    limits.recordUsage({ promptTokens: 0, completionTokens: 100_000 }); // +US$1.50
    const refused = limits.admitRequest();
    assert.equal(refused.ok === false && refused.notice?.text, "The monthly budget was reached: US$2.45 of US$1.00 spent (limits.maxMonthlyCostUSD). It resets on 2026-12-01 at 00:00 UTC.");
    assert.equal(spent(limits), 2.45);
  });

  test("a restart keeps the month's spend", () => {
    const file = join(volume(), "spend.json");
    const first = agent(budget(10), file);
    first.limits.recordUsage({ promptTokens: 1_000_000, completionTokens: 100_000 }); // US$6.50
    const second = agent(budget(10), file, T0 + 60_000);
    assert.equal(spent(second.limits), 6.5);
    assert.equal(second.warnings.length, 0);
    second.limits.recordUsage({ promptTokens: 1_000_000, completionTokens: 0 }); // +US$5
    assert.equal(second.limits.admitRequest().ok, false);
    const third = agent(budget(10), file, T0 + 120_000);
    assert.equal(third.limits.admitRequest().ok, false, "still over after another restart");
    assert.deepEqual(saved(file), { month: "2026-11", usd: 11.5, requests: 2, estimated: 0 });
  });

  test("a new month (UTC) starts at zero, and its own fill gets its own notice", () => {
    const file = join(volume(), "spend.json");
    const { limits, clock } = agent(budget(1), file, DECEMBER - 1);
    limits.recordUsage({ promptTokens: 200_000, completionTokens: 0 }); // US$1
    const november = limits.admitRequest();
    assert.ok(november.ok === false && november.notice);
    clock.t = DECEMBER;
    assert.deepEqual(limits.admitRequest(), { ok: true });
    assert.equal(spent(limits), 0);
    assert.equal(limits.status().find((s) => s.name === "maxMonthlyCostUSD")?.resetsAt, "2027-01-01T00:00:00.000Z");
    limits.recordUsage({ promptTokens: 200_000, completionTokens: 0 });
    assert.deepEqual(saved(file), { month: "2026-12", usd: 1, requests: 1, estimated: 0 });
    const december = limits.admitRequest();
    assert.ok(december.ok === false && december.notice, "a new month's fill is announced again");
    assert.equal(december.notice.text, "The monthly budget was reached: US$1.00 of US$1.00 spent (limits.maxMonthlyCostUSD). It resets on 2027-01-01 at 00:00 UTC.");
  });

  test("a file from an earlier month is over: a start in a new month finds zero", () => {
    const file = join(volume(), "spend.json");
    writeFileSync(file, JSON.stringify({ month: "2026-10", usd: 99, requests: 40 }));
    const { limits, warnings } = agent(budget(10), file);
    assert.equal(spent(limits), 0);
    assert.deepEqual(limits.admitRequest(), { ok: true });
    assert.deepEqual(warnings, []);
  });

  test("a missing file, even a missing directory, is a first start: no warning, and the first request creates it", () => {
    const file = join(volume(), "data", "limits", "spend.json");
    const { limits, warnings } = agent(budget(10), file);
    assert.equal(spent(limits), 0);
    limits.recordUsage({ promptTokens: 1_000_000, completionTokens: 0 });
    assert.deepEqual(saved(file), { month: "2026-11", usd: 5, requests: 1, estimated: 0 });
    assert.deepEqual(warnings, []);
  });

  for (const [what, content] of [
    ["not JSON", "{\"month\": \"2026-11\", \"usd\": 12"],
    ["empty", ""],
    ["a string for the amount", JSON.stringify({ month: "2026-11", usd: "12", requests: 1 })],
    ["a negative amount", JSON.stringify({ month: "2026-11", usd: -1, requests: 1 })],
    ["a month that is no month", JSON.stringify({ month: "2026-13", usd: 1, requests: 1 })],
    ["more estimated requests than requests", JSON.stringify({ month: "2026-11", usd: 1, requests: 1, estimated: 2 })],
    ["an array", "[]"],
  ] as const) {
    test(`a corrupt file (${what}) is logged and replaced, never fatal`, () => {
      const file = join(volume(), "spend.json");
      writeFileSync(file, content);
      const { limits, warnings } = agent(budget(10), file);
      assert.deepEqual(warnings, ["the month's model spend file is corrupt; starting at 0"]);
      assert.equal(spent(limits), 0);
      assert.deepEqual(limits.admitRequest(), { ok: true });
      limits.recordUsage({ promptTokens: 1_000_000, completionTokens: 0 });
      assert.deepEqual(saved(file), { month: "2026-11", usd: 5, requests: 1, estimated: 0 });
    });
  }

  test("a spend file that cannot be read or written is logged; the budget is still kept in memory", () => {
    const file = join(volume(), "spend.json");
    mkdirSync(file); // a directory where the file should be
    const { limits, warnings } = agent(budget(10), file);
    assert.deepEqual(warnings, ["the month's model spend could not be read; starting at 0"]);
    limits.recordUsage({ promptTokens: 2_000_000, completionTokens: 0 });
    assert.deepEqual(warnings.slice(1), ["the month's model spend could not be saved; it is kept in memory"]);
    assert.equal(limits.admitRequest().ok, false);
    assert.deepEqual(readdirSync(join(file, "..")), ["spend.json"], "the temporary file was cleaned up");
  });

  test("a budget without persona.pricing refuses every request (fail closed) and says what is missing", () => {
    const file = join(volume(), "spend.json");
    const { limits } = agent({ limits: { maxMonthlyCostUSD: 10 } }, file);
    assert.deepEqual(limits.admitRequest(), {
      ok: false,
      limit: "maxMonthlyCostUSD",
      resetsAt: null,
      notice: {
        limit: "maxMonthlyCostUSD",
        text: "The monthly budget cannot be checked: limits.maxMonthlyCostUSD is set but persona.pricing is not, so I make no model requests.",
        resetsAt: null,
      },
    });
    assert.deepEqual(limits.admitRequest(), { ok: false, limit: "maxMonthlyCostUSD", resetsAt: null, notice: undefined });
    limits.reconfigure(budget(10));
    assert.deepEqual(limits.admitRequest(), { ok: true }, "pricing arrived");
    limits.reconfigure({ limits: { maxMonthlyCostUSD: 10 } });
    const again = limits.admitRequest();
    assert.ok(again.ok === false && again.notice, "pricing gone again: said again");
  });

  test("a raised cap gives room at once; lowering it below the spend refuses with a new notice", () => {
    const file = join(volume(), "spend.json");
    const { limits } = agent(budget(5), file);
    limits.recordUsage({ promptTokens: 1_000_000, completionTokens: 0 }); // US$5
    assert.ok(limits.admitRequest().ok === false);
    limits.reconfigure(budget(20));
    assert.deepEqual(limits.admitRequest(), { ok: true });
    limits.reconfigure(budget(4));
    const refused = limits.admitRequest();
    assert.ok(refused.ok === false);
    assert.equal(refused.notice?.text, "The monthly budget was reached: US$5.00 of US$4.00 spent (limits.maxMonthlyCostUSD). It resets on 2026-12-01 at 00:00 UTC.");
  });

  test("small budgets are shown to the precision they were set with", () => {
    const file = join(volume(), "spend.json");
    const { limits } = agent({ limits: { maxMonthlyCostUSD: 0.005 }, pricing: { inputPerMTok: 1, outputPerMTok: 1 } }, file);
    limits.recordUsage({ promptTokens: 5000, completionTokens: 300 });
    const refused = limits.admitRequest();
    assert.equal(refused.ok === false && refused.notice?.text, "The monthly budget was reached: US$0.0053 of US$0.0050 spent (limits.maxMonthlyCostUSD). It resets on 2026-12-01 at 00:00 UTC.");
  });
});

describe("months", () => {
  test("are calendar months in UTC, across a year's end", () => {
    assert.equal(monthOf(Date.UTC(2026, 11, 31, 23, 59, 59, 999)), "2026-12");
    assert.equal(monthOf(Date.UTC(2027, 0, 1)), "2027-01");
    assert.equal(new Date(nextMonthStart(Date.UTC(2026, 11, 15))).toISOString(), "2027-01-01T00:00:00.000Z");
    assert.equal(new Date(nextMonthStart(Date.UTC(2026, 1, 28, 23))).toISOString(), "2026-03-01T00:00:00.000Z");
  });
});
