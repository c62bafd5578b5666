/**
 * The InfluxDB HTTP API as the writer uses it: the write and create-database requests (v1
 * `/write`, v2 `/api/v2/write`), each answer sorted into written, refused (the points are
 * bad), split (too large) or retry (InfluxDB unreachable, overloaded or misconfigured).
 * Secrets (the token, a password in the URL) never leave this module unredacted.
 * @module
 */

/** Why a request is to be retried later. */
export type Retry = {
  kind: "retry";
  reason: string;
  status?: number;
  retryAfterMs?: number;
  /** v1: the database is missing and must be created first. */
  dbMissing?: true;
};

/** What InfluxDB made of a write. */
export type WriteAnswer =
  | { kind: "written" }
  | { kind: "refused"; status: number; message: string }
  | { kind: "split" }
  | Retry;

/** What InfluxDB made of `CREATE DATABASE`. */
export type CreateDbAnswer =
  | { kind: "created" }
  | { kind: "not_created"; status: number; message: string }
  | Retry;

/** Where and how to write. */
export interface InfluxEndpoint {
  url: string;
  api: "v1" | "v2";
  db: string;
  token?: string;
  org?: string;
  bucket?: string;
  timeoutMs: number;
  /** HTTP client of the requests (one trusting `INFLUX_CA`); default: `fetch`'s own. */
  client?: Deno.HttpClient;
}

/** Requests to one InfluxDB, one answer each; {@linkcode abort} cancels the one in flight. */
export class InfluxHttp {
  readonly #api: "v1" | "v2";
  readonly #timeoutMs: number;
  readonly #writeUrl: string;
  readonly #createDbUrl: string;
  readonly #headers: Record<string, string>;
  readonly #secrets: string[];
  readonly #abort = new AbortController();
  readonly #client?: Deno.HttpClient;

  /** Builds the URLs and headers of `e`. */
  constructor(e: InfluxEndpoint) {
    this.#api = e.api;
    this.#client = e.client;
    this.#timeoutMs = e.timeoutMs;
    const base = e.url.replace(/\/+$/, "");
    if (e.api === "v1") {
      // nanoseconds (InfluxDB 1.x's own default, spelled out): see toLineProtocol
      const q = new URLSearchParams({ db: e.db, precision: "ns" });
      this.#writeUrl = `${base}/write?${q}`;
    } else {
      const q = new URLSearchParams();
      if (e.org !== undefined) q.set("org", e.org);
      if (e.bucket !== undefined) q.set("bucket", e.bucket);
      q.set("precision", "ns");
      this.#writeUrl = `${base}/api/v2/write?${q}`;
    }
    const create = `CREATE DATABASE "${e.db.replace(/["\\]/g, "\\$&")}"`;
    this.#createDbUrl = `${base}/query?${new URLSearchParams({ q: create })}`;
    this.#headers = { "Content-Type": "text/plain; charset=utf-8" };
    if (e.token) this.#headers.Authorization = `Token ${e.token}`;
    this.#secrets = [e.token, new URL(base).password].filter((s): s is string => !!s);
  }

  /** Aborts the request in flight and every later one. */
  abort(): void {
    this.#abort.abort(new DOMException("writer closed", "AbortError"));
  }

  #signal(): AbortSignal {
    return AbortSignal.any([AbortSignal.timeout(this.#timeoutMs), this.#abort.signal]);
  }

  /** v1: `CREATE DATABASE` (a refusal, e.g. no admin rights, is not retried). */
  async createDb(): Promise<CreateDbAnswer> {
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.#createDbUrl, {
        method: "POST",
        headers: this.#headers,
        signal: this.#signal(),
        client: this.#client,
      });
      text = await res.text();
    } catch (err) {
      return { kind: "retry", reason: this.#describe(err) };
    }
    if (res.status === 429 || res.status >= 500) return retryOf(res, text);
    if (res.ok) return { kind: "created" };
    return { kind: "not_created", status: res.status, message: this.redact(bodyMessage(text)) };
  }

  /** Writes `n` points, `body` in line protocol (UTF-8). */
  async write(body: Uint8Array<ArrayBuffer>, n: number): Promise<WriteAnswer> {
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.#writeUrl, {
        method: "POST",
        headers: this.#headers,
        body,
        signal: this.#signal(),
        client: this.#client,
      });
      text = await res.text();
    } catch (err) {
      return { kind: "retry", reason: this.#describe(err) };
    }
    if (res.status === 429 || res.status >= 500) return retryOf(res, text);
    if (this.#api === "v1" && res.status === 404 && /database not found/i.test(text)) {
      return { kind: "retry", reason: "database not found", status: 404, dbMissing: true };
    }
    if (res.status === 401 || res.status === 403 || res.status === 404) {
      // Wrong token, no permission, unknown bucket/org: a configuration problem an operator
      // fixes, not a bad point. Retrying (and backpressure) keeps the data; refusing loses it.
      return retryOf(res, text);
    }
    if (res.status === 413 && n > 1) return { kind: "split" };
    if (res.ok) return { kind: "written" };
    return { kind: "refused", status: res.status, message: this.redact(bodyMessage(text)) };
  }

  #describe(err: unknown): string {
    if (err instanceof DOMException && err.name === "TimeoutError") {
      return `timeout after ${this.#timeoutMs} ms`;
    }
    // fetch's TypeError says only "fetch failed"; its cause says why (a certificate, a refusal)
    const why = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return this.redact(err instanceof Error ? err.message + why : String(err));
  }

  /** `s` without the token, the URL's password or any user info of a URL. */
  redact(s: string): string {
    for (const secret of this.#secrets) s = s.replaceAll(secret, "***");
    return s.replace(/\/\/[^/@\s]*@/g, "//***@");
  }
}

function retryOf(res: Response, text: string): Retry {
  const after = Number(res.headers.get("retry-after"));
  return {
    kind: "retry",
    reason: bodyMessage(text) || res.statusText || `HTTP ${res.status}`,
    status: res.status,
    retryAfterMs: after > 0 ? after * 1000 : undefined,
  };
}

/** The `message` (v2) or `error` (v1) of a JSON error body, else the text (truncated). */
function bodyMessage(text: string): string {
  try {
    const j = JSON.parse(text);
    const m = j?.message ?? j?.error;
    if (typeof m === "string") return m;
  } catch {
    // not JSON
  }
  return text.slice(0, 500);
}
