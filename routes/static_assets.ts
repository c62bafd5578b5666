/**
 * Static files held in memory and served with validators: each file read once, its strong ETag
 * (a SHA-256 of the bytes), its content type, and a gzip copy compressed once when that saves
 * bytes. {@linkcode assetResponse} answers `If-None-Match` with 304 and picks the gzip copy for
 * clients that accept it. The console (`routes/console.ts`) and the offline API docs
 * (`routes/docs.ts`) are served this way.
 * @module
 */

/** One file ready to serve. */
export interface Asset {
  /** The file's bytes. */
  body: Uint8Array<ArrayBuffer>;
  /** The same, gzip-compressed; absent when compression saves too little (images, fonts). */
  gzip?: Uint8Array<ArrayBuffer>;
  /** `Content-Type` header. */
  type: string;
  /** Strong ETag of `body`, quoted; the gzip copy's is the same with `-gz` inside the quotes. */
  etag: string;
}

/** Content types by file extension; other files are `application/octet-stream`. */
const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  json: "application/json",
  map: "application/json",
  woff2: "font/woff2",
  txt: "text/plain; charset=utf-8",
  md: "text/plain; charset=utf-8",
};

/** Types worth compressing (the others are compressed already). */
const COMPRESSIBLE = /^(text\/|image\/svg|application\/json)/;

/** The content type of a file name (`LICENSE` and other names without extension: plain text). */
export function contentType(name: string): string {
  const base = name.slice(name.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  if (dot < 0) return "text/plain; charset=utf-8";
  return TYPES[base.slice(dot + 1).toLowerCase()] ?? "application/octet-stream";
}

/** Gzip `bytes` with the platform's `CompressionStream`. */
async function gzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return await new Response(stream).bytes();
}

/** Prepare the bytes of the file `name` for serving: type, ETag, gzip copy. */
export async function makeAsset(name: string, body: Uint8Array<ArrayBuffer>): Promise<Asset> {
  const type = contentType(name);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  const etag = `"${digest.subarray(0, 18).toBase64({ alphabet: "base64url" })}"`;
  let packed: Uint8Array<ArrayBuffer> | undefined;
  if (COMPRESSIBLE.test(type) && body.length > 256) {
    packed = await gzip(body);
    // not worth a second representation when it saves less than a tenth
    if (packed.length > body.length * 0.9) packed = undefined;
  }
  return { body, gzip: packed, type, etag };
}

/**
 * Every regular file under `dir` (recursively), keyed by its path relative to `dir` with `/`
 * separators. Dot files, dot directories and symbolic links are left out. A missing `dir` is
 * an empty map.
 */
export async function loadDir(dir: string): Promise<Map<string, Asset>> {
  const out = new Map<string, Asset>();
  const walk = async (rel: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(`${dir}/${rel}`));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound && rel === "") return;
      throw e;
    }
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(path);
      else if (e.isFile) {
        out.set(path, await makeAsset(path, await Deno.readFile(`${dir}/${path}`)));
      }
    }
  };
  await walk("");
  return out;
}

/** True if `accept` (an `Accept-Encoding` header) accepts gzip. */
export function acceptsGzip(accept: string | undefined | null): boolean {
  if (!accept) return false;
  for (const part of accept.split(",")) {
    const [coding, ...params] = part.trim().toLowerCase().split(";");
    if (coding.trim() !== "gzip" && coding.trim() !== "*") continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    return !q || Number(q.slice(2)) > 0;
  }
  return false;
}

/** True if `header` (an `If-None-Match` header) names `etag` (weak comparison) or is `*`. */
function noneMatchHits(header: string, etag: string): boolean {
  if (header.trim() === "*") return true;
  return header.split(",").some((t) => t.trim().replace(/^W\//, "") === etag);
}

/**
 * The response of a GET or HEAD of `asset`: 304 when `If-None-Match` names its ETag, else 200
 * with the body (gzip when accepted and worth it). `Vary: Accept-Encoding` whenever the asset
 * has a gzip copy.
 */
export function assetResponse(
  req: Request,
  asset: Asset,
  headers: Record<string, string>,
): Response {
  const zipped = asset.gzip !== undefined && acceptsGzip(req.headers.get("accept-encoding"));
  const etag = zipped ? `${asset.etag.slice(0, -1)}-gz"` : asset.etag;
  const h = new Headers(headers);
  h.set("etag", etag);
  h.set("x-content-type-options", "nosniff");
  if (asset.gzip) h.set("vary", "Accept-Encoding");
  const inm = req.headers.get("if-none-match");
  if (inm !== null && noneMatchHits(inm, etag)) {
    return new Response(null, { status: 304, headers: h });
  }
  h.set("content-type", asset.type);
  if (zipped) h.set("content-encoding", "gzip");
  const body = zipped ? asset.gzip! : asset.body;
  h.set("content-length", String(body.length));
  return new Response(req.method === "HEAD" ? null : body, { status: 200, headers: h });
}
