/**
 * Synapse's admin API for accounts: shared-secret registration, deactivation and force-join.
 * Errors name the call and the HTTP status; they never carry the shared secret or a password.
 */
import { createHmac } from "node:crypto";

export class SynapseAdminError extends Error {
  readonly call: string;
  readonly status: number | undefined;
  constructor(call: string, status: number | undefined, detail: string) {
    super(`synapse admin ${call} failed${status ? ` (HTTP ${status})` : ""}: ${detail}`);
    this.name = "SynapseAdminError";
    this.call = call;
    this.status = status;
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
  if (!response.ok) throw new SynapseAdminError(name, response.status, body.errcode ? `${body.errcode}: ${body.error ?? ""}` : response.statusText);
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

export async function deactivateUser(baseUrl: string, adminToken: string, userId: string): Promise<void> {
  await call("deactivate", `${baseUrl}/_synapse/admin/v1/deactivate/${encodeURIComponent(userId)}`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ erase: false }),
  });
}

export async function forceJoin(baseUrl: string, adminToken: string, roomIdOrAlias: string, userId: string): Promise<string> {
  const body = await call<{ room_id: string }>("join", `${baseUrl}/_synapse/admin/v1/join/${encodeURIComponent(roomIdOrAlias)}`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ user_id: userId }),
  });
  return body.room_id;
}
