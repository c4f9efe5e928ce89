/** Secret deletion and rotation through the gate, on a real state database (policies in force, requests, staging). */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { ApprovalPolicyManifest } from "../../../src/api/generated/types.ts";
import { Gatekeeper } from "../../../src/approvals/gatekeeper.ts";
import { generateMasterKeyText } from "../../../src/secrets/crypto.ts";
import { proposeSecretChange, reconcileSecret, type SecretChangeDeps } from "../../../src/secrets/secret-changes.ts";
import { openVault } from "../../../src/secrets/vault.ts";
import { openState } from "../../../src/store/state.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const guard = { apiVersion: "ruriko.dev/v1alpha1", kind: "ApprovalPolicy", metadata: { name: "guard" }, spec: { room: "!r:hs", approvers: ["@alice:hs"], quorum: 1, ttl: "1h", remindBefore: "10m", rules: [{ match: { kind: "Secret", operation: "rotate", names: ["k"] }, require: "approval" }] } } as unknown as ApprovalPolicyManifest;

function setup() {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-secret-changes-"));
  dirs.push(dir);
  const state = openState(dir);
  const vault = openVault(state, { stateDir: dir, env: { RURIKO_MASTER_KEY: generateMasterKeyText() } });
  state.policies.put(guard, "sha256:guard", "r1");
  const deps: SecretChangeDeps = { secrets: vault.secrets, approvals: state.approvals, audit: state.audit, gatekeeper: new Gatekeeper({ approvals: state.approvals, audit: state.audit, policies: () => state.policies.manifests() }), transaction: state.transaction };
  return { state, vault, deps };
}

describe("secret changes through the gate", () => {
  test("a rotation the policy in force gates waits, value aside; approved, it is carried out; a newer one replaces it", async () => {
    const { state, vault, deps } = setup();
    vault.secrets.set("k", Buffer.from("one"));
    vault.secrets.set("free", Buffer.from("one"));
    const free = await proposeSecretChange(deps, "free", { operation: "rotate", value: Buffer.from("two") }, "cli:t", "t0");
    assert.deepEqual([free.outcome, free.outcome === "applied" && free.info?.version], ["applied", 2], "no rule: a rotation goes at once");

    const first = await proposeSecretChange(deps, "k", { operation: "rotate", value: Buffer.from("two") }, "cli:t", "t1");
    assert.equal(first.outcome, "parked");
    assert.equal(vault.secrets.reveal("k")?.value.toString(), "one");
    const second = await proposeSecretChange(deps, "k", { operation: "rotate", value: Buffer.from("three") }, "cli:t", "t2");
    assert.ok(second.outcome === "parked" && first.outcome === "parked");
    assert.notEqual(second.request.id, first.request.id);
    assert.equal(state.approvals.get(first.request.id)!.status, "superseded", "the newer value replaces the one waiting");

    state.approvals.vote(second.request.id, { approver: "@alice:hs", decision: "approve", source: "m" });
    await reconcileSecret(deps, "k", "controller", "t3");
    assert.deepEqual([vault.secrets.info("k")?.version, vault.secrets.reveal("k")?.value.toString()], [2, "three"]);
    assert.equal(state.approvals.get(second.request.id)!.status, "applied");
    assert.equal(vault.secrets.staged("k"), undefined);
    state.close();
  });

  test("a denied rotation's value is dropped; a denied deletion asked again is a new request; an approved one is carried out once", async () => {
    const { state, vault, deps } = setup();
    vault.secrets.set("k", Buffer.from("one"));
    const rotation = await proposeSecretChange(deps, "k", { operation: "rotate", value: Buffer.from("two") }, "cli:t", "t1");
    assert.ok(rotation.outcome === "parked");
    state.approvals.vote(rotation.request.id, { approver: "@alice:hs", decision: "deny", source: "m" });
    await reconcileSecret(deps, "k", "controller", "t2");
    assert.equal(vault.secrets.staged("k"), undefined, "nobody waits for that value any more");

    const del = await proposeSecretChange(deps, "k", { operation: "delete" }, "cli:t", "t3");
    assert.ok(del.outcome === "parked");
    assert.deepEqual(del.request.approvers, ["@alice:hs"], "the first policy in force decides deletions");
    state.approvals.vote(del.request.id, { approver: "@alice:hs", decision: "deny", source: "m" });
    const again = await proposeSecretChange(deps, "k", { operation: "delete" }, "cli:t", "t4");
    assert.ok(again.outcome === "parked" && again.request.id !== del.request.id, "asking again is proposing again");
    state.approvals.vote(again.request.id, { approver: "@alice:hs", decision: "approve", source: "m" });
    await reconcileSecret(deps, "k", "controller", "t5");
    assert.equal(vault.secrets.info("k"), undefined);
    assert.equal(state.approvals.get(again.request.id)!.status, "applied");
    await reconcileSecret(deps, "k", "controller", "t6");
    assert.equal(state.audit.tail(50).filter((e) => e.action === "secret.delete").length, 1);
    state.close();
  });

  test("an approval that expired before it was carried out changes nothing", async () => {
    const { state, vault, deps } = setup();
    vault.secrets.set("k", Buffer.from("one"));
    const rotation = await proposeSecretChange(deps, "k", { operation: "rotate", value: Buffer.from("two") }, "cli:t", "t1");
    assert.ok(rotation.outcome === "parked");
    state.approvals.vote(rotation.request.id, { approver: "@alice:hs", decision: "approve", source: "m" });
    state.approvals.expireDue(new Date(Date.now() + 3 * 3_600_000));
    await reconcileSecret(deps, "k", "controller", "t2");
    assert.equal(vault.secrets.reveal("k")?.value.toString(), "one");
    assert.equal(state.approvals.get(rotation.request.id)!.status, "expired");
    state.close();
  });
});
