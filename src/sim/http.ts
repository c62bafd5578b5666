/**
 * The simulator's HTTP side: provision attributes, issue and revoke device tokens, read twin
 * versions — with bounded concurrency, and retries on 429 (honouring `Retry-After`), 503 and
 * connection errors, since a node rate-limits API callers.
 * @module
 */

/** An HTTP call that failed for good; the message names the request and the answer. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(message: string, readonly status: number, readonly code?: string) {
    super(message);
  }
}

/** Most attempts per request (429, 503 and connection errors are retried). */
const ATTEMPTS = 8;

/** A small client of the twinmill HTTP API. */
export class Api {
  readonly #base: string;
  readonly #headers: Record<string, string>;

  constructor(base: string, apiKey?: string) {
    this.#base = base;
    this.#headers = { "content-type": "application/json" };
    if (apiKey) this.#headers.authorization = `Bearer ${apiKey}`;
  }

  /** Send a request; resolves with status and parsed JSON body (null when empty). */
  async request(
    method: string,
    path: string,
    body?: unknown,
    ok: number[] = [200, 201, 204],
  ): Promise<{ status: number; body: unknown }> {
    let wait = 100;
    for (let attempt = 1;; attempt++) {
      let res: Response;
      try {
        res = await fetch(this.#base + path, {
          method,
          headers: this.#headers,
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (err) {
        if (attempt >= ATTEMPTS) {
          const why = err instanceof Error ? err.message : String(err);
          throw new ApiError(`${method} ${this.#base}${path}: ${why}`, 0);
        }
        await sleep(wait);
        wait = Math.min(wait * 2, 2000);
        continue;
      }
      const text = await res.text();
      if ((res.status === 429 || res.status === 503) && attempt < ATTEMPTS) {
        const after = Number(res.headers.get("retry-after"));
        await sleep(Number.isFinite(after) && after > 0 ? Math.min(after, 10) * 1000 : wait);
        wait = Math.min(wait * 2, 2000);
        continue;
      }
      let parsed: unknown = null;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        parsed = text;
      }
      if (!ok.includes(res.status)) {
        // deno-lint-ignore no-explicit-any
        const e = (parsed as any)?.error;
        const what = e?.code ? `${e.code}: ${e.message}` : String(text).slice(0, 200);
        throw new ApiError(`${method} ${path} -> ${res.status} ${what}`, res.status, e?.code);
      }
      return { status: res.status, body: parsed };
    }
  }

  /** `PUT /v1/twins/{id}`: replace attributes; resolves with the twin's version afterwards. */
  async provision(id: string, attributes: Record<string, string>): Promise<number> {
    const r = await this.request("PUT", `/v1/twins/${encodeURIComponent(id)}`, { attributes });
    return versionOf(r.body, id);
  }

  /** `POST /v1/twins/{id}/credentials`: a new device token (shown once). */
  async issueToken(id: string): Promise<{ credId: string; token: string }> {
    const r = await this.request("POST", `/v1/twins/${encodeURIComponent(id)}/credentials`, {});
    // deno-lint-ignore no-explicit-any
    const b = r.body as any;
    if (typeof b?.id !== "string" || typeof b?.credentials?.token !== "string") {
      throw new ApiError(`POST /v1/twins/${id}/credentials: no token in the answer`, r.status);
    }
    return { credId: b.id, token: b.credentials.token };
  }

  /** `DELETE /v1/twins/{id}/credentials/{credId}`. */
  async revokeToken(id: string, credId: string): Promise<void> {
    const p = `/v1/twins/${encodeURIComponent(id)}/credentials/${encodeURIComponent(credId)}`;
    await this.request("DELETE", p, undefined, [200, 204, 404]);
  }

  /** The twin's current version. */
  async version(id: string): Promise<number> {
    const r = await this.request("GET", `/v1/twins/${encodeURIComponent(id)}`);
    return versionOf(r.body, id);
  }
}

function versionOf(body: unknown, id: string): number {
  // deno-lint-ignore no-explicit-any
  const v = (body as any)?.version;
  if (typeof v !== "number") throw new ApiError(`twin "${id}": no version in the answer`, 0);
  return v;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Run `fn` over `items` with at most `concurrency` at a time; rejects with the first error
 * (after the calls in progress settle).
 *
 * @example
 * ```ts
 * await pool(ids, 16, (id) => api.provision(id, {}));
 * ```
 */
export async function pool<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed: { err: unknown } | undefined;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i], i);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failed) throw failed.err;
  return out;
}
