import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { parseManifestFile } from "../../../src/api/parse.ts";
import { buildSnapshot } from "../../../src/api/snapshot.ts";
import type { AgentManifest } from "../../../src/api/generated/types.ts";
import { desiredBindingsOf, desiredGosutoOf, secretsDigestOf } from "../../../src/controller/agent-config.ts";

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
