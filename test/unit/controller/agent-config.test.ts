import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { parseManifestFile } from "../../../src/api/parse.ts";
import { buildSnapshot } from "../../../src/api/snapshot.ts";
import type { AgentManifest } from "../../../src/api/generated/types.ts";
import type { GosutoManifest } from "../../../src/api/generated/types.ts";
import { desiredBindingsOf, desiredGosutoOf, desiredMatrixOf, matrixIdentityDigestOf, matrixTokenSecretOf, RESERVED_SECRET_NAMES, secretsDigestOf, agentRoomsOf } from "../../../src/controller/agent-config.ts";
import { localpartFor } from "../../../src/matrix/agent-accounts.ts";

const text = `apiVersion: ruriko.dev/v1alpha1
kind: Gosuto
metadata: {name: newsbot}
spec:
  persona: {systemPrompt: "summarise"}   # a comment
---
apiVersion: ruriko.dev/v1alpha1
kind: Agent
metadata: {name: newsbot}
spec: {image: "ruriko/gitai:dev", gosuto: newsbot}
---
apiVersion: ruriko.dev/v1alpha1
kind: SecretBinding
metadata: {name: newsbot-openai}
spec: {agent: newsbot, secret: openai-key, env: OPENAI_API_KEY}
---
apiVersion: ruriko.dev/v1alpha1
kind: SecretBinding
metadata: {name: other-openai}
spec: {agent: other, secret: openai-key}
`;

describe("what an agent should hold", () => {
  const parsed = parseManifestFile("a.yaml", Buffer.from(text));
  const snapshot = buildSnapshot({ objects: parsed.objects, errors: parsed.errors, files: ["a.yaml"] });
  const agent = snapshot.objects.get("Agent/newsbot")!.object as AgentManifest;

  test("the Gosuto YAML sent to the agent parses back to the same digest", () => {
    const desired = desiredGosutoOf(snapshot, agent)!;
    assert.equal(desired.digest, snapshot.objects.get("Gosuto/newsbot")!.digest);
    const [again] = parseManifestFile("sent.yaml", Buffer.from(desired.yaml)).objects;
    assert.equal(again!.digest, desired.digest);
    assert.equal((parse(desired.yaml) as { spec: { persona: { systemPrompt: string } } }).spec.persona.systemPrompt, "summarise");
  });

  test("only the bindings naming the agent", () => {
    assert.deepEqual(desiredBindingsOf(snapshot, "newsbot").map((b) => [b.binding, b.secret, b.env]), [["newsbot-openai", "openai-key", "OPENAI_API_KEY"]]);
  });

  test("the secrets digest moves with every version, revision and membership change, and ignores order", () => {
    const a = { name: "a", version: 1, revision: "r1" };
    const b = { name: "b", version: 3, revision: "r9" };
    assert.equal(secretsDigestOf([a, b]), secretsDigestOf([b, a]));
    const variants = [secretsDigestOf([a, b]), secretsDigestOf([a]), secretsDigestOf([]), secretsDigestOf([{ ...a, version: 2 }, b]), secretsDigestOf([{ ...a, revision: "r2" }, b])];
    assert.equal(new Set(variants).size, variants.length);
  });
});

