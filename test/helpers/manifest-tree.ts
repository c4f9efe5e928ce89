import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after } from "node:test";

/** Writes a manifest tree into a fresh temporary directory, removed after the test file. */
export function writeTree(files: Record<string, string | Uint8Array>): string {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-manifests-"));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export const GOSUTO_NEWSBOT = `apiVersion: ruriko.dev/v1alpha1
kind: Gosuto
metadata:
  name: newsbot
spec:
  capabilities:
    - name: deny-all
      mcp: "*"
      tool: "*"
      allow: false
`;

export function agentYaml(name: string, extraSpec = "", gosuto = "newsbot"): string {
  return `apiVersion: ruriko.dev/v1alpha1
kind: Agent
metadata:
  name: ${name}
spec:
  image: ruriko/gitai:dev
  gosuto: ${gosuto}
${extraSpec}`;
}
