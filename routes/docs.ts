/**
 * `GET /docs`: Swagger UI on the API's `/openapi.json`, served entirely by the node — no CDN,
 * so it works on an air-gapped plant network. Our own small page and start script, and Swagger
 * UI's files from the `swagger-ui-dist` npm package (found through its `absolute-path.js`, in
 * `node_modules/` or Deno's cache alike) under `/docs/assets/`, each read once when first asked
 * for and held in memory with its ETag and gzip copy (`static_assets.ts`). The page's Content
 * Security Policy lets it load and call nothing but this node; the online validator badge is
 * off.
 * @module
 */
import { Hono } from "hono";
import swaggerUiDir from "swagger-ui-dist/absolute-path.js";
import { TwinmillError } from "../src/errors.ts";
import { type Asset, assetResponse, makeAsset } from "./static_assets.ts";

/** Swagger UI's files served under `/docs/assets/` (source maps for the browser's tools). */
const DIST_FILES = new Set([
  "swagger-ui-bundle.js",
  "swagger-ui-bundle.js.map",
  "swagger-ui.css",
  "swagger-ui.css.map",
  "favicon-32x32.png",
  "LICENSE",
  "NOTICE",
]);

/** The page: Swagger UI's stylesheet and bundle, then our start script. */
const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>twinmill API</title>
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/start.js"></script>
</body>
</html>
`;

/** Starts Swagger UI on this node's document; `validatorUrl: null` keeps it off the internet. */
const START = `window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
});
`;

/** Nothing but this node; Swagger UI sets inline styles and has images as `data:` URLs. */
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " +
  "frame-ancestors 'none'";

/** `Cache-Control` of the page: always revalidated. */
const PAGE_CACHE = "no-cache";

/** `Cache-Control` of the assets (their names carry no version: revalidated after an hour). */
const ASSET_CACHE = "public, max-age=3600";

/** The routes `GET /docs` and `GET /docs/assets/*`, to mount at `/`. */
export function docsRoutes(): Hono {
  const dir: string = swaggerUiDir();
  const loaded = new Map<string, Promise<Asset>>();
  /** The file `name` (ours or Swagger UI's), prepared at its first request (again after a failure). */
  const asset = (name: string) => {
    let p = loaded.get(name);
    if (!p) {
      p = name === "docs.html"
        ? makeAsset(name, new TextEncoder().encode(PAGE))
        : name === "start.js"
        ? makeAsset(name, new TextEncoder().encode(START))
        : Deno.readFile(`${dir}/${name}`).then((bytes) => makeAsset(name, bytes));
      p.catch(() => loaded.delete(name));
      loaded.set(name, p);
    }
    return p;
  };

  const app = new Hono();
  app.get("/docs", async (c) =>
    assetResponse(c.req.raw, await asset("docs.html"), {
      "cache-control": PAGE_CACHE,
      "content-security-policy": CSP,
    }));
  app.get("/docs/assets/:name", async (c) => {
    const name = c.req.param("name");
    if (name !== "start.js" && !DIST_FILES.has(name)) {
      throw new TwinmillError("not_found", 404, `No docs file ${JSON.stringify(name)}`);
    }
    return assetResponse(c.req.raw, await asset(name), { "cache-control": ASSET_CACHE });
  });
  return app;
}
