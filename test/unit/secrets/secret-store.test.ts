import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { generateMasterKeyText, open, parseMasterKey, seal, SecretCryptoError } from "../../../src/secrets/crypto.ts";
import { loadMasterKey } from "../../../src/secrets/master-key.ts";
import { openVault } from "../../../src/secrets/vault.ts";
import { rekey } from "../../../src/store/master-key-check.ts";
import { SecretStoreError } from "../../../src/store/secret-store.ts";
import { openState, STATE_DB_FILE } from "../../../src/store/state.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-secrets-"));
  dirs.push(dir);
  return dir;
}

describe("master key and AES-GCM sealing", () => {
  test("base64 and hex forms of one key give the same key id; anything else is refused with its origin", () => {
    const text = generateMasterKeyText();
    const hex = Buffer.from(text, "base64").toString("hex");
    assert.equal(parseMasterKey(text, "a").id, parseMasterKey(hex, "b").id);
    assert.throws(() => parseMasterKey("too-short", "RURIKO_MASTER_KEY"), (e: Error) => e instanceof SecretCryptoError && /RURIKO_MASTER_KEY/.test(e.message) && !/too-short/.test(e.message));
  });

  test("a ciphertext opens only with its key and its associated data", () => {
    const key = parseMasterKey(generateMasterKeyText(), "test");
    const other = parseMasterKey(generateMasterKeyText(), "test");
    const sealed = seal(key, Buffer.from("hunter2"), "ruriko secret a v1");
    assert.equal(open(key, sealed, "ruriko secret a v1", "a").toString(), "hunter2");
    assert.throws(() => open(key, sealed, "ruriko secret b v1", "secret b"), /secret b failed authentication/);
    assert.throws(() => open(other, sealed, "ruriko secret a v1", "a"), (e: Error) => e instanceof SecretCryptoError && e.code === "wrong-key");
    assert.throws(() => open(key, { ...sealed, ciphertext: Buffer.from(sealed.ciphertext.map((b) => b ^ 1)) }, "ruriko secret a v1", "a"), /altered/);
  });

  test("the key file: generated 0600 only when allowed, refused when readable by others", () => {
    const dir = tempDir();
    assert.throws(() => loadMasterKey({ stateDir: dir, env: {}, mayGenerate: false }), /no master key/);
    const generated = loadMasterKey({ stateDir: dir, env: {}, mayGenerate: true });
    assert.equal(generated.generated, true);
    const file = join(dir, "master.key");
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(loadMasterKey({ stateDir: dir, env: {}, mayGenerate: false }).key.id, generated.key.id);
    const loose = join(dir, "loose.key");
    writeFileSync(loose, readFileSync(file), { mode: 0o644 });
    assert.throws(() => loadMasterKey({ stateDir: dir, keyFile: loose, env: {}, mayGenerate: false }), /readable by other users/);
  });
});

describe("secret store", () => {
  test("versions, rotation, metadata without values, and values sealed at rest", () => {
    const dir = tempDir();
    const state = openState(dir);
    const vault = openVault(state, { stateDir: dir, env: { RURIKO_MASTER_KEY: generateMasterKeyText() } });
    const before = state.feed.latest();
    assert.equal(vault.secrets.set("openai-key", Buffer.from("sk-plaintext-one")).version, 1);
    assert.deepEqual(state.feed.since(before).map((c) => [c.topic, c.key]), [["secret", "openai-key"]], "every write is in the change feed, for serve to hear");
    const v2 = vault.secrets.set("openai-key", Buffer.from("sk-plaintext-two"), "rotate");
    assert.equal(v2.version, 2);
    assert.equal(vault.secrets.reveal("openai-key")?.value.toString(), "sk-plaintext-two");
    assert.deepEqual(vault.secrets.list().map((s) => [s.name, s.version]), [["openai-key", 2]]);
    assert.throws(() => vault.secrets.set("missing", Buffer.from("x"), "rotate"), (e: Error) => e instanceof SecretStoreError && e.code === "not-found");
    assert.throws(() => vault.secrets.set("Bad Name", Buffer.from("x")), (e: Error) => e instanceof SecretStoreError && e.code === "invalid-name");
    state.close();
    const raw = readFileSync(join(dir, STATE_DB_FILE)).toString("latin1") + readFileSync(join(dir, `${STATE_DB_FILE}-wal`), { flag: "a+" }).toString("latin1");
    assert.ok(!raw.includes("sk-plaintext"), "no plaintext in the database file");
  });

  test("a wrong master key is refused at open; rekey moves everything to the new key", () => {
    const dir = tempDir();
    const first = generateMasterKeyText();
    const second = generateMasterKeyText();
    let state = openState(dir);
    let vault = openVault(state, { stateDir: dir, env: { RURIKO_MASTER_KEY: first } });
    vault.secrets.set("a", Buffer.from("value-a"));
    // A rotation waiting for approval keeps its value sealed aside: it moves to the new key too.
    const staged = vault.secrets.stage("a", Buffer.from("value-a2"));
    const token = vault.tokens.issue("newsbot");
    state.close();

    state = openState(dir);
    assert.throws(() => openVault(state, { stateDir: dir, env: { RURIKO_MASTER_KEY: second } }), /is not the key this state database is encrypted under/);
    vault = openVault(state, { stateDir: dir, env: { RURIKO_MASTER_KEY: first } });
    assert.deepEqual(rekey(state.db, vault.key, parseMasterKey(second, "new")), { secrets: 1, tokens: 1 });
    state.close();

    state = openState(dir);
    assert.throws(() => openVault(state, { stateDir: dir, env: { RURIKO_MASTER_KEY: first } }), /not the key/);
    vault = openVault(state, { stateDir: dir, env: { RURIKO_MASTER_KEY: second } });
    assert.equal(vault.secrets.reveal("a")?.value.toString(), "value-a");
    assert.equal(vault.tokens.get("newsbot"), token);
    assert.equal(vault.secrets.promote("a", staged.revision, vault.secrets.info("a")!.revision)?.version, 2);
    assert.equal(vault.secrets.reveal("a")?.value.toString(), "value-a2");
    state.close();
  });

  test("a staged rotation changes nothing until promoted, and only from the value it was staged against", () => {
    const dir = tempDir();
    const state = openState(dir);
    const vault = openVault(state, { stateDir: dir, env: { RURIKO_MASTER_KEY: generateMasterKeyText() } });
    const v1 = vault.secrets.set("k", Buffer.from("one"));
    const staged = vault.secrets.stage("k", Buffer.from("two"));
    assert.equal(staged.version, 2);
    assert.equal(vault.secrets.reveal("k")?.value.toString(), "one", "staging is not rotating");
    assert.equal(vault.secrets.staged("k")?.revision, staged.revision);
    assert.equal(vault.secrets.promote("k", staged.revision, "not-the-current-revision"), undefined, "the secret moved on: nothing promoted");
    assert.equal(vault.secrets.promote("k", "another-staging", v1.revision), undefined);
    const v2 = vault.secrets.promote("k", staged.revision, v1.revision)!;
    assert.deepEqual([v2.version, v2.revision, vault.secrets.reveal("k")?.value.toString()], [2, staged.revision, "two"]);
    assert.equal(vault.secrets.staged("k"), undefined, "promoted once");
    const again = vault.secrets.stage("k", Buffer.from("three"));
    vault.secrets.discardStaged("k", again.revision);
    assert.equal(vault.secrets.staged("k"), undefined);
    assert.throws(() => vault.secrets.stage("nope", Buffer.from("x")), (e: Error) => e instanceof SecretStoreError && e.code === "not-found");
    state.close();
  });
});