describe("the Matrix identity an agent should hold", () => {
  const HS = "http://127.0.0.1:8008";
  const agentWith = (matrix: AgentManifest["spec"]["matrix"]): AgentManifest => ({ apiVersion: "ruriko.dev/v1alpha1", kind: "Agent", metadata: { name: "bot" }, spec: { image: "x", gosuto: "bot", ...(matrix ? { matrix } : {}) } });
  const token = { name: "agent.bot.matrix-token", version: 1, revision: "r1" };
  const active = { state: "active", userId: "@bot:hs", lastError: null };

  test("no spec.matrix: nothing, and nothing to complain about", () => {
    assert.deepEqual(desiredMatrixOf(agentWith(undefined), { homeserver: HS, account: undefined, token: undefined }), { identity: null });
  });

  test("a provisioned account: pending until active, the failure when one is recorded, then the identity", () => {
    const provisioned = agentWith({ provision: true });
    assert.equal(desiredMatrixOf(provisioned, { homeserver: undefined, account: active, token }).problem?.reason, "MatrixUnavailable");
    assert.equal(desiredMatrixOf(provisioned, { homeserver: HS, account: undefined, token: undefined }).problem?.reason, "MatrixAccountPending");
    const failed = desiredMatrixOf(provisioned, { homeserver: HS, account: { state: "registering", userId: null, lastError: "M_FORBIDDEN" }, token: undefined });
    assert.equal(failed.problem?.reason, "MatrixAccountFailed");
    assert.match(failed.problem!.message, /M_FORBIDDEN/);
    const ok = desiredMatrixOf(provisioned, { homeserver: HS, account: active, token });
    assert.deepEqual(ok, { identity: { homeserver: HS, userId: "@bot:hs", digest: matrixIdentityDigestOf(HS, "@bot:hs", token) } });
    const roomTrouble = desiredMatrixOf(provisioned, { homeserver: HS, account: { ...active, lastError: "cannot join !x" }, token });
    assert.ok(roomTrouble.identity, "a room it cannot get into does not take its identity away");
    assert.equal(roomTrouble.problem?.reason, "MatrixAccountFailed");
  });

  test("an existing account needs its token in the store, and says how to put it there", () => {
    const existing = agentWith({ userId: "@helper:hs" });
    const missing = desiredMatrixOf(existing, { homeserver: HS, account: undefined, token: undefined });
    assert.equal(missing.identity, null);
    assert.equal(missing.problem?.reason, "MatrixTokenMissing");
    assert.match(missing.problem!.message, /ruriko secret set agent\.bot\.matrix-token/);
    assert.equal(desiredMatrixOf(existing, { homeserver: HS, account: undefined, token }).identity?.userId, "@helper:hs");
  });

  test("where the token is: per account for a provisioned one (Ruriko's), per agent for an existing one (the operator's)", () => {
    assert.equal(matrixTokenSecretOf(agentWith({ provision: true }), { localpart: "bot.2" }), "matrix-account.bot.2.token");
    assert.equal(matrixTokenSecretOf(agentWith({ provision: true }), undefined), undefined);
    assert.equal(matrixTokenSecretOf(agentWith({ userId: "@bot:hs" }), undefined), "agent.bot.matrix-token");
    assert.equal(matrixTokenSecretOf(agentWith(undefined), undefined), undefined);
    for (const reserved of ["matrix-access-token", "matrix-registration-secret", "agent.x.matrix-token", "matrix-account.bot.token"]) assert.ok(RESERVED_SECRET_NAMES.test(reserved), reserved);
    assert.ok(!RESERVED_SECRET_NAMES.test("openai-api-key"));
  });

  test("the identity digest moves with the homeserver, the user and every renewal of the token", () => {
    const variants = [matrixIdentityDigestOf(HS, "@a:hs", token), matrixIdentityDigestOf("http://other", "@a:hs", token), matrixIdentityDigestOf(HS, "@b:hs", token), matrixIdentityDigestOf(HS, "@a:hs", { ...token, version: 2, revision: "r2" })];
    assert.equal(new Set(variants).size, variants.length);
  });

  test("an agent's rooms: trusted ones, the admin room, the approval room, the post targets — never *; user ids are never reused", () => {
    const g = { apiVersion: "ruriko.dev/v1alpha1", kind: "Gosuto", metadata: { name: "g" }, spec: { trust: { allowedRooms: ["*", "!b:hs", "#a:hs"], adminRoom: "!b:hs" } } } as GosutoManifest;
    assert.deepEqual(agentRoomsOf(g), ["!b:hs", "#a:hs"]);
    const withMore = { ...g, spec: { ...g.spec, approvals: { enabled: true, room: "!appr:hs", approvers: ["@x:hs"] }, messaging: { allowedTargets: [{ alias: "#reports:hs" }, { roomId: "!b:hs" }] } } } as GosutoManifest;
    assert.deepEqual(agentRoomsOf(withMore), ["!appr:hs", "!b:hs", "#a:hs", "#reports:hs"]);
    assert.deepEqual(agentRoomsOf(undefined), []);
    assert.deepEqual([localpartFor("bot", 0), localpartFor("bot", 1), localpartFor("bot", 2)], ["bot", "bot.2", "bot.3"], "never another agent's name (agent names have no dots)");
  });
});
