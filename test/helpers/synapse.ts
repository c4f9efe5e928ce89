/**
 * A real Synapse for tests: generated config (SQLite, shared-secret registration, rate limits raised) on a
 * free loopback port. Missing Synapse is an error, never a skip.
 *
 * Tuned for speed, since every Matrix test and benchmark waits on it (docs/performance.md, "Conversation turn"):
 * its database lives in memory-backed /dev/shm where there is one (each commit's fsync to disk cost ~3 ms per message
 * sent, and tens of ms when the disk is busy), and it skips work no test reads — push rules evaluated for every
 * member on every message, the federation sender, room statistics and the user directory. Together: a message
 * sent costs it 8–9 ms of CPU instead of 12–13.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { registerWithSharedSecret, type RegisteredUser } from "../../src/matrix/synapse-admin.ts";

export interface SynapseHandle {
  baseUrl: string;
  serverName: string;
  registrationSharedSecret: string;
  dataDir: string;
  /** The homeserver's process id while it runs (benchmarks read its CPU time). */
  readonly pid: number | undefined;
  registerUser(localpart: string, opts?: { admin?: boolean; password?: string }): Promise<RegisteredUser & { password: string }>;
  /** Stops the homeserver, keeping its data, so that a test can make it come back. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

export function synapsePython(): string {
  const python = process.env.RURIKO_SYNAPSE_PYTHON ?? join(homedir(), ".cache/ruriko/synapse-venv/bin/python");
  if (!existsSync(python)) {
    throw new Error(`Synapse is not installed: ${python} is missing. Run .ci/run, or: python3 -m venv ~/.cache/ruriko/synapse-venv && ~/.cache/ruriko/synapse-venv/bin/pip install matrix-synapse`);
  }
  return python;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

const RATE_LIMIT = { per_second: 10000, burst_count: 10000 };
/** Memory-backed on Linux: the database's commits cost no disk flush. */
const MEMORY_FS = "/dev/shm";

function config(dataDir: string, dbDir: string, port: number, secret: string): string {
  const rc = JSON.stringify(RATE_LIMIT);
  return `server_name: localhost
pid_file: ${dataDir}/homeserver.pid
listeners:
  - port: ${port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: ${dbDir}/homeserver.db
log_config: ${dataDir}/log.config
media_store_path: ${dataDir}/media
signing_key_path: ${dataDir}/signing.key
registration_shared_secret: "${secret}"
enable_registration: false
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
bcrypt_rounds: 4
presence:
  enabled: false
push:
  enabled: false
federation_sender_instances: []
stats:
  enabled: false
user_directory:
  enabled: false
url_preview_enabled: false
rc_message: ${rc}
rc_registration: ${rc}
rc_registration_token_validity: ${rc}
rc_login:
  address: ${rc}
  account: ${rc}
  failed_attempts: ${rc}
rc_admin_redaction: ${rc}
rc_joins:
  local: ${rc}
  remote: ${rc}
rc_joins_per_room: ${rc}
rc_3pid_validation: ${rc}
rc_invites:
  per_room: ${rc}
  per_user: ${rc}
  per_issuer: ${rc}
rc_third_party_invite: ${rc}
rc_federation:
  window_size: 1000
  sleep_limit: 10000
  sleep_delay: 1
  reject_limit: 10000
  concurrent: 100
`;
}

const LOG_CONFIG = (dataDir: string) => `version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: ${dataDir}/homeserver.log
root:
  level: WARNING
  handlers: [file]
disable_existing_loggers: false
`;

async function waitUntilUp(baseUrl: string, child: ChildProcess, logFile: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const r = await fetch(`${baseUrl}/_matrix/client/versions`, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const tail = existsSync(logFile) ? readFileSync(logFile, "utf8").split("\n").slice(-30).join("\n") : "(no log)";
  throw new Error(`Synapse did not come up at ${baseUrl} (exit code ${child.exitCode}). Log tail:\n${tail}`);
}

export async function startSynapse(): Promise<SynapseHandle> {
  const python = synapsePython();
  const dataDir = mkdtempSync(join(tmpdir(), "ruriko-synapse-"));
  const port = await freePort();
  const secret = randomBytes(24).toString("hex");
  const configPath = join(dataDir, "homeserver.yaml");
  const dbDir = existsSync(MEMORY_FS) ? mkdtempSync(join(MEMORY_FS, "ruriko-synapse-db-")) : dataDir;
  writeFileSync(configPath, config(dataDir, dbDir, port, secret));
  writeFileSync(join(dataDir, "log.config"), LOG_CONFIG(dataDir));
  const keys = spawnSync(python, ["-m", "synapse.app.homeserver", "-c", configPath, "--generate-keys"], { encoding: "utf8" });
  if (keys.status !== 0) throw new Error(`generating Synapse keys failed: ${keys.stderr}`);
  const baseUrl = `http://127.0.0.1:${port}`;
  const logFile = join(dataDir, "homeserver.log");
  let child: ChildProcess | undefined;

  const launch = async () => {
    child = spawn(python, ["-m", "synapse.app.homeserver", "-c", configPath], { cwd: dataDir, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    try {
      await waitUntilUp(baseUrl, child, logFile);
    } catch (error) {
      child.kill("SIGKILL");
      throw new Error(`${(error as Error).message}\nstderr:\n${stderr}`);
    }
  };
  const halt = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise<void>((r) => c.once("exit", () => r()));
    c.kill("SIGTERM");
    const timer = setTimeout(() => c.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };
  await launch();
  return {
    baseUrl,
    serverName: "localhost",
    registrationSharedSecret: secret,
    dataDir,
    get pid() {
      return child?.exitCode === null ? child.pid : undefined;
    },
    async registerUser(localpart, opts = {}) {
      const password = opts.password ?? randomBytes(12).toString("hex");
      const user = await registerWithSharedSecret(baseUrl, secret, { username: localpart, password, admin: opts.admin ?? false });
      return { ...user, password };
    },
    pause: halt,
    resume: launch,
    async stop() {
      await halt();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(dbDir, { recursive: true, force: true });
    },
  };
}
