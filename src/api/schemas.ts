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

let validators: Record<Kind, ValidateFunction> | undefined;

function compileValidators(): Record<Kind, ValidateFunction> {
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, useDefaults: true, verbose: true });
  addFormats.default(ajv);
  ajvErrors.default(ajv);
  for (const schema of [commonSchema, agentSchema, gosutoSchema, secretBindingSchema, approvalPolicySchema, manifestSchema]) {
    ajv.addSchema(schema);
  }
  const compiled = {} as Record<Kind, ValidateFunction>;
  for (const [kind, schema] of Object.entries(SCHEMA_BY_KIND)) {
    const validate = ajv.getSchema(schema.$id);
    if (!validate) throw new Error(`schema ${schema.$id} for ${kind} did not compile`);
    compiled[kind as Kind] = validate;
  }
  return compiled;
}

/** Compiled once, on first use: compiling the schemas costs tens of milliseconds. */
export function validatorFor(kind: Kind): KindValidator {
  validators ??= compileValidators();
  return validators[kind];
}
