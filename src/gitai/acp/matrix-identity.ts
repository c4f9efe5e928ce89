import type { AcpMatrixHeld, AcpMatrixRequest } from "../../api/generated/types.ts";

/**
 * The agent's Matrix identity (homeserver, user id, access token), in memory only like its secrets: gone
 * with the process, pushed again by Ruriko after a restart. Each PUT replaces it; identity null drops it.
 */
export class MatrixIdentityHolder {
  private held: { homeserver: string; userId: string; accessToken: string; digest: string } | null = null;

  replace(request: AcpMatrixRequest): void {
    this.held = request.identity && request.digest ? { ...request.identity, digest: request.digest } : null;
  }

  /** The identity to log in with, and the digest that changes with it. */
  current(): { homeserver: string; userId: string; accessToken: string; digest: string } | null {
    return this.held;
  }

  /** For /status: who the agent is on Matrix, never its token. */
  describe(): AcpMatrixHeld | null {
    return this.held && { homeserver: this.held.homeserver, userId: this.held.userId, digest: this.held.digest };
  }
}
