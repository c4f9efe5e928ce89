import type { ManifestError, SourcePosition } from "./errors.ts";
import { objectKey, type Kind, type ObjectKey } from "./kinds.ts";
import type { ApprovalPolicyManifest } from "./generated/types.ts";
import type { LoadedObject } from "./parse.ts";
import { checkPolicyRules } from "./policy-rules.ts";

/**
 * Checks that need the whole tree: one definition per kind and name, references that resolve, and
 * bindings that would collide inside one agent. Pure; positions come from the parsed sources.
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
  const bindingEnvByAgent = new Map<string, LoadedObject>();
  for (const obj of byKey.values()) {
    if (obj.object.kind === "Agent") {
      requireRef(obj, "spec.gosuto", "Gosuto", obj.object.spec.gosuto);
    } else if (obj.object.kind === "ApprovalPolicy") {
      errors.push(...checkPolicyRules(obj as LoadedObject & { object: ApprovalPolicyManifest }));
    } else if (obj.object.kind === "SecretBinding") {
      const { agent, env } = obj.object.spec;
      requireRef(obj, "spec.agent", "Agent", agent);
      if (env) {
        const envKey = `${agent}\0${env}`;
        const other = bindingEnvByAgent.get(envKey);
        if (other) {
          errors.push(
            errorAt(obj, "spec.env", "conflict", `agent "${agent}" already receives ${env} from SecretBinding/${other.name} (${where(other, "spec.env")})`),
          );
        } else {
          bindingEnvByAgent.set(envKey, obj);
        }
      }
    }
  }
  return errors;
}

function positionOf(obj: LoadedObject, path: string): SourcePosition {
  return obj.source.locate(path);
}

function where(obj: LoadedObject, path: string): string {
  const { line, column } = positionOf(obj, path);
  return `${obj.source.file}:${line}:${column}`;
}

function errorAt(obj: LoadedObject, path: string, code: ManifestError["code"], message: string): ManifestError {
  return { code, file: obj.source.file, ...positionOf(obj, path), kind: obj.kind, name: obj.name, path, message };
}
