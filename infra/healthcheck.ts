/**
 * Container health probe (the image has no curl): `GET /healthz` on this node's own HTTP port.
 * Exits 0 when the node answers 200 within 3 s, 1 otherwise, with one line on stderr saying why.
 * It reads only the contract's variables: `TWINMILL_HTTP_PORT` (default 8080),
 * `TWINMILL_HTTP_HOST` (a wildcard or loopback bind is probed on 127.0.0.1) and
 * `TWINMILL_TLS_CERT` (set = the node serves HTTPS).
 *
 * @example
 * ```sh
 * deno run --allow-net --allow-env infra/healthcheck.ts && echo healthy
 * ```
 * @module
 */

/** The URL of the node's `/healthz`, from the node's own environment. */
export function healthUrl(env: Record<string, string | undefined>): string {
  const port = env.TWINMILL_HTTP_PORT || "8080";
  const bind = env.TWINMILL_HTTP_HOST || "127.0.0.1";
  const wildcard = bind === "0.0.0.0" || bind === "::" || bind === "[::]";
  const loopback = bind === "localhost" || bind === "::1" || bind.startsWith("127.");
  let host = wildcard || loopback ? "127.0.0.1" : bind;
  if (host.includes(":") && !host.startsWith("[")) host = `[${host}]`;
  const scheme = env.TWINMILL_TLS_CERT ? "https" : "http";
  return `${scheme}://${host}:${port}/healthz`;
}

if (import.meta.main) {
  const url = healthUrl(Deno.env.toObject());
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    if (res.status !== 200) {
      console.error(`healthcheck: ${url} answered ${res.status}`);
      Deno.exit(1);
    }
  } catch (err) {
    console.error(`healthcheck: ${url}: ${err instanceof Error ? err.message : err}`);
    Deno.exit(1);
  }
}
