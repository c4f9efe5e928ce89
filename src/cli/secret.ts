/**
 * `ruriko secret …`: the encrypted secret store from the command line. Values come from a file, from
 * stdin, or from a prompt that does not echo; they are never taken as arguments (they would land in shell
 * history and `ps`). Output shows metadata only.
 */
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { generateMasterKeyText, parseMasterKey } from "../secrets/crypto.ts";
import { Gatekeeper } from "../approvals/gatekeeper.ts";
import { proposeSecretChange, type SecretChangeDeps } from "../secrets/secret-changes.ts";
import { openVault, type Vault } from "../secrets/vault.ts";
import { newTraceId } from "../observability/logger.ts";
import { rekey } from "../store/master-key-check.ts";
import { MAX_SECRET_BYTES, type SecretInfo } from "../store/secret-store.ts";
import { openState, type StateStores } from "../store/state.ts";
import { localActor } from "./approvals.ts";

export interface SecretCommandOptions {
  stateDir: string;
  masterKeyFile?: string;
  output?: "text" | "json";
}

function withVault<T>(opts: SecretCommandOptions, run: (state: StateStores, vault: Vault) => T): T {
  const state = openState(opts.stateDir);
  try {
    const vault = openVault(state, { stateDir: opts.stateDir, ...(opts.masterKeyFile ? { keyFile: opts.masterKeyFile } : {}) });
    return run(state, vault);
  } finally {
    state.close();
  }
}

/** As withVault, with what a secret change is proposed through: the gate, under the policies in force. */
async function withGate<T>(opts: SecretCommandOptions, run: (state: StateStores, vault: Vault, deps: SecretChangeDeps) => Promise<T>): Promise<T> {
  const state = openState(opts.stateDir);
  try {
    const vault = openVault(state, { stateDir: opts.stateDir, ...(opts.masterKeyFile ? { keyFile: opts.masterKeyFile } : {}) });
    const gatekeeper = new Gatekeeper({ approvals: state.approvals, audit: state.audit, policies: () => state.policies.manifests() });
    return await run(state, vault, { secrets: vault.secrets, approvals: state.approvals, audit: state.audit, gatekeeper, transaction: state.transaction });
  } finally {
    state.close();
  }
}

/** Reads the value: from the file, else stdin when piped, else a prompt without echo. One trailing newline is dropped. */
export async function readSecretValue(fromFile: string | undefined, name: string): Promise<Buffer> {
  let raw: Buffer;
  if (fromFile) raw = readFileSync(fromFile);
  else if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of process.stdin) {
      size += (chunk as Buffer).length;
      if (size > MAX_SECRET_BYTES + 2) throw new Error(`secret ${name}: the value is larger than ${MAX_SECRET_BYTES} bytes`);
      chunks.push(chunk as Buffer);
    }
    raw = Buffer.concat(chunks);
  } else raw = Buffer.from(await promptHidden(`value for secret ${name}: `), "utf8");
  let end = raw.length;
  if (end > 0 && raw[end - 1] === 0x0a) end--;
  if (end > 0 && raw[end - 1] === 0x0d) end--;
  return raw.subarray(0, end);
}

function promptHidden(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    // Echo nothing of what is typed: only the question is written.
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
      if (s.startsWith(question)) process.stderr.write(question);
    };
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write("\n");
      resolve(answer);
    });
  });
}

function describe(info: SecretInfo): string {
  return `${info.name}  v${info.version}  updated ${info.updatedAt}  (key ${info.keyId})`;
}

