import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const created: string[] = [];
process.on("exit", () => created.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Writes a manifest tree into a fresh temporary directory, removed when the test process exits. */
export function writeTree(files: Record<string, string | Uint8Array>): string {
  const dir = mkdtempSync(join(tmpdir(), "ruriko-manifests-"));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  created.push(dir);
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
