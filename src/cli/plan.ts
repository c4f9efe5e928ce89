import { openDockerClient } from "../runtime/docker-client.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { formatManifestError } from "../api/errors.ts";
import { loadSnapshotFromDirectory } from "../api/load.ts";
import type { ImageObservation } from "../controller/image-move.ts";
import { imageMovesFor } from "../controller/image-observer.ts";
import { planFromState } from "../controller/plan-from-state.ts";
import { renderPlanMarkdown, renderPlanText } from "../controller/plan-report.ts";
import { DockerRuntime } from "../runtime/docker-runtime.ts";
import type { ObservedContainer } from "../runtime/runtime.ts";
import { openState, STATE_DB_FILE } from "../store/state.ts";

export type PlanOutput = "text" | "markdown" | "json";

/** Prints what `serve` would do now. Exit 0 with a plan, 1 when the manifests are invalid, 2 when the engine cannot be read. */
export async function runPlan(opts: { manifests: string; stateDir: string; output: PlanOutput }): Promise<number> {
  const snapshot = await loadSnapshotFromDirectory(opts.manifests);
  if (snapshot.errors.length > 0) {
    if (opts.output === "json") console.log(JSON.stringify({ valid: false, errors: snapshot.errors.map((e) => ({ ...e, text: formatManifestError(e) })) }, null, 2));
    else {
      console.log(opts.output === "markdown" ? "### Ruriko plan\n\nThe manifests do not validate; nothing would be applied:\n" : "The manifests do not validate; nothing would be applied:");
      for (const e of snapshot.errors) console.log(opts.output === "markdown" ? `- \`${formatManifestError(e)}\`` : `  ${formatManifestError(e)}`);
    }
    return 1;
  }
  // Without a state database this installation has created nothing yet: nothing to observe or prune.
  const hasState = existsSync(join(opts.stateDir, STATE_DB_FILE));
  const state = hasState ? openState(opts.stateDir) : undefined;
  try {
    let observed: ObservedContainer[] = [];
    let imageMoves: Map<string, ImageObservation> | undefined;
    if (state) {
      const runtime = new DockerRuntime({ docker: await openDockerClient(), instance: state.instance });
      if (!(await runtime.ping())) {
        console.error("cannot plan: the Docker engine does not answer");
        return 2;
      }
      observed = await runtime.list();
      imageMoves = await imageMovesFor(runtime, snapshot, observed, (agent) => state.inventory.get(agent));
    }
    const report = planFromState(snapshot, observed, state, imageMoves);
    if (opts.output === "json") console.log(JSON.stringify(report, null, 2));
    else process.stdout.write(opts.output === "markdown" ? renderPlanMarkdown(report) : renderPlanText(report));
    return 0;
  } finally {
    state?.close();
  }
}
