/**
 * Image references as the distribution spec (and so Docker, containerd and the kubelet) reads them: which
 * registry host a reference names, which repository, tag and digest. Pure; engine-neutral.
 *
 * Example: `127.0.0.1:5000/team/agent:1.4@sha256:ab…` → registry `127.0.0.1:5000`, repository
 * `127.0.0.1:5000/team/agent`, tag `1.4`, digest `sha256:ab…` (the digest decides; the tag is only a label).
 * `ubuntu` → registry `docker.io`, path `library/ubuntu`, repository `ubuntu`, tag `latest` implied.
 */

export interface ImageReference {
  /** The registry host (and port) the image is pulled from, lower case; `docker.io` when the reference names none. */
  registry: string;
  /** The repository under that registry: `team/agent`, `library/ubuntu`. */
  path: string;
  /** As the engine shows it in RepoTags and RepoDigests: `127.0.0.1:5000/team/agent`, `ubuntu`. */
  repository: string;
  tag?: string;
  /** `sha256:…`: the reference is pinned to that exact manifest. */
  digest?: string;
}

export const DOCKER_HUB = "docker.io";
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?$/;

/** Parses a reference; undefined when it is not one (the Agent schema refuses those before they get here). */
export function parseImageReference(text: string): ImageReference | undefined {
  const at = text.indexOf("@");
  const digest = at === -1 ? undefined : text.slice(at + 1);
  if (digest !== undefined && !DIGEST.test(digest)) return undefined;
  let name = at === -1 ? text : text.slice(0, at);
  let tag: string | undefined;
  const colon = name.lastIndexOf(":");
  if (colon > name.lastIndexOf("/")) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
    if (!TAG.test(tag)) return undefined;
  }
  const slash = name.indexOf("/");
  const first = slash === -1 ? "" : name.slice(0, slash);
  // Docker's rule: the first component is a registry host when it looks like one (a dot, a port, localhost).
  const hasHost = slash !== -1 && (first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase());
  let registry = hasHost ? first.toLowerCase() : DOCKER_HUB;
  let path = hasHost ? name.slice(slash + 1) : name;
  if (hasHost && !HOST.test(first)) return undefined;
  if (registry === "index.docker.io" || registry === "registry-1.docker.io") registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !path.includes("/")) path = `library/${path}`;
  if (path === "" || !path.split("/").every((c) => COMPONENT.test(c))) return undefined;
  const familiar = registry === DOCKER_HUB ? path.replace(/^library\/(?=[^/]+$)/, "") : `${registry}/${path}`;
  return { registry, path, repository: familiar, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** True when the reference names an exact manifest (`@sha256:…`): it cannot move, so it is never checked for moving. */
export const isPinned = (text: string): boolean => parseImageReference(text)?.digest !== undefined;

/** The registry digest (`sha256:…`) under which an image is known in the reference's repository, if any. */
export function digestIn(repoDigests: readonly string[], reference: ImageReference): string | undefined {
  for (const entry of repoDigests) {
    const at = entry.lastIndexOf("@");
    if (at === -1) continue;
    const other = parseImageReference(entry.slice(0, at));
    if (other && other.registry === reference.registry && other.path === reference.path) return entry.slice(at + 1);
  }
  return undefined;
}

/**
 * What an engine's pull is asked for: the repository and either the digest (which wins over any tag, as Docker
 * itself does for `repo:tag@sha256:…`) or the tag (`latest` when none is given).
 */
export function pullTarget(reference: ImageReference): { repository: string; tagOrDigest: string } {
  return { repository: reference.repository, tagOrDigest: reference.digest ?? reference.tag ?? "latest" };
}
