/**
 * Device credential routes (`/v1/twins/{id}/credentials`): issue a token (shown once), list
 * credential ids and times, revoke one (devices connected with it are disconnected at once).
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { DeviceAuth } from "../src/security/device_auth.ts";
import type { TwinService } from "../src/runtime/twin_service.ts";
import { BadRequestError, TwinNotFoundError } from "../src/errors.ts";
import { errors, IdParam, iso, json, notFound } from "./schemas.ts";
import { validationHook } from "./validation.ts";

const Issued = z.object({
  id: z.string(),
  credentials: z.object({
    type: z.literal("token"),
    username: z.string(),
    token: z.string().openapi({ description: "Shown only in this answer; store it on the device" }),
  }),
  createdAt: z.string(),
}).openapi("IssuedCredential");

const Info = z.object({
  id: z.string(),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable().openapi({
    description: "Last MQTT connect with it on the node that answers, since it started",
  }),
}).openapi("Credential");

const CredParams = IdParam.extend({
  credId: z.string().regex(/^cred_[0-9a-f]{12}$/, "credential id looks like cred_0123456789ab")
    .openapi({ param: { name: "credId", in: "path" } }),
});

const create = createRoute({
  method: "post",
  path: "/{id}/credentials",
  tags: ["security"],
  summary: "Issue a device token (username = twin id); the token is shown once",
  request: { params: IdParam },
  responses: { 201: json(Issued, "The credential, with its token"), ...errors(400, 404) },
});

const list = createRoute({
  method: "get",
  path: "/{id}/credentials",
  tags: ["security"],
  summary: "List a twin's credentials (never the tokens)",
  request: { params: IdParam },
  responses: { 200: json(z.object({ items: z.array(Info) }), "Credentials"), ...errors(400) },
});

const revoke = createRoute({
  method: "delete",
  path: "/{id}/credentials/{credId}",
  tags: ["security"],
  summary: "Revoke a credential; devices connected with it are disconnected at once",
  request: { params: CredParams },
  responses: {
    204: { description: "Revoked" },
    ...errors(400),
    ...notFound("Credential"),
  },
});

/** Credential routes, mounted at `/v1/twins`. */
export function credentialRoutes(auth: DeviceAuth, twins: TwinService): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.openapi(create, async (c) => {
    const { id } = c.req.valid("param");
    if (!(await twins.get(id))) throw new TwinNotFoundError(id);
    const issued = await auth.create(id);
    return c.json({ ...issued, createdAt: iso(issued.createdAt) }, 201);
  });
  app.openapi(list, async (c) => {
    const { id } = c.req.valid("param");
    const items = (await auth.list(id)).map((x) => ({
      id: x.id,
      createdAt: iso(x.createdAt),
      lastUsedAt: x.lastUsedAt === null ? null : iso(x.lastUsedAt),
    }));
    return c.json({ items }, 200);
  });
  app.openapi(revoke, async (c) => {
    const { id, credId } = c.req.valid("param");
    await auth.revoke(id, credId);
    return c.body(null, 204);
  });
  return app;
}

const Serials = z.object({
  serials: z.array(z.string()).openapi({
    description: "Revoked serials, upper-case hex without separators, sorted",
    example: ["1A2B3C4D"],
  }),
}).openapi("RevokedCertificates");

const Serial = z.object({
  serial: z.string().openapi({
    description: "The certificate's serial number in hex (colons and case are ignored)",
    example: "1A:2B:3C:4D",
  }),
});

const listRevoked = createRoute({
  method: "get",
  path: "/",
  tags: ["security"],
  summary: "Revoked device certificates (mTLS): their serial numbers",
  responses: { 200: json(Serials, "Revoked serials") },
});

const revokeCert = createRoute({
  method: "post",
  path: "/",
  tags: ["security"],
  summary: "Revoke a device certificate by serial; its connections are closed at once",
  request: { body: { content: { "application/json": { schema: Serial } }, required: true } },
  responses: {
    201: json(Serial, "Revoked now (the serial as stored)"),
    200: json(Serial, "Already revoked"),
    ...errors(400),
  },
});

/** `POST /v1/revocations {"serial"}` and `GET /v1/revocations`: revoked client certificates. */
export function revocationRoutes(auth: DeviceAuth): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.openapi(listRevoked, (c) => c.json({ serials: auth.revokedSerials }, 200));
  app.openapi(revokeCert, async (c) => {
    const body = await c.req.json().catch(() => null) as { serial?: unknown } | null;
    if (!body || typeof body.serial !== "string") {
      throw new BadRequestError('Body must be {"serial": "<certificate serial in hex>"}');
    }
    const r = await auth.revokeCertificate(body.serial);
    return r.created ? c.json({ serial: r.serial }, 201) : c.json({ serial: r.serial }, 200);
  });
  return app;
}
