import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseRegistryCredential, pullsWithSecret, registryCredentialsFrom, registryOfSecretName, registrySecretName } from "../../../src/secrets/registry-credentials.ts";
import { checkSecretName } from "../../../src/store/secret-store.ts";

describe("registry credentials", () => {
  test("one secret name per registry host and port, valid as a secret name, and back", () => {
    const cases: Array<[string, string]> = [
      ["ghcr.io", "registry.ghcr.io"],
      ["127.0.0.1:5000", "registry-5000.127.0.0.1"],
      ["docker.io", "registry.docker.io"],
      ["Registry.Example.com:443", "registry-443.registry.example.com"],
      ["localhost:5000", "registry-5000.localhost"],
    ];
    for (const [host, name] of cases) {
      assert.equal(registrySecretName(host), name);
      checkSecretName(name);
      assert.equal(registryOfSecretName(name), host.toLowerCase());
    }
    assert.equal(registrySecretName("[::1]:5000"), undefined, "an IPv6 literal has no name");
    assert.equal(registryOfSecretName("openai-api-key"), undefined);
  });

  test("no two registries share a name", () => {
    const hosts = ["a.example", "a.example:5000", "registry-5000.a.example", "a.example-5000", "5000.a.example"];
    assert.equal(new Set(hosts.map(registrySecretName)).size, hosts.length);
  });

  test("the value is USERNAME:PASSWORD; the password may hold colons", () => {
    assert.deepEqual(parseRegistryCredential("alice:pa:ss"), { username: "alice", password: "pa:ss" });
    for (const bad of ["alice", ":pw", "alice:", ""]) assert.equal(parseRegistryCredential(bad), undefined, bad);
  });

  test("looked up from the store by the registry's name; a malformed one is said to be so, without its content", () => {
    const store = new Map([
      ["registry-5000.127.0.0.1", Buffer.from("alice:s3cret\n")],
      ["registry.ghcr.io", Buffer.from("no-colon-here")],
    ]);
    const lookup = registryCredentialsFrom({ reveal: (name) => (store.has(name) ? { value: store.get(name)! } : undefined) });
    assert.deepEqual(lookup("127.0.0.1:5000"), { from: "secret registry-5000.127.0.0.1", credential: { username: "alice", password: "s3cret" } });
    assert.deepEqual(lookup("quay.io"), { from: "secret registry.quay.io" });
    const bad = lookup("ghcr.io");
    assert.equal(bad.credential, undefined);
    assert.match(bad.problem!, /USERNAME:PASSWORD/);
    assert.doesNotMatch(JSON.stringify(bad), /no-colon-here/);
  });

  test("which images a write to a registry secret concerns", () => {
    assert.equal(pullsWithSecret("127.0.0.1:5000/agent:v1", "registry-5000.127.0.0.1"), true);
    assert.equal(pullsWithSecret("127.0.0.1:5001/agent:v1", "registry-5000.127.0.0.1"), false);
    assert.equal(pullsWithSecret("ruriko/gitai:dev", "registry.docker.io"), true);
    assert.equal(pullsWithSecret("ruriko/gitai:dev", "openai-api-key"), false);
  });
});
