/**
 * `GET /v1/connectors`: the device connectors this node runs (embedded MQTT broker, bridge from
 * the plant's broker, Sparkplug B host) and how many devices each has now. A connector may say
 * more about itself (`Connector.status`); secrets never appear here.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Connector } from "../src/ports/connector.ts";
import { json } from "./schemas.ts";

const ConnectorSchema = z.object({
  name: z.string().openapi({ example: "mqtt" }),
  devicesConnected: z.number().int().nonnegative(),
  status: z.record(z.string(), z.unknown()).optional().openapi({
    description: "Connector-specific state, e.g. the bridge's link to the plant's broker",
  }),
}).openapi("Connector");

const list = createRoute({
  method: "get",
  path: "/",
  tags: ["operations"],
  summary: "Device connectors of this node and their devices",
  responses: {
    200: json(z.object({ connectors: z.array(ConnectorSchema) }), "This node's connectors"),
  },
});

/** The connectors route; `connectors` is read on every request (they start after the app). */
export function connectorRoutes(
  connectors: () => readonly Connector[],
): OpenAPIHono {
  const app = new OpenAPIHono();
  app.openapi(list, (c) =>
    c.json({
      connectors: connectors().map((k) => {
        const status = k.status?.();
        return {
          name: k.name,
          devicesConnected: k.devicesConnected,
          ...(status ? { status } : {}),
        };
      }),
    }, 200));
  return app;
}
