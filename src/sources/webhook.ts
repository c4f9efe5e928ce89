import { createHmac, timingSafeEqual } from "node:crypto";

/** Checks a GitHub-style `X-Hub-Signature-256: sha256=<hex>` over the raw body, in constant time. */
export function verifyGitHubSignature(secret: string, rawBody: Buffer, header: string | undefined): boolean {
  if (!header || !header.startsWith("sha256=")) return false;
  const given = Buffer.from(header.slice("sha256=".length), "hex");
  const expected = createHmac("sha256", secret).update(rawBody).digest();
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The branch a push event is about (`ref: refs/heads/main` → `main`), if any. */
export function webhookBranch(payload: unknown): string | undefined {
  const ref = (payload as { ref?: unknown } | null)?.ref;
  return typeof ref === "string" && ref.startsWith("refs/heads/") ? ref.slice("refs/heads/".length) : undefined;
}
