import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { couldAllow, evaluate, type Capability } from "../../../src/gitai/policy/evaluate.ts";

const rules: Capability[] = [
  { name: "read-docs", mcp: "web", tool: "http_get", allow: true, constraints: { url_prefix: "https://docs.example.org/guide/" } },
  { name: "public-https", mcp: "web", tool: "http_get", allow: true, requireApproval: true, constraints: { url_prefix: "https://" } },
  { name: "get-only", mcp: "api", tool: "request", allow: true, constraints: { method: "GET" } },
  { name: "no-shell", mcp: "*", tool: "shell_exec", allow: false },
  { name: "deny-all", mcp: "*", tool: "*", allow: false },
];
const call = (mcp: string, tool: string, args: Record<string, unknown>) => evaluate(rules, { mcp, tool, args });

describe("tool policy", () => {
  test("the first rule that matches — server, tool and every constraint — decides", () => {
    assert.deepEqual(call("web", "http_get", { url: "https://docs.example.org/guide/intro" }), { decision: "allow", rule: "read-docs" });
    assert.deepEqual(call("web", "http_get", { url: "https://news.example.org/" }), { decision: "needs-approval", rule: "public-https" });
    assert.deepEqual(call("web", "http_get", { url: "http://127.0.0.1:8080/admin" }), { decision: "deny", rule: "deny-all" });
    assert.deepEqual(call("box", "shell_exec", { cmd: "id" }), { decision: "deny", rule: "no-shell" });
  });

  test("default deny: no rule matches, nothing runs", () => {
    assert.deepEqual(evaluate([], { mcp: "web", tool: "http_get", args: {} }), { decision: "deny", rule: null });
    assert.deepEqual(evaluate([{ name: "only-web", mcp: "web", tool: "*", allow: true }], { mcp: "files", tool: "read", args: {} }), { decision: "deny", rule: null });
  });

  test("url_prefix compares origins exactly and paths by prefix; look-alike hosts, credentials and other schemes fail", () => {
    const docs = (url: unknown) => call("web", "http_get", { url }).decision === "allow";
    assert.equal(docs("https://docs.example.org/guide/a/b?x=1"), true);
    assert.equal(docs("https://docs.example.org.evil.org/guide/"), false);
    assert.equal(docs("https://docs.example.org@evil.org/guide/"), false);
    assert.equal(docs("https://docs.example.org:8443/guide/"), false);
    assert.equal(docs("http://docs.example.org/guide/"), false);
    assert.equal(docs("https://docs.example.org/other"), false);
    assert.equal(docs("file:///etc/passwd"), false);
    assert.equal(docs("not a url"), false);
    assert.equal(docs(undefined), false);
    assert.equal(call("web", "http_get", { url: "ftp://x/" }).rule, "deny-all", "a scheme-only prefix asks for that scheme");
  });

  test("any other constraint wants the argument present and equal", () => {
    assert.equal(call("api", "request", { method: "GET", path: "/" }).decision, "allow");
    assert.equal(call("api", "request", { method: "POST" }).rule, "deny-all");
    assert.equal(call("api", "request", { path: "/" }).rule, "deny-all", "a missing argument fails: the tool's own default is not the policy's to guess");
  });

  test("allowed_args: a call carrying an argument the rule does not name does not match it", () => {
    const fetchRules: Capability[] = [
      { name: "read-public", mcp: "fetch", tool: "fetch_markdown", allow: true, constraints: { url_prefix: "https://", allowed_args: "url, max_length,start_index" } },
      { name: "deny-all", allow: false },
    ];
    const decide = (args: Record<string, unknown>) => evaluate(fetchRules, { mcp: "fetch", tool: "fetch_markdown", args });
    assert.deepEqual(decide({ url: "https://example.org/", max_length: 5000 }), { decision: "allow", rule: "read-public" });
    assert.deepEqual(decide({ url: "https://example.org/", proxy: "http://attacker.example:3128" }), { decision: "deny", rule: "deny-all" });
    assert.deepEqual(decide({ url: "https://example.org/", headers: { authorization: "x" } }), { decision: "deny", rule: "deny-all" });
  });

  test("the model is offered only tools some rule could allow", () => {
    assert.equal(couldAllow(rules, "web", "http_get"), true);
    assert.equal(couldAllow(rules, "api", "request"), true);
    assert.equal(couldAllow(rules, "box", "shell_exec"), false);
    assert.equal(couldAllow(rules, "files", "read"), false);
    assert.equal(couldAllow([{ name: "no-web", mcp: "web", tool: "*", allow: false }, { name: "all", allow: true }], "web", "x"), false, "an outright deny hides it from later rules");
    assert.equal(couldAllow([{ name: "no-post", mcp: "api", tool: "*", allow: false, constraints: { method: "POST" } }, { name: "all", allow: true }], "api", "request"), true);
  });
});
