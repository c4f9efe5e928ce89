import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { digestIn, isPinned, parseImageReference, pullTarget } from "../../../src/runtime/image-reference.ts";

const D1 = `sha256:${"a".repeat(64)}`;
const D2 = `sha256:${"b".repeat(64)}`;

describe("image references", () => {
  test("a registry host with a port, a path, a tag", () => {
    assert.deepEqual(parseImageReference("127.0.0.1:5000/team/agent:1.4"), { registry: "127.0.0.1:5000", path: "team/agent", repository: "127.0.0.1:5000/team/agent", tag: "1.4" });
  });

  test("no registry named: Docker Hub, official images under library/", () => {
    assert.deepEqual(parseImageReference("ubuntu"), { registry: "docker.io", path: "library/ubuntu", repository: "ubuntu" });
    assert.deepEqual(parseImageReference("ruriko/gitai:dev"), { registry: "docker.io", path: "ruriko/gitai", repository: "ruriko/gitai", tag: "dev" });
    assert.equal(parseImageReference("docker.io/library/ubuntu:22.04")!.repository, "ubuntu");
    assert.equal(parseImageReference("index.docker.io/team/x")!.registry, "docker.io");
  });

  test("a first component is a host only when it looks like one (a dot, a port, localhost)", () => {
    assert.equal(parseImageReference("registry.example.com/team/agent")!.registry, "registry.example.com");
    assert.equal(parseImageReference("localhost/agent")!.registry, "localhost");
    assert.equal(parseImageReference("team/agent")!.registry, "docker.io");
  });

  test("pinned by digest, with or without a tag: the digest decides what is pulled", () => {
    const pinned = parseImageReference(`127.0.0.1:5000/agent@${D1}`)!;
    assert.deepEqual(pinned, { registry: "127.0.0.1:5000", path: "agent", repository: "127.0.0.1:5000/agent", digest: D1 });
    const both = parseImageReference(`127.0.0.1:5000/agent:v1@${D1}`)!;
    assert.equal(both.tag, "v1");
    assert.deepEqual(pullTarget(both), { repository: "127.0.0.1:5000/agent", tagOrDigest: D1 });
    assert.equal(isPinned(`127.0.0.1:5000/agent:v1@${D1}`), true);
    assert.equal(isPinned("127.0.0.1:5000/agent:v1"), false);
  });

  test("what a pull asks for: the tag, latest when none", () => {
    assert.deepEqual(pullTarget(parseImageReference("ghcr.io/x/y")!), { repository: "ghcr.io/x/y", tagOrDigest: "latest" });
    assert.deepEqual(pullTarget(parseImageReference("ubuntu:22.04")!), { repository: "ubuntu", tagOrDigest: "22.04" });
  });

  test("not references", () => {
    for (const text of ["", "team/UPPER", "a//b", "x@sha256:short", "x:tag with space", "-x"]) assert.equal(parseImageReference(text), undefined, text);
  });

  test("the registry digest of an image in the reference's repository", () => {
    const ref = parseImageReference("127.0.0.1:5000/agent:v1")!;
    assert.equal(digestIn([`127.0.0.1:5001/agent@${D2}`, `127.0.0.1:5000/agent@${D1}`], ref), D1);
    assert.equal(digestIn([`ubuntu@${D2}`], parseImageReference("docker.io/library/ubuntu:22.04")!), D2);
    assert.equal(digestIn([], ref), undefined);
  });
});
