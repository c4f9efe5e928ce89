#!/usr/bin/env node
import { Command, Option } from "commander";
import { RURIKO_VERSION } from "../version.ts";
import type { Output } from "./approvals.ts";
import type { BootstrapOptions } from "./bootstrap.ts";
import { applySwitchesFromEnv, preferCommandLine } from "./environment.ts";
import type { HistoryOutput } from "./history.ts";
import { bootstrapOptions, serveOptions, stateDirOption } from "./options.ts";
import type { PlanOutput } from "./plan.ts";
import type { ServeRunOptions as ServeOptions } from "./serve.ts";
import type { ValidateOutput } from "./validate.ts";

// Commands load their modules when run: `validate` in a pull-request check needs no Docker client.

const program = new Command()
  .name("ruriko")
  .description("Declarative GitOps control plane for AI agents running as containers")
  .version(RURIKO_VERSION)
  .showHelpAfterError()
  // Options take RURIKO_… variables (docs/configuration.md); a switch's variable is read as true or false.
  .hook("preAction", (_program, command) => applySwitchesFromEnv(command, process.env));

program
  .command("validate")
  .description("validate a manifest tree; prints every error with file:line:column and exits 1 if there is any")
  .argument("[path]", "manifest directory", ".")
  .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
  .action(async (path: string, opts: { output: ValidateOutput }) => {
    const { runValidate } = await import("./validate.ts");
    process.exitCode = await runValidate(path, opts.output);
  });

const serve = program
  .command("serve")
  .description("run the controller: converge Docker to the manifests, park risky changes behind approvals (every option also from RURIKO_…, see docs/configuration.md)");
for (const option of serveOptions()) serve.addOption(option);
serve.action(async (opts: Omit<ServeOptions, "resyncSeconds" | "gitIntervalSeconds" | "agentPollSeconds" | "imagePullTimeoutSeconds" | "masterKeySource"> & { resync: number; gitInterval: number; agentPoll: number; imagePullTimeout: number }, command: Command) => {
  const { serve: run } = await import("./serve.ts");
  // A source given on the command line wins over one from the environment (RURIKO_GIT set, --manifests given).
  const chosen = preferCommandLine(opts, (key) => command.getOptionValueSource(key), ["manifests", "git"]);
  const masterKeySource = command.getOptionValueSource("masterKeyFile");
  await run({ ...chosen, resyncSeconds: opts.resync, gitIntervalSeconds: opts.gitInterval, agentPollSeconds: opts.agentPoll, imagePullTimeoutSeconds: opts.imagePullTimeout, ...(masterKeySource ? { masterKeySource } : {}) });
});

const bootstrap = program
  .command("bootstrap")
  .description(
    "create Ruriko's Matrix account, its status and approval rooms, and invite the operator (Synapse shared-secret registration: RURIKO_MATRIX_REGISTRATION_SECRET[_FILE]); running it again changes nothing",
  );
for (const option of bootstrapOptions()) bootstrap.addOption(option);
bootstrap.action(async (opts: BootstrapOptions) => {
  const { runBootstrap } = await import("./bootstrap.ts");
  process.exitCode = await runBootstrap(opts);
});

program
  .command("backup")
  .description("copy the state database into FILE, safely while serve runs (restore it with `ruriko restore FILE`)")
  .argument("<file>", "the backup file to write (never left half-written)")
  .addOption(stateDirOption())
  .option("--replace", "overwrite FILE if it exists", false)
  .action(async (file: string, opts: { stateDir: string; replace: boolean }) => {
    const { runBackup } = await import("./backup.ts");
    process.exitCode = await runBackup(file, opts);
  });

program
  .command("restore")
  .description("put a backup in place of the state database (stop serve first); the database replaced is kept beside it")
  .argument("<file>", "a backup written by `ruriko backup`")
  .addOption(stateDirOption())
  .action(async (file: string, opts: { stateDir: string }) => {
    const { runRestore } = await import("./backup.ts");
    process.exitCode = runRestore(file, opts);
  });

program
  .command("plan")
  .description("show what serve would do now, with reasons and the actions that need approval")
  .option("--manifests <dir>", "manifest directory", ".")
  .addOption(stateDirOption())
  .addOption(new Option("-o, --output <format>", "output format").choices(["text", "markdown", "json"]).default("text"))
  .action(async (opts: { manifests: string; stateDir: string; output: PlanOutput }) => {
    const { runPlan } = await import("./plan.ts");
    process.exitCode = await runPlan(opts);
  });

program
  .command("status")
  .description("show every agent's status and the source's last revision")
  .addOption(stateDirOption())
  .addOption(new Option("-o, --output <format>", "output format").choices(["table", "json"]).default("table"))
  .action(async (opts: { stateDir: string; output: "table" | "json" }) => {
    const { runStatus } = await import("./status.ts");
    process.exitCode = runStatus(opts);
  });

