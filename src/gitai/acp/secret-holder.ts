import type { AcpSecretsRequest } from "../../api/generated/types.ts";

/**
 * The agent's secrets, in memory only: never written to disk, never logged, gone with the process.
 * Each PUT replaces the whole set, so a secret no longer bound is dropped.
 */
export class SecretHolder {
  private held = new Map<string, string>();
  private versions: Record<string, number> = {};
  private currentDigest: string | null = null;

  replace(request: AcpSecretsRequest): void {
    this.held = new Map(Object.entries(request.secrets).filter((e): e is [string, string] => e[1] !== undefined));
    this.versions = Object.fromEntries(Object.entries(request.versions).filter((e): e is [string, number] => e[1] !== undefined));
    this.currentDigest = request.digest;
  }

  /** A secret's value, for the part of the agent its Gosuto gives it to (a tool server, the model). */
  value(name: string): string | undefined {
    return this.held.get(name);
  }

  /** Every value held: what must never be shown (approval requests redact them). */
  values(): string[] {
    return [...this.held.values()];
  }

  get digest(): string | null {
    return this.currentDigest;
  }

  /** Names and versions, for /status. */
  describe(): Array<{ name: string; version: number }> {
    return [...this.held.keys()].sort().map((name) => ({ name, version: this.versions[name] ?? 1 }));
  }
}
