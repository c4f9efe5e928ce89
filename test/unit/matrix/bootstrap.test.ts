/** The pure parts of `ruriko bootstrap`; the steps themselves run against a real Synapse (integration/bootstrap.test.ts). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { bootstrapPassword, isUserId, parseBootstrapUser, serverNameOf } from "../../../src/matrix/bootstrap.ts";

test("--matrix-user takes a localpart or a user id", () => {
  assert.deepEqual(parseBootstrapUser("ruriko"), { ok: true, value: { localpart: "ruriko" } });
  assert.deepEqual(parseBootstrapUser("@ruriko:example.org"), { ok: true, value: { localpart: "ruriko", server: "example.org" } });
  assert.deepEqual(parseBootstrapUser("@ops.bot:matrix.example.org:8448"), { ok: true, value: { localpart: "ops.bot", server: "matrix.example.org:8448" } });
  assert.equal(parseBootstrapUser("Ruriko").ok, false, "localparts are lower-case");
  assert.equal(parseBootstrapUser("@:example.org").ok, false);
  assert.equal(parseBootstrapUser("ru riko").ok, false);
});

test("operators are user ids", () => {
  assert.equal(isUserId("@alice:example.org"), true);
  assert.equal(isUserId("alice"), false);
  assert.equal(isUserId("@alice"), false);
  assert.equal(serverNameOf("@ruriko:example.org:8448"), "example.org:8448");
});

test("the account's password is derived from the registration secret: the same for each run, another for another secret or account", () => {
  const password = bootstrapPassword("shared-secret", "ruriko");
  assert.equal(password, bootstrapPassword("shared-secret", "ruriko"));
  assert.notEqual(password, bootstrapPassword("other-secret", "ruriko"));
  assert.notEqual(password, bootstrapPassword("shared-secret", "ruriko2"));
  assert.ok(!password.includes("shared-secret"));
  assert.match(password, /^[A-Za-z0-9_-]{43}$/, "256 bits, URL-safe");
});
