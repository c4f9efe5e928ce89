/**
 * Configuration by environment (docs/configuration.md). Every option of `serve` and `bootstrap` has a `RURIKO_…`
 * variable, declared on the option itself (commander's `Option.env`), so that a compose file or a systemd unit
 * needs no long command line; a flag on the command line wins over the variable, the variable over the default.
 * Secrets come from a variable or from a file named by `<NAME>_FILE` (Docker and systemd credentials are files),
 * never both. What is here is pure, or reads only what it is handed.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";

export type Env = Readonly<Record<string, string | undefined>>;

/** A configuration mistake: the message names the variable or the file, never a secret value. */
export class ConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigurationError";
  }
}

/** A secret and where it came from ("RURIKO_WEBHOOK_SECRET", "RURIKO_WEBHOOK_SECRET_FILE=/run/secrets/hook"). */
export interface EnvSecret {
  value: string;
  origin: string;
}

/** The secrets `serve` reads from its environment (each also as `<NAME>_FILE`). */
export const SERVE_SECRET_ENV = {
  matrixAccessToken: "RURIKO_MATRIX_ACCESS_TOKEN",
  matrixRegistrationSecret: "RURIKO_MATRIX_REGISTRATION_SECRET",
  webhookSecret: "RURIKO_WEBHOOK_SECRET",
} as const;

export type ServeSecrets = { -readonly [K in keyof typeof SERVE_SECRET_ENV]?: EnvSecret };

/** What a file read needs; injectable so that tests need no files that cannot be read. */
export type ReadText = (file: string) => string;
const readText: ReadText = (file) => readFileSync(file, "utf8");

/**
 * `NAME` or the contents of the file `NAME_FILE` names; undefined when neither is set (an empty value counts as
 * unset, as it always did). Both set, a file that cannot be read or an empty file is an error naming the variable
 * and the file. The line break an editor or `echo` leaves at the end of the file is not part of the secret.
 */
export function secretFromEnv(env: Env, name: string, read: ReadText = readText): EnvSecret | undefined {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (direct && file) throw new ConfigurationError(`both ${name} and ${name}_FILE are set: set one of them`);
  if (direct) return { value: direct, origin: name };
  if (!file) return undefined;
  const origin = `${name}_FILE=${file}`;
  let text: string;
  try {
    text = read(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigurationError(`${origin}: the file cannot be read (${code ?? (error as Error).message})`);
  }
  const value = text.replace(/[\r\n]+$/, "");
  if (!value) throw new ConfigurationError(`${origin}: the file is empty`);
  return { value, origin };
}

/** Every secret `serve` takes from its environment, read once at start so that a mistake stops it at once. */
export function serveSecretsFromEnv(env: Env, read: ReadText = readText): ServeSecrets {
  const out: ServeSecrets = {};
  for (const [key, name] of Object.entries(SERVE_SECRET_ENV) as Array<[keyof ServeSecrets, string]>) {
    const secret = secretFromEnv(env, name, read);
    if (secret) out[key] = secret;
  }
  return out;
}

/**
 * The environment to open the master key with. The key comes from RURIKO_MASTER_KEY or from a key file
 * (`--master-key-file`, RURIKO_MASTER_KEY_FILE): a key file given on the command line wins over the variable, as
 * every flag does; both variables set is an error, as for every secret.
 */
export function masterKeyEnv(env: Env, keyFileSource: string | undefined): Env {
  if (keyFileSource === "cli") {
    const { RURIKO_MASTER_KEY: _ignored, ...rest } = env;
    return rest;
  }
  if (env.RURIKO_MASTER_KEY && env.RURIKO_MASTER_KEY_FILE) throw new ConfigurationError("both RURIKO_MASTER_KEY and RURIKO_MASTER_KEY_FILE are set: set one of them");
  return env;
}

const TRUE = new Set(["1", "true", "yes", "on"]);
const FALSE = new Set(["", "0", "false", "no", "off"]);

/** A switch's value from its variable: `RURIKO_ALLOW_EMPTY=false` must not mean true. */
export function parseSwitch(text: string, name: string): boolean {
  const t = text.trim().toLowerCase();
  if (TRUE.has(t)) return true;
  if (FALSE.has(t)) return false;
  throw new ConfigurationError(`${name}=${JSON.stringify(text)}: expected true or false (also 1/0, yes/no, on/off)`);
}

/**
 * Commander sets a switch to true whenever its variable exists, whatever it says; read the value instead. Run on
 * the command about to act (a preAction hook), after commander resolved command line, environment and defaults.
 */
export function applySwitchesFromEnv(command: Command, env: Env): void {
  for (const option of command.options) {
    if (!option.envVar || !option.isBoolean() || option.negate) continue;
    const key = option.attributeName();
    if (command.getOptionValueSource(key) !== "env") continue;
    command.setOptionValueWithSource(key, parseSwitch(env[option.envVar] ?? "", option.envVar), "env");
  }
}

/** A comma-separated list, blanks dropped. */
export const listArgument = (text: string): string[] => text.split(",").map((s) => s.trim()).filter(Boolean);

/**
 * Options that exclude each other (`--manifests` and `--git`): one given on the command line drops the others
 * that came from the environment, as a flag wins over a variable; two from the same place are left for the
 * command to refuse.
 */
export function preferCommandLine<T extends Record<string, unknown>>(values: T, sourceOf: (key: string) => string | undefined, group: ReadonlyArray<keyof T & string>): T {
  if (!group.some((key) => values[key] !== undefined && sourceOf(key) === "cli")) return values;
  const out = { ...values };
  for (const key of group) if (sourceOf(key) === "env") delete out[key];
  return out;
}
