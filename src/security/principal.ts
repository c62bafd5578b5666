/**
 * Who makes an HTTP request: an API key, a JWT, a WebSocket ticket, or — only while no
 * authentication is configured, which a non-loopback bind refuses — the anonymous admin.
 * @module
 */

/** Roles, weakest first: viewer reads; operator also changes desired state, sends commands
 * and acknowledges alarms; admin also provisions, manages profiles, credentials and audit. */
export const ROLES = ["viewer", "operator", "admin"] as const;

/** A role. */
export type Role = typeof ROLES[number];

/** An authenticated caller. */
export interface Principal {
  /** Stable, loggable id: `key:<first 6 chars>…`, `jwt:<sub>`, `anonymous`. Never a secret. */
  id: string;
  role: Role;
  /** Sites the caller may see and change; undefined = every site. */
  sites?: string[];
  via: "api_key" | "jwt" | "ticket" | "anonymous";
}

/** True when `role` includes everything `needed` may do. */
export function hasRole(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** True when the principal may touch a twin whose `site` attribute is `site`. */
export function inScope(p: Principal, site: unknown): boolean {
  return p.sites === undefined || (typeof site === "string" && p.sites.includes(site));
}
