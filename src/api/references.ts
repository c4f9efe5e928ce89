import { checkSchedule, checkTimeZone, DEFAULT_TIME_ZONE } from "../gitai/gateways/schedule.ts";
import { formatJsonPath, type ManifestError, type SourcePosition } from "./errors.ts";
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

  for (const obj of byKey.values()) {
    const checks = checksOf(obj);
    const reference = REFERENCES[obj.kind];
    if (reference && checks.references !== undefined && !byKey.has(objectKey(reference.kind, checks.references))) {
      errors.push(errorAt(obj, reference.path, "missing-reference", `refers to ${reference.kind} "${checks.references}", which is not defined`));
    }
    errors.push(...checks.errors);
  }
  return errors;
}

/** What is valid but deserves a word: a deprecated field, or a part that is accepted but ignored. */
export function warningsAbout(objects: readonly LoadedObject[]): ManifestError[] {
  return objects.flatMap((obj) => checksOf(obj).warnings);
}

/**
 * What the checks of one object alone find, and the name of the object it refers to, which the snapshot must
 * hold. The loader runs them as it reads each object, while it has it in hand (a snapshot of stored objects
 * would otherwise parse each again, object-store.ts); for other objects they run when the snapshot is built.
 */
export interface ObjectChecks {
  /** For an Agent, its Gosuto's name; for a SecretBinding, its Agent's (REFERENCES). */
  references?: string;
  errors: readonly ManifestError[];
  warnings: readonly ManifestError[];
}

/** The field by which an object of each kind names another, and that other's kind. */
const REFERENCES: Partial<Record<Kind, { path: string; kind: Kind }>> = {
  Agent: { path: "spec.gosuto", kind: "Gosuto" },
  SecretBinding: { path: "spec.agent", kind: "Agent" },
};

const checksOf = (obj: LoadedObject): ObjectChecks => obj.checks ?? checkObject(obj);

export function checkObject(obj: LoadedObject): ObjectChecks {
  const object = obj.object;
  if (object.kind === "Agent") return { references: object.spec.gosuto, errors: [], warnings: [] };
  if (object.kind === "SecretBinding") {
    const warnings =
      object.spec.env === undefined
        ? []
        : [errorAt(obj, "spec.env", "deprecated", "is deprecated and ignored: the agent's Gosuto says where a granted secret goes (spec.secrets[]: {name, envVar, mcps})")];
    return { references: object.spec.agent, errors: [], warnings };
  }
  if (object.kind === "ApprovalPolicy") return { errors: checkPolicyRules(obj as LoadedObject & { object: ApprovalPolicyManifest }), warnings: [] };
  const gosuto = obj as LoadedGosuto;
  const warnings: ManifestError[] = [];
  (object.spec?.gateways ?? []).forEach((gateway, i) => {
    if (gateway.type === "webhook") {
      warnings.push(errorNear(gosuto, `spec.gateways.${i}.type`, "deprecated", "webhook gateways are not implemented yet; this one is ignored"));
    }
  });
  return { errors: checkGosutoParts(gosuto), warnings };
}

type LoadedGosuto = LoadedObject & { object: GosutoManifest };

/**
 * A Gosuto's secrets go to servers it defines, each variable once per server; its rules name servers it has;
 * its gateways can run; what its rules and limits ask for is configured (approvals, pricing).
 */
function checkGosutoParts(gosuto: LoadedGosuto): ManifestError[] {
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
  errors.push(...checkGateways(gosuto), ...checkApprovals(gosuto), ...checkBudget(gosuto));
  return errors;
}

/**
 * A cron gateway has what it needs to run on its own: a schedule that parses in its zone, a prompt, and a
 * target room the agent may post to. Names are unique: the agent tells gateways apart by name.
 */
