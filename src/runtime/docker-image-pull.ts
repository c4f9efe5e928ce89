/**
 * Pulls images through the Docker engine (`POST /images/create`), for DockerRuntime.ensureImage: the
 * registry's credential only as the pull's auth header, progress in the log a line per interval, a deadline,
 * and a failure classified into a short reason (image-pull-failure.ts). Two agents asking for the same image
 * at once share one pull.
 */
import type Docker from "dockerode";
import { classifyPullFailure, PULL_TIMED_OUT, shortEngineMessage } from "./image-pull-failure.ts";
import { DOCKER_HUB, parseImageReference, pullTarget, type ImageReference } from "./image-reference.ts";
import { describeProgress, PullProgress, type PullMessage } from "./pull-progress.ts";
import { ImagePullError, RuntimeError, type PullFailure, type RegistryCredential, type RegistryCredentialLookup, type RuntimeLog } from "./runtime.ts";

export interface DockerImagePullerOptions {
  docker: Docker;
  /** A pull still running after this long is abandoned (and counted as failed: timeout). */
  timeoutMs: number;
  /** At most one progress line per this long (default 5 s). */
  progressIntervalMs?: number;
  log?: RuntimeLog;
  now?: () => number;
}

export interface PullRequest {
  agent: string;
  image: string;
  credentials?: RegistryCredentialLookup;
  log?: RuntimeLog;
  /** The image is known not to be on the engine (IfNotPresent found nothing): said so in a failure. */
  absent: boolean;
}

/** The engine's pull auth (X-Registry-Auth). Docker Hub's credentials are addressed to its index. */
function authConfigOf(registry: string, credential: RegistryCredential): Docker.AuthConfigObject {
  return { username: credential.username, password: credential.password, serveraddress: registry === DOCKER_HUB ? "https://index.docker.io/v1/" : registry };
}

/** A failure of the socket to the engine itself (not of the registry behind it): the caller reports the engine. */
const isEngineSocketError = (error: unknown): boolean => {
  const e = error as { statusCode?: number; code?: string } | undefined;
  return e?.statusCode === undefined && typeof e?.code === "string" && /^E[A-Z]+$/.test(e.code) && e.code !== "ABORT_ERR";
};

export class DockerImagePuller {
  private readonly o: Required<Omit<DockerImagePullerOptions, "log">> & Pick<DockerImagePullerOptions, "log">;
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly aborts = new Set<AbortController>();
  private stopped = false;

  constructor(options: DockerImagePullerOptions) {
    this.o = { progressIntervalMs: 5000, now: Date.now, ...options };
  }

  /**
   * Serve is stopping: pulls under way are abandoned now, not at their deadline (up to --image-pull-timeout), and
   * none begins after; each fails with RuntimeError "interrupted". The engine gives up a pull whose request is gone.
   */
  stop(): void {
    this.stopped = true;
    for (const abort of this.aborts) abort.abort(STOPPING);
  }

  /** Pulls the image; resolves when the engine has it. A pull of the same reference under way is joined. */
  pull(request: PullRequest): Promise<void> {
    const running = this.inFlight.get(request.image);
    if (running) return running;
    const pull = this.pullOnce(request).finally(() => this.inFlight.delete(request.image));
    this.inFlight.set(request.image, pull);
    return pull;
  }