program
  .command("history")
  .description("list the git commits that changed an agent (→ marks the one applied); needs serve --git")
  .argument("<agent>", "agent name")
  .addOption(stateDirOption())
  .option("--path <path>", "sub-path of the repository holding the manifests (default: the one serve follows, else .)")
  .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
  .action(async (agent: string, opts: { stateDir: string; path?: string; output: HistoryOutput }) => {
    const { runHistory } = await import("./history.ts");
    process.exitCode = await runHistory(agent, opts);
  });

const approvals = program.command("approvals").description("list and decide approval requests (the local, break-glass path)");
const outputOption = () => new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text");
approvals
  .command("list")
  .description("pending requests (or --all)")
  .addOption(stateDirOption())
  .addOption(outputOption())
  .option("--all", "every request, whatever its status", false)
  .action(async (opts: { stateDir: string; output: Output; all: boolean }) => {
    const { approvalsList } = await import("./approvals.ts");
    process.exitCode = approvalsList(opts.stateDir, opts);
  });
approvals
  .command("show")
  .argument("<id>", "request id (or a unique prefix)")
  .addOption(stateDirOption())
  .addOption(outputOption())
  .action(async (id: string, opts: { stateDir: string; output: Output }) => {
    const { approvalsShow } = await import("./approvals.ts");
    process.exitCode = approvalsShow(opts.stateDir, id, opts);
  });
for (const decision of ["approve", "deny"] as const) {
  approvals
    .command(decision)
    .argument("<id>", "request id (or a unique prefix)")
    .addOption(stateDirOption())
    .option("--reason <text>", "why (recorded in the audit log)")
    .action(async (id: string, opts: { stateDir: string; reason?: string }) => {
      const { approvalsDecide } = await import("./approvals.ts");
      process.exitCode = approvalsDecide(opts.stateDir, id, decision, opts);
    });
}

const masterKeyOption = () => new Option("--master-key-file <file>", "master key file (default: RURIKO_MASTER_KEY, else <state-dir>/master.key)");
const secret = program.command("secret").description("the encrypted secret store (values never on the command line, never printed)");
for (const [command, rotate, description] of [
  ["set", false, "create a secret or store a new version (value from --from-file, stdin, or a prompt that does not echo)"],
  ["rotate", true, "store a new version of an existing secret; bound agents get it without a restart"],
] as const) {
  secret
    .command(command)
    .description(description)
    .argument("<name>", "secret name")
    .option("--from-file <file>", "read the value from a file")
    .addOption(stateDirOption())
    .addOption(masterKeyOption())
    .action(async (name: string, opts: { stateDir: string; masterKeyFile?: string; fromFile?: string }) => {
      const { secretSet } = await import("./secret.ts");
      process.exitCode = await secretSet(name, { ...opts, rotate });
    });
}
secret
  .command("list")
  .description("names, versions and times (no values)")
  .addOption(stateDirOption())
  .addOption(masterKeyOption())
  .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
  .action(async (opts: { stateDir: string; masterKeyFile?: string; output: "text" | "json" }) => {
    const { secretList } = await import("./secret.ts");
    process.exitCode = secretList(opts);
  });
secret
  .command("info")
  .argument("<name>", "secret name")
  .description("one secret's metadata (no value)")
  .addOption(stateDirOption())
  .addOption(masterKeyOption())
  .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
  .action(async (name: string, opts: { stateDir: string; masterKeyFile?: string; output: "text" | "json" }) => {
    const { secretInfo } = await import("./secret.ts");
    process.exitCode = secretInfo(name, opts);
  });
secret
  .command("delete")
  .argument("<name>", "secret name")
  .description("delete a secret: parked behind an approval, carried out once approved")
  .addOption(stateDirOption())
  .addOption(masterKeyOption())
  .action(async (name: string, opts: { stateDir: string; masterKeyFile?: string }) => {
    const { secretDelete } = await import("./secret.ts");
    process.exitCode = await secretDelete(name, opts);
  });
secret
  .command("rekey")
  .description("re-encrypt every secret and agent token under a new master key")
  .option("--new-key-file <file>", "the new master key (or RURIKO_NEW_MASTER_KEY)")
  .addOption(stateDirOption())
  .addOption(masterKeyOption())
  .action(async (opts: { stateDir: string; masterKeyFile?: string; newKeyFile?: string }) => {
    const { secretRekey } = await import("./secret.ts");
    process.exitCode = secretRekey(opts);
  });
secret
  .command("keygen")
  .description("print a new random master key (base64)")
  .action(async () => {
    const { secretKeygen } = await import("./secret.ts");
    process.exitCode = secretKeygen();
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Errors of Ruriko's own carry their context in the message; a stack helps nobody at the terminal.
  console.error(`ruriko: ${error instanceof Error ? error.message : String(error)}`);
  if (process.env.RURIKO_DEBUG && error instanceof Error) console.error(error.stack);
  process.exitCode = 1;
}
