import type { ManifestError, SourcePosition } from "./errors.ts";
import { objectKey, type Kind, type ObjectKey } from "./kinds.ts";
import type { ApprovalPolicyManifest, GosutoManifest } from "./generated/types.ts";
import type { LoadedObject } from "./parse.ts";
import { checkPolicyRules } from "./policy-rules.ts";

/**
 * Checks beyond each object's schema: one definition per kind and name, references that resolve, a Gosuto's
 * parts that must agree with each other, and ApprovalPolicy rules the gate could enforce. Pure; positions come
 * from the parsed sources.
 */
export function checkAcrossObjects(objects: readonly LoadedObject[]): ManifestError[] {
  const errors: ManifestError[] = [];
  const byKey = new Map<ObjectKey, LoadedObject>();

  for (const obj of objects) {
    const first = byKey.get(obj.key);
    if (first) {
      errors.push(
        errorAt(obj, "metadata.name", "duplicate", `${obj.key} is defined twice: here and at ${where(first, "metadata.name")}`),
      );
      continue;
    }
    byKey.set(obj.key, obj);
  }

  const requireRef = (from: LoadedObject, path: string, kind: Kind, name: string) => {
    if (!byKey.has(objectKey(kind, name))) {
      errors.push(errorAt(from, path, "missing-reference", `refers to ${kind} "${name}", which is not defined`));
    }
  };
  for (const obj of byKey.values()) {
    if (obj.object.kind === "Agent") {
      requireRef(obj, "spec.gosuto", "Gosuto", obj.object.spec.gosuto);
    } else if (obj.object.kind === "ApprovalPolicy") {
      errors.push(...checkPolicyRules(obj as LoadedObject & { object: ApprovalPolicyManifest }));
    } else if (obj.object.kind === "Gosuto") {
      errors.push(...checkGosutoParts(obj as LoadedObject & { object: GosutoManifest }));
    } else if (obj.object.kind === "SecretBinding") {
      requireRef(obj, "spec.agent", "Agent", obj.object.spec.agent);
    }
  }
  return errors;
}

/** What is valid but deserves a word: a deprecated field that is ignored. */
export function warningsAbout(objects: readonly LoadedObject[]): ManifestError[] {
  const warnings: ManifestError[] = [];
  for (const obj of objects) {
    if (obj.object.kind === "SecretBinding" && obj.object.spec.env !== undefined) {
      warnings.push(errorAt(obj, "spec.env", "deprecated", "is deprecated and ignored: the agent's Gosuto says where a granted secret goes (spec.secrets[]: {name, envVar, mcps})"));
    }
  }
  return warnings;
}

/** A Gosuto's secrets go to servers it defines, each variable once per server; its rules name servers it has. */
function checkGosutoParts(gosuto: LoadedObject & { object: GosutoManifest }): ManifestError[] {
  const errors: ManifestError[] = [];
  const servers = new Set((gosuto.object.spec?.mcps ?? []).map((m) => m.name));
  const seen = new Map<string, number>();
  (gosuto.object.spec?.secrets ?? []).forEach((secret, i) => {
    secret.mcps.forEach((server, j) => {
      if (!servers.has(server)) errors.push(errorAt(gosuto, `spec.secrets.${i}.mcps.${j}`, "missing-reference", `names MCP server "${server}", which this Gosuto does not define in mcps[]`, `spec.secrets[${i}].mcps[${j}]`));
      const key = `${server}\0${secret.envVar}`;
      const other = seen.get(key);
      if (other !== undefined) errors.push(errorAt(gosuto, `spec.secrets.${i}.envVar`, "conflict", `server "${server}" already receives ${secret.envVar} from spec.secrets[${other}]`, `spec.secrets[${i}].envVar`));
      else seen.set(key, i);
    });
  });
  (gosuto.object.spec?.capabilities ?? []).forEach((rule, i) => {
    const server = rule.mcp ?? "*";
    if (server !== "*" && server !== "builtin" && !servers.has(server)) {
      errors.push(errorAt(gosuto, `spec.capabilities.${i}.mcp`, "missing-reference", `names MCP server "${server}", which this Gosuto does not define in mcps[] (or builtin, or *)`, `spec.capabilities[${i}].mcp`));
    }
  });
  return errors;
}

function positionOf(obj: LoadedObject, path: string): SourcePosition {
  return obj.source.locate(path);
}

function where(obj: LoadedObject, path: string): string {
  const { line, column } = positionOf(obj, path);
  return `${obj.source.file}:${line}:${column}`;
}

/** `path` is dotted (for finding the position); `shownPath` is how people read it (`spec.secrets[0].mcps[1]`). */
function errorAt(obj: LoadedObject, path: string, code: ManifestError["code"], message: string, shownPath = path): ManifestError {
  return { code, file: obj.source.file, ...positionOf(obj, path), kind: obj.kind, name: obj.name, path: shownPath, message };
}