  private async pullOnce(request: PullRequest): Promise<void> {
    const { agent, image } = request;
    // Before any judgement of the request: nothing is found wrong, or failed, while serve stops.
    if (this.stopped) throw interrupted(agent);
    const log = request.log ?? this.o.log;
    const reference = parseImageReference(image);
    if (!reference) throw new ImagePullError(agent, image, { reason: "invalid reference", definitive: true }, `${image} is not an image reference`);
    const auth = request.credentials?.(reference.registry);
    const what = request.absent ? `image ${image} is not present on this host and could not be pulled from ${reference.registry}` : `could not pull ${image} from ${reference.registry}`;
    if (auth?.problem) throw new ImagePullError(agent, image, { reason: "credential unusable", definitive: true }, `${what}: ${auth.from} ${auth.problem}`);
    const credential = auth?.credential;
    const started = this.o.now();
    log?.info({ agent, image, registry: reference.registry, credential: credential ? auth!.from : "none" }, `pulling image ${image}`);
    const abort = new AbortController();
    this.aborts.add(abort);
    const timer = setTimeout(() => abort.abort(), this.o.timeoutMs);
    timer.unref();
    const progress = new PullProgress(started, this.o.progressIntervalMs);
    let engineError: string | undefined;
    try {
      const { repository, tagOrDigest } = pullTarget(reference);
      const options = { fromImage: repository, tag: tagOrDigest, abortSignal: abort.signal };
      const stream = credential ? await this.o.docker.createImage(authConfigOf(reference.registry, credential), options) : await this.o.docker.createImage(options);
      let buffered = "";
      for await (const chunk of stream) {
        buffered += chunk.toString();
        let newline: number;
        while ((newline = buffered.indexOf("\n")) !== -1) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line) engineError ??= progress.add(parseMessage(line));
        }
        const due = progress.due(this.o.now());
        if (due) log?.info({ agent, image, layers: due.layers, layersDone: due.layersDone, bytes: due.bytes, totalBytes: due.totalBytes }, `pulling image ${image}: ${describeProgress(due)}`);
      }
      if (buffered.trim()) engineError ??= progress.add(parseMessage(buffered.trim()));
    } catch (error) {
      if (abort.signal.reason === STOPPING) throw interrupted(agent);
      if (abort.signal.aborted) throw this.failed(request, reference, PULL_TIMED_OUT, `${what} (not done within ${Math.round(this.o.timeoutMs / 1000)} s: serve --image-pull-timeout)`, credential);
      if (isEngineSocketError(error)) throw error;
      engineError = engineMessageOf(error);
    } finally {
      clearTimeout(timer);
      this.aborts.delete(abort);
    }
    if (abort.signal.reason === STOPPING) throw interrupted(agent);
    if (engineError !== undefined) {
      const failure = classifyPullFailure(engineError);
      throw this.failed(request, reference, failure, `${what}${hintFor(failure, auth, credential, engineError)}`, credential);
    }
    const s = progress.summary();
    const seconds = ((this.o.now() - started) / 1000).toFixed(1);
    log?.info(
      { agent, image, digest: s.digest, layers: s.layers, totalBytes: s.totalBytes, durationMs: this.o.now() - started },
      s.upToDate ? `image ${image} is up to date (${seconds} s)` : `pulled image ${image} in ${seconds} s${s.digest ? ` (${s.digest})` : ""}: ${describeProgress(s)}`,
    );
  }

  /** The error for a failed pull. No cause is attached: the engine's raw text stays out of errors and status. */
  private failed(request: PullRequest, reference: ImageReference, failure: PullFailure, detail: string, credential: RegistryCredential | undefined): ImagePullError {
    const log = request.log ?? this.o.log;
    log?.warn({ agent: request.agent, image: request.image, registry: reference.registry, reason: failure.reason }, `pulling image ${request.image} failed: ${failure.reason}`);
    return new ImagePullError(request.agent, request.image, failure, credential ? scrub(detail, credential) : detail);
  }
}

const STOPPING = Symbol("Ruriko is stopping");
const interrupted = (agent: string) => new RuntimeError("pull", agent, "interrupted", "Ruriko is stopping");

function parseMessage(line: string): PullMessage {
  try {
    return JSON.parse(line) as PullMessage;
  } catch {
    return {};
  }
}

function engineMessageOf(error: unknown): string {
  const json = (error as { json?: { message?: string } } | undefined)?.json;
  if (json?.message) return json.message;
  return error instanceof Error ? error.message : String(error);
}

/** What would fix it, for the failures a person can fix: the credential, and for an unknown failure the engine's words, shortened. */
function hintFor(failure: PullFailure, auth: ReturnType<RegistryCredentialLookup> | undefined, credential: RegistryCredential | undefined, engineError: string): string {
  if (failure.reason === "unauthorized" || failure.reason === "denied") {
    if (!auth) return "";
    return credential ? ` (with the credential from ${auth.from})` : ` (no credential: store one as ${auth.from})`;
  }
  if (failure.reason === "error") return `: ${shortEngineMessage(engineError, credential ? [credential.password] : [])}`;
  return "";
}

const scrub = (text: string, credential: RegistryCredential): string => (credential.password ? text.split(credential.password).join("[redacted]") : text);
