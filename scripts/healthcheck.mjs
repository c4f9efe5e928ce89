#!/usr/bin/env node
// The images' HEALTHCHECK (Dockerfile): `healthcheck.mjs ruriko` asks Ruriko's /healthz, `healthcheck.mjs gitai`
// Gitai's ACP /health (unauthenticated). The address is the one the container's main process was started with —
// its command line as PID 1 shows it (a Docker --init keeps the child's command on its own), so an overridden
// `--http` or a host-networked agent's `--port` is followed — else the environment, else the image's default.
// Plain node:http: it runs inside the agent's memory limit, so it loads as little as it can.
import { readFileSync } from "node:fs";
import { get } from "node:http";

const kind = process.argv[2];
let args = [];
try {
  args = readFileSync("/proc/1/cmdline", "utf8").split("\0");
} catch {
  // not Linux, or no /proc: the environment and defaults below
}
const flag = (name) => {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name && i + 1 < args.length) return args[i + 1];
    if (args[i].startsWith(`${name}=`)) return args[i].slice(name.length + 1);
  }
  return undefined;
};
const local = (host) => (!host || host === "0.0.0.0" || host === "::" || host === "[::]" ? "127.0.0.1" : host);

let host;
let port;
let path;
if (kind === "ruriko") {
  const address = flag("--http") ?? process.env.RURIKO_HTTP ?? "127.0.0.1:8484";
  const at = address.lastIndexOf(":");
  host = local(address.slice(0, at));
  port = Number(address.slice(at + 1));
  path = "/healthz";
} else if (kind === "gitai") {
  host = local(flag("--host"));
  port = Number(flag("--port") ?? process.env.GITAI_ACP_PORT ?? 8765);
  path = "/health";
} else {
  console.error("usage: healthcheck.mjs ruriko|gitai");
  process.exit(2);
}

const request = get({ host: host.replace(/^\[|\]$/g, ""), port, path, timeout: 4000 }, (res) => {
  res.resume();
  if (res.statusCode !== 200) console.error(`${path}: HTTP ${res.statusCode}`);
  process.exit(res.statusCode === 200 ? 0 : 1);
});
request.on("timeout", () => request.destroy(new Error("no answer within 4 s")));
request.on("error", (error) => {
  console.error(`${host}:${port}${path}: ${error.message}`);
  process.exit(1);
});
