/**
 * limits.maxMonthlyCostUSD when the model's reply carries no `usage`: such a request is charged at an upper bound
 * (a token per UTF-8 byte sent; the token cap, or a token per byte received), counted apart, said in the budget's
 * notice and warned of once a month — never free.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { AgentLimits, type LimitsConfig } from "../../../src/gitai/limits/limits.ts";
import type { Logger } from "../../../src/observability/logger.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const T0 = Date.UTC(2026, 10, 30, 13, 4, 20);
const DECEMBER = Date.UTC(2026, 11, 1);
/** A dollar per million tokens either way: the cost in micro-dollars is the token count. */
const pricing = { inputPerMTok: 1, outputPerMTok: 1 };

function agent(config: LimitsConfig, file = join(volume(), "spend.json"), start = T0) {
  const clock = { t: start };
  const warnings: string[] = [];
  const logger: Pick<Logger, "warn"> = { warn: ((_fields: unknown, msg?: string) => void warnings.push(String(msg))) as Logger["warn"] };
  return { limits: new AgentLimits({ config, now: () => clock.t, spendFile: file, logger }), clock, warnings, file };
}
function volume() {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-unreported-"));
  dirs.push(dir);
  return dir;
}
const spent = (limits: AgentLimits) => limits.status().find((s) => s.name === "maxMonthlyCostUSD")?.used;
const saved = (file: string) => JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;

/** A request as the turn sends it, and a reply as the model client returns it. */
const sent = { messages: [{ role: "user", content: "Résumé, s'il vous plaît: 日本" }], tools: [{ type: "function", function: { name: "web__http_get" } }] };
const received = { text: "Voilà.", toolCalls: [], finishReason: "stop" };
const bytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v), "utf8");

describe("a reply without usage under a budget", () => {
  test("with limits.maxTokensPerRequest: a prompt token per byte sent, the cap's worth of completion tokens", () => {
    const { limits, file } = agent({ limits: { maxMonthlyCostUSD: 10, maxTokensPerRequest: 800 }, pricing });
    limits.recordUnreported({ sent, received });
    // Bytes, not characters: é and 日本 take more than one byte each, and a token never takes less than one.
    assert.ok(bytes(sent) > JSON.stringify(sent).length);
    assert.equal(spent(limits), (bytes(sent) + 800) / 1e6);
    assert.deepEqual(saved(file), { month: "2026-11", usd: (bytes(sent) + 800) / 1e6, requests: 1, estimated: 1 });
    // /status says how many of the month's requests were priced at the bound.
    assert.equal(limits.status().find((s) => s.name === "maxMonthlyCostUSD")?.estimated, 1);
  });

  test("without a token cap: a completion token per byte of the reply", () => {
    const { limits } = agent({ limits: { maxMonthlyCostUSD: 10 }, pricing });
    limits.recordUnreported({ sent, received });
    assert.equal(spent(limits), (bytes(sent) + bytes(received)) / 1e6);
  });

  test("such requests fill the budget like any other, and the notice says how many were estimated", () => {
    // US$1 per prompt byte: the first estimated request alone crosses a one-dollar budget.
    const { limits } = agent({ limits: { maxMonthlyCostUSD: 1 }, pricing: { inputPerMTok: 1e6, outputPerMTok: 0 } });
    assert.deepEqual(limits.admitRequest(), { ok: true });
    limits.recordUnreported({ sent, received });
    const refused = limits.admitRequest();
    assert.ok(!refused.ok && refused.notice, "the budget refuses the next request");
    assert.equal(refused.limit, "maxMonthlyCostUSD");
    assert.match(refused.notice.text, /^The monthly budget was reached: US\$\d+\.\d\d of US\$1\.00 spent \(limits\.maxMonthlyCostUSD\)\. Of that, 1 request was priced at an upper bound: the model's provider reported no token usage\. It resets on 2026-12-01 at 00:00 UTC\.$/);
  });

  test("warned of once a month; the count survives a restart; a new month starts again", () => {
    const first = agent({ limits: { maxMonthlyCostUSD: 10 }, pricing });
    first.limits.recordUnreported({ sent, received });
    first.limits.recordUnreported({ sent, received });
    assert.deepEqual(first.warnings, ["the model's reply carried no token usage: this month's spend counts such requests at an upper bound"]);
    const second = agent({ limits: { maxMonthlyCostUSD: 10 }, pricing }, first.file, T0 + 60_000);
    second.limits.recordUnreported({ sent, received });
    assert.deepEqual(second.warnings, [], "not again after a restart in the same month");
    assert.equal(saved(first.file).estimated, 3);
    second.clock.t = DECEMBER;
    second.limits.recordUnreported({ sent, received });
    assert.equal(second.warnings.length, 1, "a new month warns again");
    assert.deepEqual([saved(first.file).month, saved(first.file).estimated], ["2026-12", 1]);
  });

  test("without pricing nothing can be priced: the request is counted at no cost, not as an estimate", () => {
    const { limits, file, warnings } = agent({});
    limits.recordUnreported({ sent, received });
    assert.deepEqual(saved(file), { month: "2026-11", usd: 0, requests: 1, estimated: 0 });
    assert.deepEqual(warnings, []);
  });

  test("a spend file written before estimates were counted reads as none estimated", () => {
    const file = join(volume(), "spend.json");
    writeFileSync(file, JSON.stringify({ month: "2026-11", usd: 2, requests: 4 }));
    const { limits, warnings } = agent({ limits: { maxMonthlyCostUSD: 10 }, pricing }, file);
    assert.equal(spent(limits), 2);
    assert.deepEqual(warnings, []);
    limits.recordUsage({ promptTokens: 0, completionTokens: 0 });
    assert.deepEqual(saved(file), { month: "2026-11", usd: 2, requests: 5, estimated: 0 });
  });
});
