import { createServer, type Server } from "node:http";
import { RURIKO_VERSION } from "../version.ts";

/**
 * The part of the Agent Control Protocol that exists today: `GET /health` and `GET /status`, so that
 * Ruriko and people can see an agent container is alive. Configuration and secrets (`PUT /config`,
 * `PUT /secrets`) arrive with the issue that puts agents under control.
 */
export function startHealthServer(opts: { port: number; host: string; agent: string }): Promise<Server> {
  const startedAt = new Date().toISOString();
  const server = createServer((req, res) => {
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.method === "GET" && req.url === "/health") return send(200, { status: "ok" });
    if (req.method === "GET" && req.url === "/status") return send(200, { agent: opts.agent, version: RURIKO_VERSION, startedAt });
    send(404, { error: "not found" });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve(server));
  });
}
