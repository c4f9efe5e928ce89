import Docker from "dockerode";

/** A Docker client that is known to answer; a clear error (never a skip) when the engine is not there. */
export async function dockerClient(): Promise<Docker> {
  const docker = new Docker();
  try {
    await docker.ping();
  } catch (error) {
    throw new Error(`the Docker engine does not answer on the default socket (${(error as Error).message}); .ci/run starts dockerd`);
  }
  return docker;
}

/** Labels for resources a test makes by hand, so they can be found and removed whatever happens. */
export const TEST_RUN = `run-${process.pid}-${Date.now().toString(36)}`;
export function testLabels(): Record<string, string> {
  return { "ruriko.test": "true", "ruriko.test/run": TEST_RUN };
}

export async function cleanupTestResources(docker: Docker, run = TEST_RUN): Promise<void> {
  const filters = JSON.stringify({ label: [`ruriko.test/run=${run}`] });
  for (const c of await docker.listContainers({ all: true, filters })) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {});
  for (const n of await docker.listNetworks({ filters })) await docker.getNetwork(n.Id).remove().catch(() => {});
  const { Volumes } = await docker.listVolumes({ filters });
  for (const v of Volumes ?? []) await docker.getVolume(v.Name).remove().catch(() => {});
}
