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

/** A registry of every kind's schema, made on its first use, and the validators compiled from it by kind. */
interface Compiled {
  make: () => Ajv2020;
  registry?: Ajv2020;
  byKind: Map<Kind, ValidateFunction>;
}
const detailed: Compiled = { make: () => schemaRegistry(), byKind: new Map() };
const fast: Compiled = { make: () => fastSchemaRegistry(), byKind: new Map() };
const validators = new Map<Kind, KindValidator>();

function compiledFor(compiled: Compiled, kind: Kind): ValidateFunction {
  let validate = compiled.byKind.get(kind);
  if (!validate) {
    compiled.registry ??= compiled.make();
    validate = compiled.registry.getSchema(SCHEMA_BY_KIND[kind].$id);
    if (!validate) throw new Error(`schema ${SCHEMA_BY_KIND[kind].$id} for ${kind} did not compile`);
    compiled.byKind.set(kind, validate);
  }
  return validate;
}

/**
 * A kind's validator. It validates with the fast validator; its `errors`, read after a failure, come from the
 * detailed one, which runs then (and is compiled on the first failure of its kind): gathering every error with
 * its schema and custom message costs time on every document, and as much compiling again, that only a document
 * with errors needs. Each validator is compiled on its first use, and only then (compiling costs tens of
 * milliseconds and some megabytes: an agent, which validates Gosutos only, never pays for the others).
 */
export function validatorFor(kind: Kind): KindValidator {
  let validate = validators.get(kind);
  if (!validate) validators.set(kind, (validate = fastThenDetailed(kind)));
  return validate;
}

function fastThenDetailed(kind: Kind): KindValidator {
  let failed: { value: unknown; errors?: SchemaError[] | null } | undefined;
  const validate = (value: unknown): boolean => {
    const valid = fastValidatorFor(kind)(value);
    failed = valid ? undefined : { value };
    return valid;
  };
  return Object.defineProperty(validate, "errors", {
    get(): SchemaError[] | null {
      if (!failed) return null;
      if (failed.errors === undefined) {
        // The defaults the fast validator filled in are the ones this one would: the errors are the same.
        const explain = detailedValidatorFor(kind);
        explain(failed.value);
        failed.errors = explain.errors ?? null;
      }
      return failed.errors;
    },
  }) as KindValidator;
}

/** Every error, with its schema and custom message (ajv-errors); for documents that failed the fast validator. */
export function detailedValidatorFor(kind: Kind): KindValidator {
  return compiledFor(detailed, kind);
}

/**
 * A validator that accepts exactly what the detailed one accepts and fills in the same defaults, but stops at
 * the first problem and says nothing about it (test/unit/api/schemas.test.ts compares the two).
 */
export function fastValidatorFor(kind: Kind): KindValidator {
  return compiledFor(fast, kind);
}

/**
 * `errorMessage` (ajv-errors) only words errors, so here it is a keyword that checks nothing. The schemas are not
 * checked against the meta-schema here (25 ms at every start): the detailed registry checks them when it compiles,
 * as every test of an invalid manifest makes it.
 */
function fastSchemaRegistry(): Ajv2020 {
  const registry = new Ajv2020({ strict: true, allowUnionTypes: true, useDefaults: true, validateSchema: false });
  addFormats.default(registry);
  registry.addKeyword({ keyword: "errorMessage", schemaType: ["string", "object"] });
  for (const schema of [commonSchema, agentSchema, gosutoSchema, secretBindingSchema, approvalPolicySchema, manifestSchema]) registry.addSchema(schema);
  return registry;
}

function schemaRegistry(): Ajv2020 {
  const registry = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, useDefaults: true, verbose: true });
  addFormats.default(registry);
  ajvErrors.default(registry);
  for (const schema of [commonSchema, agentSchema, gosutoSchema, secretBindingSchema, approvalPolicySchema, manifestSchema]) registry.addSchema(schema);
  return registry;
}
