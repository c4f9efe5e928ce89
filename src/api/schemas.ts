import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import ajvErrors from "ajv-errors";
import addFormats from "ajv-formats";
import agentSchema from "../../schemas/agent.schema.json" with { type: "json" };
import approvalPolicySchema from "../../schemas/approvalpolicy.schema.json" with { type: "json" };
import commonSchema from "../../schemas/common.schema.json" with { type: "json" };
import gosutoSchema from "../../schemas/gosuto.schema.json" with { type: "json" };
import manifestSchema from "../../schemas/manifest.schema.json" with { type: "json" };
import secretBindingSchema from "../../schemas/secretbinding.schema.json" with { type: "json" };
import type { Kind } from "./kinds.ts";

/**
 * The JSON Schemas in `schemas/` are the single source of truth for every kind: Ajv validates with them
 * here (in Ruriko and in Gitai alike), editors read them through yaml-language-server, and the TypeScript
 * types in `generated/types.ts` are generated from them.
 */
const SCHEMA_BY_KIND: Record<Kind, { $id: string }> = {
  Agent: agentSchema,
  Gosuto: gosutoSchema,
  SecretBinding: secretBindingSchema,
  ApprovalPolicy: approvalPolicySchema,
};

export type SchemaError = ErrorObject;

export interface KindValidator {
  /** Validates in place: defaults from the schema are filled into `value`. */
  (value: unknown): boolean;
  errors?: SchemaError[] | null;
}

let ajv: Ajv2020 | undefined;
const validators = new Map<Kind, ValidateFunction>();

/**
 * Each kind's validator is compiled on its first use, and only then (compiling costs tens of milliseconds and
 * some megabytes: an agent, which validates Gosutos only, never pays for the others).
 */
export function validatorFor(kind: Kind): KindValidator {
  let validate = validators.get(kind);
  if (!validate) {
    ajv ??= schemaRegistry();
    validate = ajv.getSchema(SCHEMA_BY_KIND[kind].$id);
    if (!validate) throw new Error(`schema ${SCHEMA_BY_KIND[kind].$id} for ${kind} did not compile`);
    validators.set(kind, validate);
  }
  return validate;
}

function schemaRegistry(): Ajv2020 {
  const registry = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, useDefaults: true, verbose: true });
  addFormats.default(registry);
  ajvErrors.default(registry);
  for (const schema of [commonSchema, agentSchema, gosutoSchema, secretBindingSchema, approvalPolicySchema, manifestSchema]) registry.addSchema(schema);
  return registry;
}