function checkGateways(gosuto: LoadedGosuto): ManifestError[] {
  const errors: ManifestError[] = [];
  const targets = (gosuto.object.spec?.messaging?.allowedTargets ?? []).flatMap((t) => [t.roomId, t.alias]).filter((t) => t !== undefined);
  const firstByName = new Map<string, number>();
  (gosuto.object.spec?.gateways ?? []).forEach((gateway, i) => {
    const at = `spec.gateways.${i}`;
    const first = firstByName.get(gateway.name);
    if (first !== undefined) errors.push(errorNear(gosuto, `${at}.name`, "duplicate", `gateway "${gateway.name}" is already defined at spec.gateways[${first}]`));
    else firstByName.set(gateway.name, i);
    if (gateway.type !== "cron") return;
    for (const field of ["schedule", "prompt", "target"] as const) {
      if (!gateway[field]) errors.push(errorNear(gosuto, `${at}.${field}`, "schema", `is required for a cron gateway (${REQUIRED_BECAUSE[field]})`));
    }
    const zone = gateway.timeZone ?? DEFAULT_TIME_ZONE;
    const zoneProblem = checkTimeZone(zone);
    if (zoneProblem) errors.push(errorNear(gosuto, `${at}.timeZone`, "schema", zoneProblem));
    else if (gateway.schedule) {
      const scheduleProblem = checkSchedule(gateway.schedule, zone);
      if (scheduleProblem) errors.push(errorNear(gosuto, `${at}.schedule`, "schema", scheduleProblem));
    }
    if (gateway.target && !targets.includes(gateway.target)) {
      errors.push(
        errorNear(gosuto, `${at}.target`, "missing-reference", `room "${gateway.target}" is not in spec.messaging.allowedTargets; list it there as roomId or alias, written as here`),
      );
    }
  });
  return errors;
}

const REQUIRED_BECAUSE = {
  schedule: "when it fires",
  prompt: "what the agent is asked",
  target: "the room the result is posted to",
} as const;

/** A rule that waits for a human needs somewhere to ask and someone to answer; otherwise every such call fails. */
function checkApprovals(gosuto: LoadedGosuto): ManifestError[] {
  const rules = (gosuto.object.spec?.capabilities ?? []).flatMap((rule, i) => (rule.requireApproval ? [`${rule.name} (spec.capabilities[${i}])`] : []));
  if (rules.length === 0) return [];
  const because = `${rules.length === 1 ? "capability" : "capabilities"} ${rules.join(", ")} ${rules.length === 1 ? "has" : "have"} requireApproval`;
  const approvals = gosuto.object.spec?.approvals;
  const errors: ManifestError[] = [];
  if (approvals?.enabled !== true) errors.push(errorNear(gosuto, "spec.approvals.enabled", "conflict", `must be true: ${because}`));
  if (!approvals?.room) errors.push(errorNear(gosuto, "spec.approvals.room", "conflict", `is required, the room where requests are posted: ${because}`));
  if ((approvals?.approvers ?? []).length === 0) errors.push(errorNear(gosuto, "spec.approvals.approvers", "conflict", `must list at least one approver: ${because}`));
  return errors;
}

/** A monthly budget in dollars is kept by pricing each request's tokens; without prices it could not be kept. */
function checkBudget(gosuto: LoadedGosuto): ManifestError[] {
  const budget = gosuto.object.spec?.limits?.maxMonthlyCostUSD ?? 0;
  if (budget <= 0 || gosuto.object.spec?.persona?.pricing) return [];
  return [
    errorNear(
      gosuto,
      "spec.limits.maxMonthlyCostUSD",
      "conflict",
      "needs spec.persona.pricing (inputPerMTok and outputPerMTok, US dollars per million tokens) to count what the model costs",
    ),
  ];
}

function positionOf(obj: LoadedObject, path: string): SourcePosition {
  return obj.source.locate(path);
}

function where(obj: LoadedObject, path: string): string {
  const { line, column } = positionOf(obj, path);
  return `${obj.source.file}:${line}:${column}`;
}

/**
 * An error about `path` (dotted) shown as people read it (`spec.gateways[0].target`), placed at the nearest
 * part of it written in the file: a field that is missing, or filled in by a schema default, has no line.
 */
function errorNear(obj: LoadedObject, path: string, code: ManifestError["code"], message: string): ManifestError {
  const segments = path.split(".");
  const documentStart = positionOf(obj, "");
  let written = segments.length;
  while (written > 1 && samePosition(positionOf(obj, segments.slice(0, written).join(".")), documentStart)) written--;
  const shown = formatJsonPath(segments.map((s) => (/^\d+$/.test(s) ? Number(s) : s)));
  return { ...errorAt(obj, segments.slice(0, written).join("."), code, message), path: shown };
}

function samePosition(a: SourcePosition, b: SourcePosition): boolean {
  return a.line === b.line && a.column === b.column;
}

/** `path` is dotted (for finding the position); `shownPath` is how people read it (`spec.secrets[0].mcps[1]`). */
function errorAt(obj: LoadedObject, path: string, code: ManifestError["code"], message: string, shownPath = path): ManifestError {
  return { code, file: obj.source.file, ...positionOf(obj, path), kind: obj.kind, name: obj.name, path: shownPath, message };
}
