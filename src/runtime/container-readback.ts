/**
 * What the engine shows of a container's configuration, as the facts a ContainerSpec was turned into
 * (docker-runtime.ts `create`). Used once, when Ruriko takes over containers whose inventory rows were lost
 * (controller/engine-adoption.ts): which spec made the container is worked out from these facts and checked
 * against the spec digest in its label.
 */
import type Docker from "dockerode";
import { LABELS, RuntimeError, type ContainerFacts } from "./runtime.ts";


function envRecord(entries: readonly string[] | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of entries ?? []) {
    const eq = entry.indexOf("=");
    if (eq < 0) out[entry] = "";
    else out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

const statusOf = (error: unknown) => (error as { statusCode?: number }).statusCode;

/** Reads one container's configuration and its image's environment. */
export async function readContainerFacts(docker: Docker, containerId: string): Promise<ContainerFacts> {
  let info: Docker.ContainerInspectInfo;
  try {
    info = await docker.getContainer(containerId).inspect();
  } catch (error) {
    throw new RuntimeError("inspect", undefined, statusOf(error) === undefined ? "engine-unavailable" : "failed", `container ${containerId}: ${(error as Error).message}`, { cause: error });
  }
  let imageEnv: Record<string, string> = {};
  try {
    imageEnv = envRecord((await docker.getImage(info.Image).inspect()).Config?.Env);
  } catch (error) {
    // A force-removed image leaves its containers: their own environment is then all there is to go on.
    if (statusOf(error) !== 404) throw new RuntimeError("inspect image", undefined, "failed", `image of container ${containerId}: ${(error as Error).message}`, { cause: error });
  }
  return {
    id: info.Id,
    // Made from an image id (its tag had moved): the reference is in a label.
    image: info.Config.Labels?.[LABELS.image] ?? info.Config.Image,
    env: envRecord(info.Config.Env),
    imageEnv,
    memoryBytes: info.HostConfig.Memory ?? 0,
    nanoCpus: info.HostConfig.NanoCpus ?? 0,
    pidsLimit: info.HostConfig.PidsLimit ?? null,
    networkMode: info.HostConfig.NetworkMode ?? "",
    exposedPorts: Object.keys(info.Config.ExposedPorts ?? {}),
    labels: info.Config.Labels ?? {},
  };
}
