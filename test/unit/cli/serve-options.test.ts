/**
 * `serve`'s options as commander parses them: each from its RURIKO_… variable, a flag on the command line winning
 * over the variable and the variable over the default; and docs/configuration.md's table kept true.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Command } from "commander";
import { applySwitchesFromEnv, SERVE_SECRET_ENV } from "../../../src/cli/environment.ts";
import { bootstrapOptions, serveOptions } from "../../../src/cli/options.ts";

/** Parses as `ruriko serve ARGV` would with ENV as the only RURIKO_… variables; restores the environment after. */
function parseServe(argv: string[], env: Record<string, string> = {}): { opts: Record<string, unknown>; source: (key: string) => string | undefined } {
  const saved = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith("RURIKO_")).map((k) => [k, process.env[k]]));
  for (const k of Object.keys(saved)) delete process.env[k];
  Object.assign(process.env, env);
  try {
    const command = new Command("serve").exitOverride().configureOutput({ writeErr: () => {} });
    for (const option of serveOptions()) command.addOption(option);
    command.parse(argv, { from: "user" });
    applySwitchesFromEnv(command, process.env);
    return { opts: command.opts(), source: (key) => command.getOptionValueSource(key) };
  } finally {
    for (const k of Object.keys(env)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

describe("serve options from the environment", () => {
  test("every value from its variable, typed as the flag would be", () => {
    const { opts, source } = parseServe([], {
      RURIKO_GIT: "https://git.example/ops.git",
      RURIKO_GIT_BRANCH: "prod",
      RURIKO_GIT_PATH: "agents",
      RURIKO_STATE_DIR: "/var/lib/ruriko",
      RURIKO_HTTP: "0.0.0.0:8484",
      RURIKO_CONCURRENCY: "8",
      RURIKO_RESYNC: "120",
      RURIKO_GIT_INTERVAL: "30",
      RURIKO_AGENT_POLL: "10",
      RURIKO_IMAGE_PULL_TIMEOUT: "90",
      RURIKO_ALLOW_EMPTY: "true",
      RURIKO_LOG_LEVEL: "debug",
      RURIKO_MASTER_KEY_FILE: "/run/secrets/master-key",
      RURIKO_MATRIX_HOMESERVER: "http://synapse:8008",
      RURIKO_MATRIX_USER: "@ruriko:example.org",
      RURIKO_STATUS_ROOM: "#ruriko-status:example.org",
      RURIKO_MATRIX_OPERATORS: "@alice:example.org, @bob:example.org",
      RURIKO_AGENT_MATRIX_HOMESERVER: "http://synapse:8008",
      RURIKO_AGENT_NETWORK: "network:ruriko-agents",
      RURIKO_RUNTIME: "kubernetes",
      RURIKO_KUBECONFIG: "/etc/ruriko/kubeconfig",
      RURIKO_KUBE_NAMESPACE: "agents",
      RURIKO_KUBE_STORAGE_CLASS: "fast",
      RURIKO_KUBE_VOLUME_SIZE: "5Gi",
      RURIKO_KUBE_ACP_ACCESS: "port-forward",
    });
    assert.deepEqual(opts, {
      git: "https://git.example/ops.git",
      branch: "prod",
      path: "agents",
      stateDir: "/var/lib/ruriko",
      http: "0.0.0.0:8484",
      concurrency: 8,
      resync: 120,
      gitInterval: 30,
      agentPoll: 10,
      imagePullTimeout: 90,
      allowEmpty: true,
      logLevel: "debug",
      masterKeyFile: "/run/secrets/master-key",
      matrixHomeserver: "http://synapse:8008",
      matrixUser: "@ruriko:example.org",
      statusRoom: "#ruriko-status:example.org",
      matrixOperators: ["@alice:example.org", "@bob:example.org"],
      agentMatrixHomeserver: "http://synapse:8008",
      agentNetwork: "network:ruriko-agents",
      runtime: "kubernetes",
      kubeconfig: "/etc/ruriko/kubeconfig",
      kubeNamespace: "agents",
      kubeStorageClass: "fast",
      kubeVolumeSize: "5Gi",
      kubeAcpAccess: "port-forward",
      adoptOrphans: false,
    });
    assert.equal(source("concurrency"), "env");
  });

  test("a flag on the command line wins over its variable, which wins over the default", () => {
    const env = { RURIKO_CONCURRENCY: "8", RURIKO_AGENT_NETWORK: "host", RURIKO_LOG_LEVEL: "warn" };
    const { opts, source } = parseServe(["--concurrency", "2", "--agent-network", "bridge"], env);
    assert.equal(opts.concurrency, 2);
    assert.equal(source("concurrency"), "cli");
    assert.equal(opts.agentNetwork, "bridge");
    assert.equal(opts.logLevel, "warn", "no flag: the variable");
    assert.equal(source("logLevel"), "env");
    const defaults = parseServe([]);
    assert.equal(defaults.opts.concurrency, 4);
    assert.equal(defaults.opts.agentNetwork, "bridge");
    assert.equal(defaults.source("concurrency"), "default");
  });

  test("RURIKO_ALLOW_EMPTY=false means false", () => {
    assert.equal(parseServe([], { RURIKO_ALLOW_EMPTY: "false" }).opts.allowEmpty, false);
    assert.equal(parseServe([], { RURIKO_ALLOW_EMPTY: "1" }).opts.allowEmpty, true);
  });

  test("a bad value from a variable is refused, naming the variable", () => {
    assert.throws(() => parseServe([], { RURIKO_CONCURRENCY: "lots" }), /value 'lots' from env 'RURIKO_CONCURRENCY' is invalid/);
    assert.throws(() => parseServe([], { RURIKO_RESYNC: "0" }), /from env 'RURIKO_RESYNC' is invalid/);
    assert.throws(() => parseServe([], { RURIKO_AGENT_NETWORK: "overlay" }), /from env 'RURIKO_AGENT_NETWORK' is invalid. expected bridge, host or network:NAME/);
    assert.throws(() => parseServe([], { RURIKO_LOG_LEVEL: "chatty" }), /RURIKO_LOG_LEVEL/);
  });

  test("--adopt-orphans has no variable: it is a decision for one start", () => {
    assert.equal(parseServe([], { RURIKO_ADOPT_ORPHANS: "true" }).opts.adoptOrphans, false);
    assert.equal(parseServe(["--adopt-orphans"]).opts.adoptOrphans, true);
  });
});

describe("docs/configuration.md", () => {
  const docs = readFileSync(join(import.meta.dirname, "../../../docs/configuration.md"), "utf8");
  /** The table's rows: `| `RURIKO_X` | `--flag` … |`. */
  const rows = [...docs.matchAll(/^\| `(RURIKO_[A-Z_]+)` \| ([^|]*)\|/gm)].map(([, name, flag]) => ({ name: name!, flag: /`(--[a-z-]+)/.exec(flag!)?.[1] }));

  test("lists every variable of serve and bootstrap with its flag, and every secret with its _FILE", () => {
    const expected = new Map<string, string | undefined>();
    for (const option of [...serveOptions(), ...bootstrapOptions()]) if (option.envVar) expected.set(option.envVar, option.long);
    for (const name of [...Object.values(SERVE_SECRET_ENV), "RURIKO_MASTER_KEY"]) {
      expected.set(name, undefined);
      if (!expected.has(`${name}_FILE`)) expected.set(`${name}_FILE`, undefined);
    }
    const documented = new Map(rows.map((r) => [r.name, r.flag]));
    assert.deepEqual([...documented.keys()].sort(), [...expected.keys()].sort());
    for (const [name, flag] of expected) if (flag) assert.equal(documented.get(name), flag, `${name} is documented with ${flag}`);
  });
});
