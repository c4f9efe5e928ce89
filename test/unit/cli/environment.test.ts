/** Configuration by environment: secrets from a variable or a `_FILE`, switches, and which source wins. */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Command, Option } from "commander";
import { applySwitchesFromEnv, ConfigurationError, masterKeyEnv, parseSwitch, preferCommandLine, secretFromEnv, serveSecretsFromEnv } from "../../../src/cli/environment.ts";

const dir = mkdtempSync(join(tmpdir(), "ruriko-env-"));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe("secretFromEnv", () => {
  test("from the variable itself", () => {
    assert.deepEqual(secretFromEnv({ RURIKO_WEBHOOK_SECRET: "s3cret" }, "RURIKO_WEBHOOK_SECRET"), { value: "s3cret", origin: "RURIKO_WEBHOOK_SECRET" });
  });

  test("from the file NAME_FILE names, without the line break at its end", () => {
    const path = file("hook", "from-file\n");
    assert.deepEqual(secretFromEnv({ RURIKO_WEBHOOK_SECRET_FILE: path }, "RURIKO_WEBHOOK_SECRET"), { value: "from-file", origin: `RURIKO_WEBHOOK_SECRET_FILE=${path}` });
    assert.equal(secretFromEnv({ X_FILE: file("crlf", "a b\r\n\n") }, "X")?.value, "a b", "inner spaces kept, only line breaks at the end dropped");
  });

  test("neither set, or set empty, is no secret", () => {
    assert.equal(secretFromEnv({}, "X"), undefined);
    assert.equal(secretFromEnv({ X: "", X_FILE: "" }, "X"), undefined);
  });

  test("both set is an error naming both, never the value", () => {
    assert.throws(
      () => secretFromEnv({ X: "value-not-to-show", X_FILE: file("x", "other") }, "X"),
      (e: Error) => e instanceof ConfigurationError && /both X and X_FILE are set/.test(e.message) && !e.message.includes("value-not-to-show"),
    );
  });

  test("a file that cannot be read, or an empty one, is an error naming the variable and the file", () => {
    const missing = join(dir, "missing");
    assert.throws(() => secretFromEnv({ X_FILE: missing }, "X"), { name: "ConfigurationError", message: `X_FILE=${missing}: the file cannot be read (ENOENT)` });
    assert.throws(() => secretFromEnv({ X_FILE: dir }, "X"), { message: `X_FILE=${dir}: the file cannot be read (EISDIR)` });
    const denied = () => {
      throw Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" });
    };
    assert.throws(() => secretFromEnv({ X_FILE: "/run/secrets/x" }, "X", denied), { message: "X_FILE=/run/secrets/x: the file cannot be read (EACCES)" });
    const empty = file("empty", "\n");
    assert.throws(() => secretFromEnv({ X_FILE: empty }, "X"), { message: `X_FILE=${empty}: the file is empty` });
  });

  test("serve reads every secret it takes, each either way", () => {
    const token = file("token", "syt_abc\n");
    const secrets = serveSecretsFromEnv({ RURIKO_MATRIX_ACCESS_TOKEN_FILE: token, RURIKO_MATRIX_REGISTRATION_SECRET: "reg", RURIKO_WEBHOOK_SECRET_FILE: file("w", "hook") });
    assert.deepEqual(
      Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, v.value])),
      { matrixAccessToken: "syt_abc", matrixRegistrationSecret: "reg", webhookSecret: "hook" },
    );
    assert.deepEqual(serveSecretsFromEnv({}), {});
    assert.throws(() => serveSecretsFromEnv({ RURIKO_MATRIX_ACCESS_TOKEN: "a", RURIKO_MATRIX_ACCESS_TOKEN_FILE: token }), /both RURIKO_MATRIX_ACCESS_TOKEN and RURIKO_MATRIX_ACCESS_TOKEN_FILE/);
  });
});

describe("the master key's sources", () => {
  const env = { RURIKO_MASTER_KEY: "key", RURIKO_MASTER_KEY_FILE: "/run/secrets/key", OTHER: "kept" };

  test("--master-key-file on the command line wins over RURIKO_MASTER_KEY", () => {
    assert.deepEqual(masterKeyEnv(env, "cli"), { RURIKO_MASTER_KEY_FILE: "/run/secrets/key", OTHER: "kept" });
  });

  test("both variables set is an error; one of them is handed on as it is", () => {
    assert.throws(() => masterKeyEnv(env, "env"), /both RURIKO_MASTER_KEY and RURIKO_MASTER_KEY_FILE are set/);
    assert.deepEqual(masterKeyEnv({ RURIKO_MASTER_KEY: "key" }, undefined), { RURIKO_MASTER_KEY: "key" });
    assert.deepEqual(masterKeyEnv({ RURIKO_MASTER_KEY_FILE: "/k" }, "env"), { RURIKO_MASTER_KEY_FILE: "/k" });
  });
});

describe("switches", () => {
  test("true and false in their usual spellings; anything else is an error naming the variable", () => {
    for (const t of ["1", "true", "TRUE", "yes", "on", " On "]) assert.equal(parseSwitch(t, "X"), true, t);
    for (const f of ["", "0", "false", "no", "off"]) assert.equal(parseSwitch(f, "X"), false, f);
    assert.throws(() => parseSwitch("maybe", "RURIKO_ALLOW_EMPTY"), /RURIKO_ALLOW_EMPTY="maybe": expected true or false/);
  });

  test("a switch set by its variable takes the variable's value; one given on the command line stays true", () => {
    const command = () => new Command().exitOverride().addOption(new Option("--allow-empty").env("X_ALLOW_EMPTY").default(false));
    const parsed = (argv: string[], value: string) => {
      process.env.X_ALLOW_EMPTY = value;
      try {
        const c = command().parse(argv, { from: "user" });
        applySwitchesFromEnv(c, process.env);
        return c.opts().allowEmpty as boolean;
      } finally {
        delete process.env.X_ALLOW_EMPTY;
      }
    };
    assert.equal(parsed([], "false"), false, "commander alone would say true");
    assert.equal(parsed([], "1"), true);
    assert.equal(parsed(["--allow-empty"], "false"), true, "the command line wins");
    assert.throws(() => parsed([], "maybe"), ConfigurationError);
  });
});

describe("preferCommandLine", () => {
  const sources = (map: Record<string, string>) => (key: string) => map[key];

  test("a source on the command line drops the other one from the environment", () => {
    assert.deepEqual(preferCommandLine({ manifests: "./m", git: "https://g" }, sources({ manifests: "cli", git: "env" }), ["manifests", "git"]), { manifests: "./m" });
    assert.deepEqual(preferCommandLine({ manifests: "./m", git: "https://g" }, sources({ manifests: "env", git: "cli" }), ["manifests", "git"]), { git: "https://g" });
  });

  test("both from one place are left for serve to refuse", () => {
    const both = { manifests: "./m", git: "https://g" };
    assert.deepEqual(preferCommandLine(both, sources({ manifests: "env", git: "env" }), ["manifests", "git"]), both);
    assert.deepEqual(preferCommandLine(both, sources({ manifests: "cli", git: "cli" }), ["manifests", "git"]), both);
  });
});
