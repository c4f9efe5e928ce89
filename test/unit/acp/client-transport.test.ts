/** The ACP client's transport failures, each as the error code the controller acts on. */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { AcpClient, AcpError } from "../../../src/acp/client.ts";

describe("ACP client transport", () => {
  let server: Server;
  let base: string;
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === "/status" && req.headers.authorization === "Bearer silent") return; // never answers
      if (req.url === "/status" && req.headers.authorization === "Bearer stalls") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.write('{"half": '); // begins its answer, never ends it
      }
      if (req.url === "/status" && req.headers.authorization === "Bearer huge") {
        res.writeHead(200, { "content-type": "application/json" });
        const chunk = Buffer.alloc(1 << 20, 0x20);
        for (let i = 0; i < 9; i++) res.write(chunk);
        return res.end("{}");
      }
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: "bad token" }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const codeOf = async (p: Promise<unknown>) => {
    const error = await p.then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof AcpError, `an AcpError, got ${String(error)}`);
    return error;
  };

  test("no answer in time is a timeout; a refused connection is unreachable; the token is in no message", async () => {
    const client = new AcpClient({ timeoutMs: 200, retries: 0 });
    const silent = await codeOf(client.status({ agent: "a", baseUrl: base, token: "silent" }, "t"));
    assert.equal(silent.code, "timeout");
    // The time limit is the whole exchange's, not the wait for the first byte.
    const stalls = await codeOf(client.status({ agent: "a", baseUrl: base, token: "stalls" }, "t"));
    assert.equal(stalls.code, "timeout");
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const refused = await codeOf(client.status({ agent: "a", baseUrl: `http://127.0.0.1:${port}`, token: "s3cret-token" }, "t"));
    assert.equal(refused.code, "unreachable");
    assert.doesNotMatch(`${refused.message} ${String(refused.cause)}`, /s3cret-token/);
  });

  test("an HTTP refusal keeps its status and the agent's words; an answer past 8 MiB is refused, not read", async () => {
    const client = new AcpClient({ timeoutMs: 5000, retries: 0 });
    const refused = await codeOf(client.status({ agent: "a", baseUrl: base, token: "wrong" }, "t"));
    assert.equal(refused.code, "unauthorized");
    assert.equal(refused.httpStatus, 401);
    assert.match(refused.message, /bad token/);
    const huge = await codeOf(client.status({ agent: "a", baseUrl: base, token: "huge" }, "t"));
    assert.equal(huge.code, "protocol");
    assert.match(huge.message, /longer than 8388608 bytes/);
  });
});
