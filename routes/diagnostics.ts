/**
 * `GET /v1/twins/{id}/diagnostics`: why is this device quiet? See `src/mgmt/diagnostics.ts`.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Diagnostics } from "../src/mgmt/diagnostics.ts";
import { errors, IdParam, json } from "./schemas.ts";
import { validationHook } from "./validation.ts";

const Time = z.string().nullable();
const DiagnosticsSchema = z.object({
  twin: z.string(),
  exists: z.boolean().openapi({
    description: "False for a twin that does not exist yet but whose device a node knows " +
      "(its messages were rejected, or it has an MQTT session): `actor` and `snapshot` are null",
  }),
  summary: z.string().openapi({
    example: "quiet: last message 12 min ago; no MQTT session on any node",
  }),
  connectivity: z.object({
    online: z.boolean().openapi({
      description: "An MQTT session of the device is open now (or the bridge it is reached " +
        "through is connected)",
    }),
    reported: z.object({ status: z.enum(["online", "offline", "unknown"]), since: Time })
      .openapi({ description: "What the device said on `twins/{id}/status` (or its will)" }),
    session: z.object({
      node: z.string().nullable(),
      clientId: z.string(),
      protocol: z.string(),
      connectedAt: Time,
      listensForCommands: z.boolean(),
      bridge: z.object({
        url: z.string().openapi({ description: "The plant's broker (no credentials)" }),
        connected: z.boolean(),
        lastMessageAt: Time.openapi({ description: "The device's last message through it" }),
      }).optional().openapi({
        description: "The device is on the plant's broker, reached through the bridge " +
          "(`TWINMILL_MQTT_URL`): `clientId`, `protocol` and `connectedAt` are the bridge's",
      }),
    }).nullable(),
    lastSeen: Time,
    silentForSeconds: z.number().nullable(),
  }),
  messages: z.object({
    total: z.number(),
    lastMinute: z.number().openapi({ description: "Messages applied in the current minute" }),
    previousMinute: z.number(),
  }),
  rejected: z.array(z.object({
    at: Time,
    reason: z.string().openapi({ example: "bad_field" }),
    explanation: z.string().openapi({ description: "What the reason means" }),
    topic: z.string(),
    node: z.string(),
  })).openapi({
    description: "Recently rejected messages, by the broker (invalid) or by the twin " +
      "(`twin_too_large`, `twin_quarantined`); newest last",
  }),
  actor: z.object({
    node: z.string(),
    version: z.number(),
    resident: z.boolean(),
    mailboxDepth: z.number(),
    lastActive: Time,
    timerAt: Time,
  }).nullable(),
  snapshot: z.object({
    persistedVersion: z.number().nullable(),
    unpersistedChanges: z.number(),
    savedAt: Time,
  }).nullable(),
  influx: z.object({
    configured: z.boolean(),
    bufferedPoints: z.number(),
    writeLagMs: z.number(),
  }),
  commands: z.array(z.record(z.string(), z.unknown())),
  alarms: z.array(z.record(z.string(), z.unknown())),
  ruleFaults: z.array(z.record(z.string(), z.unknown())),
  quarantine: z.object({
    active: z.boolean().openapi({ description: "True while the twin takes no changes" }),
    since: Time,
    until: Time,
    reason: z.string().openapi({ description: "Why its snapshot could not be stored" }),
    droppedVersion: z.number().openapi({ description: "The version that was not stored" }),
    droppedMessages: z.number().openapi({
      description: "Device messages dropped with it (applied since the last stored snapshot)",
    }),
  }).nullable().openapi({
    description: "The twin's last quarantine on its node, or null: a twin whose snapshot " +
      "cannot be stored drops its unsaved changes and takes none for a while; the rest of " +
      "the node goes on",
  }),
}).openapi("Diagnostics");

const diagnose = createRoute({
  method: "get",
  path: "/{id}/diagnostics",
  tags: ["twins"],
  summary: "Why is this device quiet? Connectivity, traffic, rejects, actor, commands, alarms",
  description: "Also answers for a twin that does not exist yet when a node rejected its " +
    "messages or holds its MQTT session (`exists: false`); 404 only when no node knows the id.",
  request: { params: IdParam },
  responses: { 200: json(DiagnosticsSchema, "Diagnostics"), ...errors(400, 404) },
});

/** Diagnostics route, mounted at `/v1/twins`. */
export function diagnosticsRoutes(d: Diagnostics): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.openapi(diagnose, async (c) => {
    const { id } = c.req.valid("param");
    return c.json(await d.of(id), 200);
  });
  return app;
}
