/**
 * Firmware routes (`/v1/firmware`): upload an image as the raw request body (streamed, hashed,
 * optionally signed), list, read, delete, and download — by an app with its API key, or by a
 * device with HTTP Basic auth (username = twin id, password = its device token). Downloads
 * answer byte ranges (`Range: bytes=a-b`, `a-`, `-n`; `If-Range`), so a device resumes where a
 * broken download stopped, and name the image's SHA-256 and signature in headers.
 * @module
 */
import { createRoute, type Hook, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import client from "prom-client";
import { BadRequestError, UnauthorizedError, UnavailableError } from "../src/errors.ts";
import type { FirmwareImages } from "../src/mgmt/firmware.ts";
import {
  FIRMWARE_ID_RE,
  type FirmwareMeta,
  FirmwareNotFoundError,
} from "../src/mgmt/firmware_types.ts";
import type { DeviceAuth } from "../src/security/device_auth.ts";
import { errors, ErrorSchema, iso, json, notFound } from "./schemas.ts";
import { validationHook } from "./validation.ts";
import {
  contentTypeOf,
  parseBasic,
  parseRange,
  RangeNotSatisfiableError,
  tracked,
} from "./firmware_http.ts";

const TWIN_ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

const FirmwareSchema = z.object({
  id: z.string().openapi({ example: "press-ctrl-1.4.2" }),
  name: z.string().openapi({ example: "press-ctrl" }),
  version: z.string().openapi({ example: "1.4.2" }),
  size: z.number().int().openapi({ description: "Bytes" }),
  sha256: z.string().openapi({ description: "SHA-256 of the image, hex" }),
  signature: z.string().optional().openapi({
    description: "Ed25519 signature over the 32-byte SHA-256 digest, base64",
  }),
  signedBy: z.string().optional().openapi({ description: "Name of the key that verified it" }),
  contentType: z.string().optional(),
  createdAt: z.string(),
}).openapi("Firmware");

const FirmwareList = z.object({ items: z.array(FirmwareSchema) }).openapi("FirmwareList");

const IdParam = z.object({
  id: z.string().regex(FIRMWARE_ID_RE, "firmware id must be 3-128 of A-Z a-z 0-9 _ - .")
    .openapi({ param: { name: "id", in: "path" }, example: "press-ctrl-1.4.2" }),
});

const UploadQuery = z.object({
  name: z.string().openapi({ example: "press-ctrl", description: "1-63 of A-Z a-z 0-9 _ - ." }),
  version: z.string().openapi({ example: "1.4.2", description: "1-63 of A-Z a-z 0-9 _ - ." }),
});

const UploadHeaders = z.object({
  "x-firmware-signature": z.string().optional().openapi({
    description: "Ed25519 signature over the image's SHA-256 digest (32 bytes), base64",
  }),
});

/** A bad id is `bad_firmware_id`; a missing name or version names the field. */
// deno-lint-ignore no-explicit-any
const hook: Hook<any, any, any, any> = (result, c) => {
  if (!result.success && result.target === "param") {
    const issue = result.error.issues[0];
    throw new BadRequestError(`${issue.path.join(".")}: ${issue.message}`, "bad_firmware_id");
  }
  return validationHook(result, c);
};

const view = (m: FirmwareMeta) => ({ ...m, createdAt: iso(m.createdAt) });

const binary = (description: string) => ({
  description,
  content: {
    "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) },
  },
});

const upload = createRoute({
  method: "post",
  path: "/",
  tags: ["firmware"],
  summary: "Upload a firmware image (the raw body); optionally signed with Ed25519",
  description: "The body is the image itself. `X-Firmware-Signature` is the base64 Ed25519 " +
    "signature over its SHA-256 digest, checked against TWINMILL_FIRMWARE_KEYS. Errors: 400 " +
    "`firmware_empty`, `firmware_signature_invalid`, `firmware_signature_required`, " +
    "`firmware_signing_not_configured`, `bad_firmware_name`, `bad_firmware_version`; 409 " +
    "`firmware_exists`; 413 `firmware_too_large`; 503 `firmware_upload_busy`; 507 " +
    "`firmware_store_full`.",
  request: {
    query: UploadQuery,
    headers: UploadHeaders,
    body: binary("The image, as it is (`curl --data-binary @fw.bin`)"),
  },
  responses: {
    201: json(FirmwareSchema, "Stored"),
    ...errors(400, 413, 503),
    409: json(ErrorSchema, "An image with this name and version exists"),
    507: json(ErrorSchema, "The firmware store is full"),
  },
});

const list = createRoute({
  method: "get",
  path: "/",
  tags: ["firmware"],
  summary: "List firmware images, in id order",
  responses: { 200: json(FirmwareList, "Every image") },
});

const get = createRoute({
  method: "get",
  path: "/{id}",
  tags: ["firmware"],
  summary: "Read a firmware image's metadata",
  request: { params: IdParam },
  responses: { 200: json(FirmwareSchema, "The image"), ...errors(400), ...notFound("Firmware") },
});

const del = createRoute({
  method: "delete",
  path: "/{id}",
  tags: ["firmware"],
  summary: "Delete a firmware image",
  request: { params: IdParam },
  responses: { 204: { description: "Deleted" }, ...errors(400), ...notFound("Firmware") },
});

const download = createRoute({
  method: "get",
  path: "/{id}/download",
  tags: ["firmware"],
  summary: "Download a firmware image (whole, or a byte range to resume)",
  description: "Devices authenticate with HTTP Basic (username = twin id, password = device " +
    "token); apps with their API key or JWT. `Range: bytes=a-b`, `bytes=a-` or `bytes=-n` → 206 " +
    "with `Content-Range`; a range past the end → 416 with `Content-Range: bytes */size`. " +
    "`If-Range: <ETag>` sends the whole image when it changed. The ETag is the SHA-256.",
  request: {
    params: IdParam,
    headers: z.object({
      range: z.string().optional().openapi({ example: "bytes=1048576-" }),
      "if-range": z.string().optional(),
    }),
  },
  responses: {
    200: binary("The whole image; headers ETag, X-Firmware-Sha256, X-Firmware-Signature"),
    206: binary("The requested range"),
    304: { description: "Not modified (If-None-Match)" },
    ...errors(400),
    401: json(ErrorSchema, "Wrong device id or token"),
    ...notFound("Firmware"),
    416: json(ErrorSchema, "The range starts past the end"),
    503: json(ErrorSchema, "Too many downloads at once; retry later"),
  },
});

/** What the firmware routes need. */
export interface FirmwareRouteDeps {
  firmware: FirmwareImages;
  deviceAuth: Pick<DeviceAuth, "verify">;
  /** Registry the download metrics go to (the node's). */
  registry: client.Registry;
  /** A refused device login (audit, metrics, log), as for refused API calls. */
  denied?(c: Context, who: string, reason: string): void;
  /** Downloads streaming at once on this node; more get 503. Default 256. */
  maxDownloads?: number;
}

/** Firmware routes, mounted at `/v1/firmware`. */
export function firmwareRoutes(d: FirmwareRouteDeps): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: hook });
  const registers = [d.registry];
  const downloads = new client.Counter({
    name: "twinmill_firmware_downloads_total",
    help: "Firmware downloads started, by who asked (device: Basic auth; api) and whether ranged",
    labelNames: ["by", "range"] as const,
    registers,
  });
  const bytesSent = new client.Counter({
    name: "twinmill_firmware_download_bytes_total",
    help: "Firmware image bytes sent",
    registers,
  });
  const active = new client.Gauge({
    name: "twinmill_firmware_downloads_active",
    help: "Firmware downloads streaming on this node",
    registers,
  });
  const maxDownloads = d.maxDownloads ?? 256;
  let streaming = 0;

  app.openapi(upload, async (c) => {
    const { name, version } = c.req.valid("query");
    const len = c.req.header("content-length");
    const meta = await d.firmware.upload({
      name,
      version,
      body: c.req.raw.body ?? new ReadableStream({ start: (ctl) => ctl.close() }),
      signature: c.req.header("x-firmware-signature"),
      contentType: contentTypeOf(c.req.header("content-type")),
      contentLength: len && /^\d{1,16}$/.test(len) ? Number(len) : undefined,
    });
    return c.json(view(meta), 201);
  });

  app.openapi(list, async (c) => {
    return c.json({ items: (await d.firmware.list()).map(view) }, 200);
  });

  app.openapi(get, async (c) => {
    const { id } = c.req.valid("param");
    const m = await d.firmware.get(id);
    if (!m) throw new FirmwareNotFoundError(id);
    return c.json(view(m), 200);
  });

  app.openapi(del, async (c) => {
    const { id } = c.req.valid("param");
    if (!(await d.firmware.delete(id))) throw new FirmwareNotFoundError(id);
    return c.body(null, 204);
  });

  app.openapi(
    download,
    async (c) => {
      const { id } = c.req.valid("param");
      const by = await authenticateDevice(c, d) ? "device" : "api";
      const s = await d.firmware.stored(id);
      if (!s) throw new FirmwareNotFoundError(id);
      const etag = `"${s.sha256}"`;
      const headers: Record<string, string> = {
        "accept-ranges": "bytes",
        "etag": etag,
        "x-firmware-sha256": s.sha256,
        "content-type": s.contentType ?? "application/octet-stream",
        "content-disposition": `attachment; filename="${s.id}.bin"`,
      };
      if (s.signature) headers["x-firmware-signature"] = s.signature;
      if (s.signedBy) headers["x-firmware-signed-by"] = s.signedBy;
      const inm = c.req.header("if-none-match");
      if (inm && (inm.trim() === "*" || inm.split(",").some((t) => t.trim() === etag))) {
        return c.body(null, 304, headers);
      }
      const ifRange = c.req.header("if-range");
      let range = parseRange(c.req.header("range"), s.size);
      if (ifRange !== undefined && ifRange.trim() !== etag) range = null; // changed: send it all
      if (range === "unsatisfiable") {
        c.header("content-range", `bytes */${s.size}`);
        throw new RangeNotSatisfiableError(s.size);
      }
      const { start, end } = range ?? { start: 0, end: s.size - 1 };
      headers["content-length"] = String(end - start + 1);
      if (range) headers["content-range"] = `bytes ${start}-${end}/${s.size}`;
      const status = range ? 206 : 200;
      if (c.req.method === "HEAD") return c.body(null, status, headers);
      if (streaming >= maxDownloads) {
        c.header("retry-after", "5");
        throw new UnavailableError(
          "firmware_download_busy",
          `${streaming} firmware downloads are in progress on this node; retry later`,
        );
      }
      const src = await d.firmware.read(s, start, end);
      if (!src) throw new FirmwareNotFoundError(id);
      downloads.inc({ by, range: range ? "partial" : "full" });
      streaming++;
      active.set(streaming);
      const body = tracked(src, (n) => bytesSent.inc(n), () => active.set(--streaming));
      return c.body(body, status, headers);
    },
  );

  return app;
}

/**
 * With `Authorization: Basic`, check the device's token (the API-key middleware let the
 * request through); true for a device. Without it, the middleware authenticated the caller.
 */
async function authenticateDevice(c: Context, d: FirmwareRouteDeps): Promise<boolean> {
  const basic = parseBasic(c.req.header("authorization"));
  if (basic === undefined) return false;
  const ok = basic !== null && TWIN_ID_RE.test(basic.user) && basic.pass.length > 0 &&
    basic.pass.length <= 256 && (await d.deviceAuth.verify(basic.user, basic.pass)) !== null;
  if (!ok) {
    const who = basic && TWIN_ID_RE.test(basic.user) ? `device:${basic.user}` : "unknown";
    d.denied?.(c, who, "firmware download: wrong device id or token");
    c.header("www-authenticate", 'Basic realm="twinmill firmware"');
    throw new UnauthorizedError("Wrong device id or token (HTTP Basic: twin id, device token)");
  }
  return true;
}
