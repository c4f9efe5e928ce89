/**
 * Who wrote a change, according to a git source: the authors of the commits since the change's starting point
 * was applied that touched the file defining its object — and, for a change of an agent, any of the agent's files
 * (switching an agent to another, older Gosuto is written in the Agent's file) — or any file, for an object the
 * revision removed. With them, an approver cannot approve their own change (approvals/gate.ts, selfApprovers).
 */
import { posix } from "node:path";
import type { ObjectKey } from "../api/kinds.ts";
import type { Snapshot } from "../api/snapshot.ts";
import type { ProposedChange } from "../approvals/gate.ts";
import type { ChangeAuthor } from "../store/approval-store.ts";
import { agentFilesOf, changeAuthors } from "./git-history.ts";

export interface GitAuthorsOptions {
  /** The checkout of the manifests repository, and the manifests' sub-path in it. */
  workDir: string;
  path: string;
  /** The snapshot the change was planned from (the one in force). */
  snapshot: () => Snapshot | undefined;
  /**
   * Where a change starts: the revision its agent last converged at, or its policy was put in force at; null when
   * unknown (then: the newest commit touching its file).
   */
  appliedRevisions: { agent(name: string): string | null; policy(name: string): string | null };
}

export function gitChangeAuthors(o: GitAuthorsOptions): (change: ProposedChange, revision: string) => Promise<ChangeAuthor[]> {
  return async (change, revision) => {
    // A secret's deletion or rotation is asked on the command line, not written in the repository.
    if (change.subject.kind === "Secret") return [];
    const snapshot = o.snapshot();
    const file = snapshot?.objects.get(change.binding.objectKey as ObjectKey)?.source.file;
    const { agent } = change.binding;
    const paths = new Set(agent && snapshot ? agentFilesOf(snapshot, agent, o.path) : []);
    if (file) paths.add(posix.join(o.path, file));
    const since = agent ? o.appliedRevisions.agent(agent) : change.subject.kind === "ApprovalPolicy" ? o.appliedRevisions.policy(change.subject.name) : null;
    return changeAuthors(o.workDir, { paths: [...paths].sort(), since, until: revision });
  };
}
