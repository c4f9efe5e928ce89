/**
 * Credentials for private image registries, from the encrypted secret store: one secret per registry host,
 * named by a fixed rule so that nothing in the manifests has to name it (docs/secrets.md#registry-credentials).
 * The value is `USERNAME:PASSWORD` (a token goes where the password goes). Read only when a pull is made, and
 * handed to the engine only as that pull's auth.
 *
 * Names: `registry.HOST` for a registry on its default port, `registry-PORT.HOST` for one on another port (secret
 * names allow neither `:` nor `/`). The part before the first dot is always `registry` or `registry-<port>`, so
 * each host and port has exactly one name and no two share one: `ghcr.io` → `registry.ghcr.io`;
 * `127.0.0.1:5000` → `registry-5000.127.0.0.1`; Docker Hub (`ubuntu`, `docker.io/team/x`) → `registry.docker.io`.
 */
import { parseImageReference } from "../runtime/image-reference.ts";
import type { RegistryCredential, RegistryCredentialLookup } from "../runtime/runtime.ts";

const HOST = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** The secret holding the credential for a registry host (`host` or `host:port`); undefined when no name can hold it (an IPv6 literal). */
export function registrySecretName(registry: string): string | undefined {
  const match = /^(.*?)(?::([0-9]+))?$/.exec(registry.toLowerCase());
  const [host, port] = [match?.[1] ?? "", match?.[2]];
  if (!HOST.test(host)) return undefined;
  return port === undefined ? `registry.${host}` : `registry-${Number(port)}.${host}`;
}

/** The registry host a secret name is the credential for, or undefined when it is not such a name (the inverse of registrySecretName). */
export function registryOfSecretName(name: string): string | undefined {
  const match = /^registry(?:-([0-9]+))?\.(.+)$/.exec(name);
  if (!match || !HOST.test(match[2]!)) return undefined;
  return match[1] === undefined ? match[2] : `${match[2]}:${Number(match[1])}`;
}

/** `USERNAME:PASSWORD` → the credential; undefined when the value is not of that form (nothing of it is ever repeated). */
export function parseRegistryCredential(value: string): RegistryCredential | undefined {
  const colon = value.indexOf(":");
  if (colon <= 0 || colon === value.length - 1) return undefined;
  return { username: value.slice(0, colon), password: value.slice(colon + 1) };
}

/** Looks a registry's credential up in the store (`reveal`: SecretStore's), by the naming rule above. */
export function registryCredentialsFrom(secrets: { reveal(name: string): { value: Buffer } | undefined }): RegistryCredentialLookup {
  return (registry) => {
    const name = registrySecretName(registry);
    if (!name) return { from: `no secret (a registry at ${registry} cannot have a credential in the store)` };
    const stored = secrets.reveal(name);
    if (!stored) return { from: `secret ${name}` };
    const credential = parseRegistryCredential(stored.value.toString("utf8").replace(/\r?\n$/, ""));
    return credential ? { from: `secret ${name}`, credential } : { from: `secret ${name}`, problem: "is not of the form USERNAME:PASSWORD" };
  };
}

/** True when pulling `image` would use the credential in secret `name`: a write to it is a reason to try that pull again. */
export function pullsWithSecret(image: string, name: string): boolean {
  const registry = parseImageReference(image)?.registry;
  return registry !== undefined && registrySecretName(registry) === name;
}
