import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { describeProgress, PullProgress } from "../../../src/runtime/pull-progress.ts";

const MIB = 1024 * 1024;

describe("pull progress", () => {
  test("sums the layers: done, bytes of the known total", () => {
    const p = new PullProgress(0, 5000);
    p.add({ status: "Pulling from team/agent", id: "v1" });
    p.add({ status: "Pulling fs layer", id: "a" });
    p.add({ status: "Already exists", id: "b" });
    p.add({ status: "Downloading", id: "a", progressDetail: { current: 5 * MIB, total: 20 * MIB } });
    assert.equal(describeProgress(p.summary()), "1/2 layers, 5.0 of 20.0 MiB");
    p.add({ status: "Download complete", id: "a" });
    assert.equal(describeProgress(p.summary()), "1/2 layers, 20.0 of 20.0 MiB, extracting", "downloaded, not yet extracted");
    p.add({ status: "Pull complete", id: "a" });
    p.add({ status: `Digest: sha256:${"c".repeat(64)}` });
    p.add({ status: "Status: Downloaded newer image for team/agent:v1" });
    assert.deepEqual(p.summary(), { layers: 2, layersDone: 2, bytes: 20 * MIB, totalBytes: 20 * MIB, digest: `sha256:${"c".repeat(64)}`, upToDate: false });
  });

  test("an image already up to date", () => {
    const p = new PullProgress(0, 5000);
    p.add({ status: "Status: Image is up to date for team/agent:v1" });
    assert.equal(p.summary().upToDate, true);
  });

  test("a line at most once per interval, however many messages come", () => {
    const p = new PullProgress(1000, 5000);
    const told: number[] = [];
    for (let t = 1000; t <= 21_000; t += 100) {
      p.add({ status: "Downloading", id: "a", progressDetail: { current: t, total: 30_000 } });
      if (p.due(t)) told.push(t);
    }
    assert.deepEqual(told, [6000, 11_000, 16_000, 21_000]);
  });

  test("an error in the stream is handed back", () => {
    const p = new PullProgress(0, 5000);
    assert.equal(p.add({ error: "x", errorDetail: { message: "unauthorized: authentication required" } }), "unauthorized: authentication required");
  });
});
