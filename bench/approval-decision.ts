/**
 * Approval decision → change applied, minus the change's own time. One agent whose image updates need approval
 * runs on real Docker; interleaved rounds of:
 *   - baseline: an ungated change of the same kind (env), snapshot → recreated and Ready: the change's own time;
 *   - decided: a gated image change, parked, then approved — by `ruriko approvals approve` in another process
 *     (the decision reaches serve through the state database's change feed), or in-process as a Matrix vote is —
 *     decision committed → recreated and Ready.
 * Also measured directly: decision committed → the controller starts carrying it out (its first engine call).
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { isAwaitingApproval, isReady, startTestController, TEST_AGENT_IMAGE } from "../test/helpers/controller-harness.ts";
import { writeTree } from "../test/helpers/manifest-tree.ts";
import { median, until } from "./timing.ts";

const ROUNDS = 7;
const CLI = join(import.meta.dirname, "../src/cli/ruriko.ts");
const TAGS = ["ruriko/gitai:bench-a", "ruriko/gitai:bench-b"];
const POLICY = `apiVersion: ruriko.dev/v1alpha1
kind: ApprovalPolicy
metadata: {name: default}
spec:
  room: "!approvals:localhost"
  approvers: ["@alice:localhost"]
  rules: [{match: {kind: Agent, operation: update, fields: [image]}, require: approval}]
`;
const manifest = (image: string, tz: string) =>
  `apiVersion: ruriko.dev/v1alpha1\nkind: Gosuto\nmetadata: {name: dec}\nspec: {}\n---\napiVersion: ruriko.dev/v1alpha1\nkind: Agent\nmetadata: {name: dec}\nspec: {image: "${image}", gosuto: dec, env: {TZ: "${tz}"}, resources: {memory: 128Mi}}\n`;

export async function benchDecision() {
  // No periodic polls of the agent during the measurement: only the change and the decision drive the work.
  const h = await startTestController({ agentPollMs: 600_000 });
  for (const tag of TAGS) {
    const [repo, version] = tag.split(":") as [string, string];
    await h.docker.getImage(TEST_AGENT_IMAGE).tag({ repo, tag: version });
  }
  // The controller's first engine call for a change it carries out: when it started acting on the decision.
  let firstEngineCallAt: number | undefined;
  const imageExists = h.runtime.imageExists.bind(h.runtime);
  h.runtime.imageExists = (image) => {
    firstEngineCallAt ??= Date.now();
    return imageExists(image);
  };
  const dir = writeTree({ "policy.yaml": POLICY, "dec.yaml": manifest(TAGS[0]!, "UTC") });
  const container = () => h.state.status.get("dec")?.containerId;
  const readyWith = (before: string | null | undefined) => () => isReady(h.state.status.get("dec")) && container() !== before;
  try {
    await h.offer(dir);
    await until(() => isReady(h.state.status.get("dec")));
    let image = 0;
    let round = 0;
    const own: number[] = [];
    const decided: Record<"cli" | "inProcess", { toApplied: number[]; toActing: number[] }> = { cli: { toApplied: [], toActing: [] }, inProcess: { toApplied: [], toActing: [] } };
    for (let r = 0; r < ROUNDS; r++) {
      // Baseline: the same kind of change, needing nobody.
      let before = container();
      writeFileSync(join(dir, "dec.yaml"), manifest(TAGS[image]!, `Etc/GMT-${++round % 12}`));
      const t0 = Date.now();
      await h.offer(dir);
      await until(readyWith(before));
      own.push(Date.now() - t0);

      for (const mode of ["cli", "inProcess"] as const) {
        image = 1 - image;
        writeFileSync(join(dir, "dec.yaml"), manifest(TAGS[image]!, `Etc/GMT-${round % 12}`));
        await h.offer(dir);
        await until(() => isAwaitingApproval(h.state.status.get("dec")));
        const request = h.state.approvals.list({ status: "pending", agent: "dec" })[0]!;
        before = container();
        firstEngineCallAt = undefined;
        if (mode === "cli") execFileSync(process.execPath, [CLI, "approvals", "approve", request.id, "--state-dir", h.stateDir], { stdio: "ignore" });
        else h.state.approvals.vote(request.id, { approver: "@alice:localhost", decision: "approve", source: "bench" });
        const at = Date.parse(h.state.approvals.get(request.id)!.decidedAt!);
        await until(readyWith(before));
        decided[mode].toApplied.push(Date.now() - at);
        decided[mode].toActing.push(firstEngineCallAt! - at);
      }
    }
    const summary = (m: { toApplied: number[]; toActing: number[] }) => ({
      decisionToAppliedMedianMs: median(m.toApplied),
      minusOwnTimeMedianMs: median(m.toApplied) - median(own),
      decisionToActingMedianMs: median(m.toActing),
      decisionToActingMaxMs: Math.max(...m.toActing),
    });
    return { rounds: ROUNDS, changeOwnTimeMedianMs: median(own), cli: summary(decided.cli), inProcess: summary(decided.inProcess), raw: { own, decided } };
  } finally {
    await h.stop();
    for (const tag of TAGS) await h.docker.getImage(tag).remove().catch(() => {});
  }
}
