/**
 * Synapse's shared-secret registration (the one admin call Ruriko makes: it creates agents' accounts).
 * Errors name the call, the HTTP status and Synapse's errcode; they never carry the shared secret or a password.
 */
import { createHmac } from "node:crypto";

export class SynapseAdminError extends Error {
  readonly call: string;
  readonly status: number | undefined;
  readonly errcode: string | undefined;
  constructor(call: string, status: number | undefined, detail: string, errcode?: string) {
    super(`synapse admin ${call} failed${status ? ` (HTTP ${status})` : ""}: ${detail}`);
    this.name = "SynapseAdminError";
    this.call = call;
    this.status = status;
    this.errcode = errcode;
  }
}

async function call<T>(name: string, url: string, init: RequestInit): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
  } catch (error) {
    throw new SynapseAdminError(name, undefined, (error as Error).message);
  }
  const body = (await response.json().catch(() => ({}))) as T & { errcode?: string; error?: string };
  if (!response.ok) throw new SynapseAdminError(name, response.status, body.errcode ? `${body.errcode}: ${body.error ?? ""}` : response.statusText, body.errcode);
  return body;
}

export interface RegisteredUser {
  userId: string;
  accessToken: string;
  deviceId: string;
}

/** `GET` a nonce, then `POST` the registration with the HMAC-SHA1 of nonce, user, password and admin flag. */
export async function registerWithSharedSecret(
  baseUrl: string,
  sharedSecret: string,
  user: { username: string; password: string; admin?: boolean; displayname?: string },
): Promise<RegisteredUser> {
  const url = `${baseUrl}/_synapse/admin/v1/register`;
  const { nonce } = await call<{ nonce: string }>("register (nonce)", url, { method: "GET" });
  const admin = user.admin ?? false;
  const mac = createHmac("sha1", sharedSecret)
    .update(`${nonce}\0${user.username}\0${user.password}\0${admin ? "admin" : "notadmin"}`)
    .digest("hex");
  const body = await call<{ user_id: string; access_token: string; device_id: string }>("register", url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ nonce, username: user.username, password: user.password, admin, mac, ...(user.displayname ? { displayname: user.displayname } : {}) }),
  });
  return { userId: body.user_id, accessToken: body.access_token, deviceId: body.device_id };
}
