import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { classifyPullFailure, shortEngineMessage } from "../../../src/runtime/image-pull-failure.ts";

// What Docker 20.10 answers, as seen against a loopback registry (docker-registry) and an unreachable Docker Hub.
const SEEN: Array<[string, string, boolean]> = [
  [`(HTTP code 500) server error - Head "http://127.0.0.1:5902/v2/agent/manifests/v1": no basic auth credentials `, "unauthorized", true],
  ["(HTTP code 500) server error - unauthorized: authentication required ", "unauthorized", true],
  ["(HTTP code 404) unexpected - manifest for 127.0.0.1:5901/agent:nope not found: manifest unknown: manifest unknown ", "manifest unknown", true],
  [`(HTTP code 500) server error - Get "http://127.0.0.1:5903/v2/": dial tcp 127.0.0.1:5903: connect: connection refused `, "connection refused", false],
  [`(HTTP code 500) server error - Get "https://nosuchhost.invalid/v2/": dial tcp: lookup nosuchhost.invalid on 10.255.255.53:53: no such host `, "no such host", true],
  ["pull access denied for team/private, repository does not exist or may require 'docker login': denied: requested access to the resource is denied", "denied", true],
  ["toomanyrequests: You have reached your pull rate limit.", "too many requests", false],
  [`Get "https://r.example/v2/": net/http: TLS handshake timeout`, "timeout", false],
  [`Get "https://127.0.0.1:5000/v2/": http: server gave HTTP response to HTTPS client`, "registry speaks HTTP, not HTTPS", false],
  [`Get "https://r.example/v2/": x509: certificate signed by unknown authority`, "TLS error", false],
  ["no matching manifest for linux/amd64 in the manifest list entries", "no image for this platform", true],
  ["write /var/lib/docker/tmp/x: no space left on device", "no space left on device", false],
  ["something nobody has seen before", "error", false],
];

describe("pull failures", () => {
  for (const [message, reason, definitive] of SEEN) {
    test(`${reason}: ${message.slice(0, 60)}`, () => {
      assert.deepEqual(classifyPullFailure(message), { reason, definitive });
    });
  }

  test("a digest that happens to hold 401 or 403 is not an auth failure", () => {
    assert.equal(classifyPullFailure(`manifest for x@sha256:401403${"0".repeat(58)} not found: manifest unknown`).reason, "manifest unknown");
  });

  test("an engine message shortened for people: no prefix, URLs down to their host, any credential blanked", () => {
    const text = shortEngineMessage(`(HTTP code 500) server error - Get "https://r.example:5000/v2/x/manifests/v1?p=hunter2": weird hunter2 failure`, ["hunter2"]);
    assert.equal(text, "Get r.example:5000: weird [redacted] failure");
    assert.equal(shortEngineMessage("x".repeat(500)).length, 160);
  });
});
