/**
 * The Agent Control Protocol's shared facts (DESIGN.md §5), used by both ends: Gitai's server and
 * Ruriko's client validate bodies with the same schema (schemas/acp.schema.json).
 */
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import acpSchema from "../../schemas/acp.schema.json" with { type: "json" };
import type { AcpApplied, AcpConfigRequest, AcpEvent, AcpEvents, AcpHealth, AcpMatrixRequest, AcpSecretsRequest, AcpStatus } from "../api/generated/types.ts";

export const ACP_TRACE_HEADER = "x-trace-id";
/** Where Ruriko puts the agent's bearer token: a file in the agent's data volume, not the container config. */
export const ACP_TOKEN_FILE = "acp-token";
/** Largest body Gitai accepts: a Gosuto document is limited to 256 KiB of text, secrets to 64 KiB each. */
export const ACP_BODY_LIMIT = 1024 * 1024;

export interface AcpBodies {
  AcpHealth: AcpHealth;
  AcpStatus: AcpStatus;
  AcpConfigRequest: AcpConfigRequest;
  AcpSecretsRequest: AcpSecretsRequest;
  AcpMatrixRequest: AcpMatrixRequest;
  AcpApplied: AcpApplied;
  AcpEvent: AcpEvent;
  AcpEvents: AcpEvents;
}

let ajv: Ajv2020 | undefined;
const validators = new Map<string, ValidateFunction>();

function validator(name: keyof AcpBodies): ValidateFunction {
  if (!ajv) {
    ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
    addFormats.default(ajv);
    ajv.addSchema(acpSchema);
  }
  let v = validators.get(name);
  if (!v) {
    v = ajv.compile({ $ref: `${acpSchema.$id}#/$defs/${name}` });
    validators.set(name, v);
  }
  return v;
}

/** Problems with a body, in words ("secrets.openai: must be string"); empty when it fits the protocol. */
export function acpBodyProblems(name: keyof AcpBodies, value: unknown): string[] {
  const validate = validator(name);
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath.replace(/^\//, "").replace(/\//g, ".") || "body"}: ${e.message ?? "is invalid"}`);
}

export function isAcpBody<K extends keyof AcpBodies>(name: K, value: unknown): value is AcpBodies[K] {
  return acpBodyProblems(name, value).length === 0;
}
