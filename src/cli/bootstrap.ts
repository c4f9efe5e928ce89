/**
 * `ruriko bootstrap`: wiring only (the steps are src/matrix/bootstrap.ts). What `serve` needs goes to stdout as
 * `RURIKO_…=` lines, ready for an env file; what was done goes to stderr. The access token goes to `--token-file`
 * (mode 0600, replaced in one rename), or to stdout with a warning.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { bootstrapMatrix, BootstrapError, isUserId, parseBootstrapUser, SynapseBootstrapHomeserver, type BootstrapHomeserver, type Session } from "../matrix/bootstrap.ts";
import { secretFromEnv, type Env } from "./environment.ts";
import { writeFileAtomicSync } from "../store/atomic-write.ts";

export interface BootstrapOptions {
  matrixHomeserver: string;
  matrixUser: string;
  operator: string[];
  tokenFile?: string;
  statusAlias: string;
  approvalsAlias: string;
}

export interface BootstrapIo {
  env: Env;
  out: (line: string) => void;
  err: (line: string) => void;
  /** The homeserver; the real one unless a test gives another. */
  homeserver?: BootstrapHomeserver;
}

const defaultIo = (): BootstrapIo => ({ env: process.env, out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) });

/** The token a previous run left in the token file, if any. */
function heldToken(opts: BootstrapOptions, env: Env): { value: string; origin: string } | undefined {
  if (opts.tokenFile && existsSync(opts.tokenFile)) {
    let value: string;
    try {
      value = readFileSync(opts.tokenFile, "utf8").trim();
    } catch (error) {
      throw new BootstrapError(`--token-file ${opts.tokenFile}: the file cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    if (value) return { value, origin: opts.tokenFile };
  }
  return env.RURIKO_MATRIX_ACCESS_TOKEN ? { value: env.RURIKO_MATRIX_ACCESS_TOKEN, origin: "RURIKO_MATRIX_ACCESS_TOKEN" } : undefined;
}

/** Readable by its owner only from the first byte, and never half-written. */
function writeTokenFile(file: string, token: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileAtomicSync(file, `${token}\n`, { mode: 0o600 });
}

/** Exit code: 0 when everything is in place (changed now or already), 1 otherwise. */
export async function runBootstrap(opts: BootstrapOptions, io: BootstrapIo = defaultIo()): Promise<number> {
  const user = parseBootstrapUser(opts.matrixUser);
  if (!user.ok) throw new BootstrapError(`--matrix-user: ${user.problem}`);
  const badOperator = opts.operator.find((o) => !isUserId(o));
  if (badOperator !== undefined || opts.operator.length === 0) throw new BootstrapError(`--operator needs Matrix user ids like @you:example.org${badOperator !== undefined ? `, got ${JSON.stringify(badOperator)}` : ""}`);
  const registration = secretFromEnv(io.env, "RURIKO_MATRIX_REGISTRATION_SECRET");
  const held = heldToken(opts, io.env);
  const tokenFile = opts.tokenFile ? resolve(opts.tokenFile) : undefined;

  let tokenWritten = false;
  const result = await bootstrapMatrix(io.homeserver ?? new SynapseBootstrapHomeserver(opts.matrixHomeserver), {
    user: user.value,
    operators: opts.operator,
    rooms: [
      { role: "status", alias: opts.statusAlias, name: "Ruriko status", topic: "What Ruriko does; ask /ruriko help" },
      { role: "approvals", alias: opts.approvalsAlias, name: "Ruriko approvals", topic: "Changes waiting for approval: react ✅ or ❌ on a request" },
    ],
    ...(registration ? { registrationSecret: registration.value } : {}),
    ...(held ? { heldToken: held } : {}),
    onChange: (what) => io.err(what),
    onSession: (session: Session, issued: boolean) => {
      // The file holds what serve needs: a new token, or a held one that came from elsewhere.
      if (tokenFile && (issued || held?.origin !== opts.tokenFile)) {
        writeTokenFile(tokenFile, session.accessToken);
        tokenWritten = true;
        io.err(`wrote the access token to ${tokenFile}`);
      }
    },
  });

  const [status, approvals] = [result.rooms.find((r) => r.role === "status")!, result.rooms.find((r) => r.role === "approvals")!];
  io.out(`RURIKO_MATRIX_HOMESERVER=${opts.matrixHomeserver}`);
  io.out(`RURIKO_MATRIX_USER=${result.session.userId}`);
  io.out(`RURIKO_STATUS_ROOM=${status.alias}`);
  if (tokenFile) io.out(`RURIKO_MATRIX_ACCESS_TOKEN_FILE=${tokenFile}`);
  else if (result.tokenIssued) {
    io.out(`RURIKO_MATRIX_ACCESS_TOKEN=${result.session.accessToken}`);
    io.err("warning: the access token is printed on stdout; keep it out of logs and shell history (--token-file writes it to a file instead)");
  } else io.out(`# RURIKO_MATRIX_ACCESS_TOKEN: the one given still works`);
  io.out(`# ApprovalPolicy spec.room: "${approvals.alias}" (${approvals.roomId}); status room ${status.roomId}`);

  for (const problem of result.problems) io.err(`problem: ${problem}`);
  if (result.changes.length === 0 && !tokenWritten) io.err(`nothing changed: ${result.session.userId}, ${status.alias} and ${approvals.alias} exist, and ${opts.operator.join(", ")} ${opts.operator.length === 1 ? "is" : "are"} invited to or in both`);
  return result.problems.length > 0 ? 1 : 0;
}
