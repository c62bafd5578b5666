/**
 * `GET /v1/whoami`: who the caller is (id fingerprint, role, sites), for clients such as the
 * console that offer only what the caller may do. Moved out of routes/auth.ts, unchanged.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { json } from "./schemas.ts";
import { principalOf } from "./auth.ts";

const whoami = createRoute({
  method: "get",
  path: "/",
  tags: ["auth"],
  summary: "The caller: its id, role and sites (what a client such as the console may offer)",
  description: "Never a secret: an API key is named by its fingerprint. Without authentication " +
    "configured (loopback only), every caller is the anonymous admin.",
  responses: {
    200: json(
      z.object({
        id: z.string().openapi({ example: "key:3f2a9c1b7d4e" }),
        role: z.enum(["viewer", "operator", "admin"]),
        sites: z.array(z.string()).optional().openapi({
          description: "The sites the caller may see; absent = every site",
        }),
        via: z.enum(["api_key", "jwt", "ticket", "anonymous"]),
      }).openapi("Caller"),
      "The caller",
    ),
  },
});

/** `GET /v1/whoami`: the caller's id, role and sites (read-only, any role). */
export function whoamiRoutes(): OpenAPIHono {
  const app = new OpenAPIHono();
  app.openapi(whoami, (c) => {
    const p = principalOf(c) ?? { id: "anonymous", role: "admin", via: "anonymous" };
    return c.json({ id: p.id, role: p.role, ...(p.sites ? { sites: p.sites } : {}), via: p.via });
  });
  return app;
}
