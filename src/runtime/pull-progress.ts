/**
 * A pull's progress, summed over its layers from the engine's progress messages, and told at most once per
 * interval: a log line per layer chunk would be hundreds of lines for one image. Pure apart from the clock
 * the caller passes in.
 *
 * Example: messages `{id: a, status: "Downloading", progressDetail: {current: 5e6, total: 2e7}}`, `{id: b,
 * status: "Already exists"}` → "1/2 layers, 4.8 of 19.1 MiB".
 */

/** One progress message of Docker's pull stream (`POST /images/create`). */
export interface PullMessage {
  id?: string;
  status?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

interface Layer {
  done: boolean;
  current: number;
  total: number;
}

/** Statuses after which a layer needs nothing more ("Download complete" still has its extraction ahead). */
const LAYER_DONE = new Set(["Pull complete", "Already exists"]);
/** Statuses that are about a layer (Docker also sends id-carrying lines about the tag: "Pulling from …"). */
const LAYER_STATUS = /^(Pulling fs layer|Waiting|Downloading|Verifying Checksum|Download complete|Extracting|Pull complete|Already exists|Retrying)/;

export interface PullSummary {
  layers: number;
  layersDone: number;
  /** Bytes downloaded so far, and of how many (layers whose size is known yet). */
  bytes: number;
  totalBytes: number;
  /** The manifest digest the engine reports ("Digest: sha256:…"), once known. */
  digest?: string;
  /** The engine found nothing newer than what it had ("Image is up to date"). */
  upToDate: boolean;
}

export class PullProgress {
  private readonly layers = new Map<string, Layer>();
  private digest: string | undefined;
  private upToDate = false;
  private lastToldAt: number;
  private readonly intervalMs: number;

  /** `startedAt`: when the pull started (the first line is told one interval after it). */
  constructor(startedAt: number, intervalMs: number) {
    this.lastToldAt = startedAt;
    this.intervalMs = intervalMs;
  }

  /** Takes one message; the engine's error message when it is one. */
  add(message: PullMessage): string | undefined {
    if (message.error || message.errorDetail?.message) return message.errorDetail?.message ?? message.error;
    const status = message.status ?? "";
    const digest = /^Digest: (sha256:[a-f0-9]{64})/.exec(status);
    if (digest) this.digest = digest[1];
    if (/Image is up to date/.test(status)) this.upToDate = true;
    if (!message.id || !LAYER_STATUS.test(status)) return undefined;
    const layer = this.layers.get(message.id) ?? { done: false, current: 0, total: 0 };
    if (LAYER_DONE.has(status)) {
      layer.done = true;
    } else if (status === "Download complete") {
      if (layer.total > 0) layer.current = layer.total;
    } else if (status === "Downloading" && message.progressDetail) {
      layer.current = message.progressDetail.current ?? layer.current;
      layer.total = message.progressDetail.total ?? layer.total;
    }
    this.layers.set(message.id, layer);
    return undefined;
  }

  summary(): PullSummary {
    let bytes = 0;
    let totalBytes = 0;
    let layersDone = 0;
    for (const layer of this.layers.values()) {
      bytes += layer.current;
      totalBytes += layer.total;
      if (layer.done) layersDone++;
    }
    return { layers: this.layers.size, layersDone, bytes, totalBytes, ...(this.digest ? { digest: this.digest } : {}), upToDate: this.upToDate };
  }

  /** The summary when a line is due at `now` (one interval since the last), else undefined. */
  due(now: number): PullSummary | undefined {
    if (now - this.lastToldAt < this.intervalMs) return undefined;
    this.lastToldAt = now;
    return this.summary();
  }
}

const MIB = 1024 * 1024;

/** "3/5 layers, 12.4 of 40.0 MiB"; "…, extracting" once everything is downloaded but not yet unpacked. */
export function describeProgress(s: PullSummary): string {
  const size = s.totalBytes > 0 ? `, ${(s.bytes / MIB).toFixed(1)} of ${(s.totalBytes / MIB).toFixed(1)} MiB` : "";
  const extracting = s.totalBytes > 0 && s.bytes >= s.totalBytes && s.layersDone < s.layers ? ", extracting" : "";
  return `${s.layersDone}/${s.layers} layers${size}${extracting}`;
}
