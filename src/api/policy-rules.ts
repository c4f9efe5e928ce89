/**
 * ApprovalPolicy rules the gate could never enforce are refused at validation, with the file, line and
 * field, instead of being accepted and silently ignored: an operation that never happens to that kind, a
 * field no change of that kind carries, a `require: none` for deleting an agent (which always needs
 * approval). Which operations and fields exist is derived from the schemas. Pure.
 */
import agentSchema from "../../schemas/agent.schema.json" with { type: "json" };
import approvalPolicySchema from "../../schemas/approvalpolicy.schema.json" with { type: "json" };
import gosutoSchema from "../../schemas/gosuto.schema.json" with { type: "json" };
import { formatJsonPath, type ManifestError } from "./errors.ts";
import type { ApprovalPolicyManifest } from "./generated/types.ts";
import type { LoadedObject } from "./parse.ts";

type RuleKind = NonNullable<NonNullable<ApprovalPolicyManifest["spec"]["rules"]>[number]["match"]["kind"]>;

/** The operations each kind of change comes as. */
export const OPERATIONS_BY_KIND: Record<RuleKind, readonly string[]> = {
  Agent: ["create", "update", "delete", "start", "stop"],
  Gosuto: ["create", "update"],
  SecretBinding: ["grant", "revoke"],
  Secret: ["delete", "rotate"],
  ApprovalPolicy: ["create", "update", "delete"],
};

/**
 * The top-level fields a change of each kind can carry. An Agent's container fields, its Matrix identity and its
 * state (`gosuto` is not one: switching an agent's Gosuto is a Gosuto change); every field of a Gosuto or a policy.
 */
export const FIELDS_BY_KIND: Record<RuleKind, readonly string[]> = {
  Agent: ["image", "env", "resources", "matrix", "state"].filter((f) => f in agentSchema.properties.spec.properties),
  Gosuto: Object.keys(gosutoSchema.properties.spec.properties),
  SecretBinding: [],
  Secret: [],
  ApprovalPolicy: Object.keys(approvalPolicySchema.properties.spec.properties),
};

const FIELD_OPERATIONS = ["create", "update", "start", "stop"];

export function checkPolicyRules(policy: LoadedObject & { object: ApprovalPolicyManifest }): ManifestError[] {
  const errors: ManifestError[] = [];
  const at = (segments: Array<string | number>, message: string): void => {
    const position = policy.source.locate(segments.join("."));
    errors.push({ code: "schema", file: policy.source.file, ...position, kind: policy.kind, name: policy.name, path: formatJsonPath(segments), message });
  };
  (policy.object.spec.rules ?? []).forEach((rule, i) => {
    const { kind, operation, fields = [] } = rule.match;
    const base = ["spec", "rules", i, "match"];
    if (kind && operation && !OPERATIONS_BY_KIND[kind].includes(operation)) {
      at([...base, "operation"], `a ${kind} change is never "${operation}" (it is one of: ${OPERATIONS_BY_KIND[kind].join(", ")})`);
    }
    if (kind === "Agent" && operation === "delete" && rule.require === "none") {
      at(["spec", "rules", i, "require"], "deleting an agent always needs approval; this rule could never be honoured");
    }
    if (fields.length === 0) return;
    const known = kind ? FIELDS_BY_KIND[kind] : [...new Set(Object.values(FIELDS_BY_KIND).flat())];
    if (known.length === 0) {
      at([...base, "fields"], `${kind} changes carry no fields`);
      return;
    }
    if (operation && !FIELD_OPERATIONS.includes(operation)) {
      at([...base, "fields"], `"${operation}" changes carry no fields (fields apply to: ${FIELD_OPERATIONS.join(", ")})`);
      return;
    }
    fields.forEach((field, j) => {
      if (!known.includes(field)) at([...base, "fields", j], `no ${kind ? `${kind} ` : ""}change carries the field "${field}" (one of: ${known.join(", ")})`);
    });
  });
  return errors;
}
