import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { redactUrl } from "../../../src/sources/source.ts";
import { verifyGitHubSignature, webhookBranch } from "../../../src/sources/webhook.ts";

const body = Buffer.from(JSON.stringify({ ref: "refs/heads/main" }));
const sign = (secret: string, data: Buffer) => `sha256=${createHmac("sha256", secret).update(data).digest("hex")}`;

test("a valid signature is accepted; a tampered body, a wrong secret or a bad header is not", () => {
  assert.equal(verifyGitHubSignature("s3", body, sign("s3", body)), true);
  assert.equal(verifyGitHubSignature("s3", Buffer.from(body.toString().replace("main", "evil")), sign("s3", body)), false);
  assert.equal(verifyGitHubSignature("other", body, sign("s3", body)), false);
  assert.equal(verifyGitHubSignature("s3", body, undefined), false);
  assert.equal(verifyGitHubSignature("s3", body, "sha1=abc"), false);
  assert.equal(verifyGitHubSignature("s3", body, "sha256=zz"), false);
});

test("the branch of a push", () => {
  assert.equal(webhookBranch({ ref: "refs/heads/release/1.2" }), "release/1.2");
  assert.equal(webhookBranch({ ref: "refs/tags/v1" }), undefined);
  assert.equal(webhookBranch(null), undefined);
});

test("credentials in URLs never reach messages", () => {
  assert.equal(redactUrl("https://user:hunter2@git.example.org/org/repo.git"), "https://***@git.example.org/org/repo.git");
  assert.equal(redactUrl("/srv/git/repo"), "/srv/git/repo");
});
