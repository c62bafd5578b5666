/**
 * The operator console's static files: `GET /` is `console/index.html`, `GET /console/<path>`
 * any file under the repository's `console/` directory (plain ES modules, CSS, vendored
 * libraries; no build step). Not under `/v1`, so not authenticated: the console's own script
 * asks for credentials and calls the public API with them.
 *
 * The directory is read once, at the first request, into memory (`static_assets.ts`): a path
 * is served only if it names a file found then, so no request reaches the file system and no
 * `..` or %-encoded path can leave the directory. HTML is revalidated on every load
 * (`no-cache`, with its ETag); other files are kept 5 minutes: their names carry no content
 * hash, so a new version reaches open browsers after at most that.
 * @module
 */
import { Hono } from "hono";
import { fileURLToPath } from "node:url";
import { TwinmillError } from "../src/errors.ts";
import { type Asset, assetResponse, loadDir } from "./static_assets.ts";

/** The console's files in the repository, wherever the node is started from. */
export const CONSOLE_DIR: string = fileURLToPath(new URL("../console", import.meta.url));

/** `Cache-Control` of the HTML pages: always revalidated (cheap with the ETag). */
const HTML_CACHE = "no-cache";

/** `Cache-Control` of the other files. */
const ASSET_CACHE = "public, max-age=300";

/** Options of {@linkcode consoleRoutes}. */
export interface ConsoleOptions {
  /** Directory served (default {@linkcode CONSOLE_DIR}). */
  dir?: string;
}

/** A path segment that must never be looked up: empty, `.`, `..`, or holding `\` or NUL. */
const BAD_SEGMENT = /^\.{0,2}$|[\\\0]/;

/** The file name a request path under `/console/` asks for, or undefined when it is unsafe. */
function assetName(rawPath: string): string | undefined {
  let name: string;
  try {
    name = decodeURIComponent(rawPath.slice("/console/".length));
  } catch {
    return undefined; // a malformed %-escape names no file
  }
  return name.split("/").some((s) => BAD_SEGMENT.test(s)) ? undefined : name;
}

/** The routes `GET /` and `GET /console/*` (HEAD too), to mount at `/`. */
export function consoleRoutes(opts: ConsoleOptions = {}): Hono {
  const dir = opts.dir ?? CONSOLE_DIR;
  let files: Promise<Map<string, Asset>> | undefined;
  const load = () => {
    files ??= loadDir(dir).catch((e) => {
      files = undefined; // try again at the next request
      throw e;
    });
    return files;
  };
  const notFound = (what: string) =>
    new TwinmillError("not_found", 404, `No console file ${JSON.stringify(what)}`);
  const headers = (name: string) => ({
    "cache-control": name.endsWith(".html") ? HTML_CACHE : ASSET_CACHE,
    // the console acts with its user's credentials: no other site may frame it
    ...(name.endsWith(".html") ? { "content-security-policy": "frame-ancestors 'none'" } : {}),
  });

  const app = new Hono();
  app.get("/", async (c) => {
    const index = (await load()).get("index.html");
    if (!index) throw notFound("index.html");
    return assetResponse(c.req.raw, index, headers("index.html"));
  });
  app.get("/console/*", async (c) => {
    const raw = new URL(c.req.url).pathname;
    const name = assetName(raw);
    const asset = name === undefined ? undefined : (await load()).get(name);
    if (!asset) throw notFound(raw.slice("/console/".length));
    return assetResponse(c.req.raw, asset, headers(name!));
  });
  return app;
}
