/**
 * The public HTTP API, with the tab's credentials (sessionStorage only) and the caller's role
 * (`GET /v1/whoami`). A 401 asks for a sign-in and retries once signed in.
 * @module
 */

const TOKEN = "twinmill.token";

/** An error answer of the API: `{error: {code, message}}` and the HTTP status. */
export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** Who the console acts as: `{id, role, sites?, via}`; null until known. */
export const session = { me: null, onSignIn: null };

/** The stored bearer token, if any. */
export function token() {
  return sessionStorage.getItem(TOKEN);
}

/** Keep a token for this tab (or forget it with null). */
export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN, t);
  else sessionStorage.removeItem(TOKEN);
}

const ROLES = ["viewer", "operator", "admin"];

/** True when the caller's role includes `role` (viewer < operator < admin). */
export function can(role) {
  const mine = session.me?.role;
  return mine !== undefined && ROLES.indexOf(mine) >= ROLES.indexOf(role);
}

/** True when the caller sees only some sites. */
export function scoped() {
  return Array.isArray(session.me?.sites);
}

/**
 * Call the API: resolves `{status, body, headers}` for 2xx, rejects with {@linkcode ApiError}
 * otherwise. JSON bodies are sent as JSON; `opts.headers` adds headers.
 */
export async function api(path, opts = {}) {
  for (;;) {
    const headers = new Headers(opts.headers ?? {});
    const t = token();
    if (t) headers.set("authorization", `Bearer ${t}`);
    let body = opts.body;
    if (body !== undefined && typeof body !== "string") {
      body = JSON.stringify(body);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
    }
    const r = await fetch(path, { method: opts.method ?? "GET", headers, body });
    const text = await r.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    if (r.ok) return { status: r.status, body: json, headers: r.headers };
    if (r.status === 401 && !opts.noSignIn && session.onSignIn) {
      await session.onSignIn(json?.error?.message ?? "Sign in");
      continue;
    }
    const e = json?.error ?? {};
    throw new ApiError(r.status, e.code ?? `http_${r.status}`, e.message ?? r.statusText, json);
  }
}

/** GET JSON (the body only). */
export async function get(path) {
  return (await api(path)).body;
}

/** A query string of the defined, non-empty parameters. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * Who am I: sets `session.me`. `noSignIn`: a 401 rejects instead of asking for a sign-in
 * (the sign-in dialog checks its token so).
 */
export async function whoami(noSignIn = false) {
  session.me = (await api("/v1/whoami", { noSignIn })).body;
  return session.me;
}