export async function secretSet(name: string, opts: SecretCommandOptions & { fromFile?: string; rotate: boolean }): Promise<number> {
  const value = await readSecretValue(opts.fromFile, name);
  try {
    return await withGate(opts, async (state, vault, deps) => {
      if (!vault.secrets.info(name)) {
        if (opts.rotate) {
          console.error(`secret ${name} does not exist (create it with: ruriko secret set ${name})`);
          return 1;
        }
        const info = vault.secrets.set(name, value, "create-or-rotate");
        state.audit.append({ traceId: newTraceId(), actor: localActor(), action: "secret.create", target: `Secret/${name}`, payload: { secret: name, version: info.version }, result: "ok" });
        console.log(`secret ${name} stored as version ${info.version}; bound agents receive it in their next reconcile`);
        return 0;
      }
      // A new value of an existing secret is a rotation: the policies in force may want it approved.
      const result = await proposeSecretChange(deps, name, { operation: "rotate", value }, localActor(), newTraceId());
      switch (result.outcome) {
        case "applied":
          console.log(`secret ${name} stored as version ${result.info?.version}; bound agents receive it in their next reconcile`);
          return 0;
        case "parked":
          console.log(
            `rotating secret ${name} needs approval: request ${result.request.id} is pending; the new value is kept aside, sealed.\n` +
              `Approve with \`ruriko approvals approve ${result.request.id}\`; \`ruriko serve\` then rotates it.`,
          );
          return 0;
        case "refused":
          console.error(`rotating secret ${name} was refused (approval ${result.request.id} ${result.request.status})`);
          return 1;
        case "not-found":
          console.error(`secret ${name} changed while the rotation was proposed; run the command again`);
          return 1;
      }
    });
  } finally {
    value.fill(0);
  }
}

export function secretList(opts: SecretCommandOptions): number {
  return withVault(opts, (_state, vault) => {
    const list = vault.secrets.list();
    if (opts.output === "json") console.log(JSON.stringify(list, null, 2));
    else if (list.length === 0) console.log("no secrets");
    else for (const info of list) console.log(describe(info));
    return 0;
  });
}

export function secretInfo(name: string, opts: SecretCommandOptions): number {
  return withVault(opts, (_state, vault) => {
    const info = vault.secrets.info(name);
    if (!info) {
      console.error(`no secret ${name}`);
      return 1;
    }
    if (opts.output === "json") console.log(JSON.stringify(info, null, 2));
    else console.log([`name      ${info.name}`, `version   ${info.version}`, `created   ${info.createdAt}`, `updated   ${info.updatedAt}`, `key       ${info.keyId}`].join("\n"));
    return 0;
  });
}

export async function secretDelete(name: string, opts: SecretCommandOptions): Promise<number> {
  return withGate(opts, async (_state, _vault, deps) => {
    const result = await proposeSecretChange(deps, name, { operation: "delete" }, localActor(), newTraceId());
    switch (result.outcome) {
      case "not-found":
        console.error(`no secret ${name}`);
        return 1;
      case "applied":
        console.log(`secret ${name} deleted${result.request ? ` (approval ${result.request.id})` : ""}; bound agents lose it in their next reconcile`);
        return 0;
      case "parked":
        console.log(
          `deleting secret ${name} needs approval: request ${result.request.id} is pending.\n` +
            `Approve with \`ruriko approvals approve ${result.request.id}\`; \`ruriko serve\` then deletes it (or run this command again).`,
        );
        return 0;
      case "refused":
        console.error(`deleting secret ${name} was denied (approval ${result.request.id}${result.request.decidedBy ? ` by ${result.request.decidedBy}` : ""})`);
        return 1;
    }
  });
}

export function secretRekey(opts: SecretCommandOptions & { newKeyFile?: string }): number {
  const text = opts.newKeyFile ? readFileSync(opts.newKeyFile, "utf8") : process.env.RURIKO_NEW_MASTER_KEY;
  if (!text) {
    console.error("give the new master key with --new-key-file FILE or RURIKO_NEW_MASTER_KEY");
    return 1;
  }
  const next = parseMasterKey(text, opts.newKeyFile ? `key file ${opts.newKeyFile}` : "RURIKO_NEW_MASTER_KEY");
  return withVault(opts, (state, vault) => {
    const moved = rekey(state.db, vault.key, next);
    state.audit.append({ traceId: newTraceId(), actor: localActor(), action: "secret.rekey", target: "Secret/*", payload: { fromKey: vault.key.id, toKey: next.id, ...moved }, result: "ok" });
    console.log(
      `re-encrypted ${moved.secrets} secret(s) and ${moved.tokens} agent token(s) under key ${next.id} (was ${vault.key.id}).\n` +
        `From now on start Ruriko with the new key (RURIKO_MASTER_KEY or --master-key-file); the old key no longer opens this state.`,
    );
    return 0;
  });
}

export function secretKeygen(): number {
  console.log(generateMasterKeyText());
  return 0;
}
