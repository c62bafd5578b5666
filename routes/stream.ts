/**
 * `GET /v1/stream?twins=a,b&types=telemetry,state`: a WebSocket of twin events, one JSON
 * object per message `{type, twin, version, ts, data}`, plus `properties` when the device
 * message that made it had MQTT 5 user properties.
 *
 * Each client's send buffer is bounded: a client that falls more than `maxBufferedBytes`
 * behind is closed with code 1013 ("try again later") and counted; ingest never waits for it.
 * Clients share one transport subscription per subject and each event's JSON
 * (`stream_hub.ts`).
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Transport } from "../src/transport/port.ts";
import { type EventType, subjects } from "../src/transport/subjects.ts";
import type { Metrics } from "../src/obs/metrics.ts";
import type { Logger } from "../src/obs/log.ts";
import { BadRequestError } from "../src/errors.ts";
import { isValidTwinId } from "../actors/validate.ts";
import { siteScope, spendTicket } from "./auth.ts";
import { errors } from "./schemas.ts";
import { type StreamClient, StreamHub } from "./stream_hub.ts";

const TYPES: EventType[] = ["telemetry", "state", "alarm", "command", "campaign"];

/** Options of the stream route. */
export interface StreamOptions {
  transport: Transport;
  metrics: Metrics;
  logger: Logger;
  /** Bytes a client may lag behind before it is dropped. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** Most twins one stream may name. Default 1000. */
  maxTwins?: number;
}

const stream = createRoute({
  method: "get",
  path: "/",
  tags: ["stream"],
  summary: "WebSocket of twin events, one JSON object per message: {type, twin, version, ts, data}",
  description: "Needs a WebSocket upgrade. Authenticate with `Authorization: Bearer` or, from a " +
    "browser, `?ticket=` (POST /v1/stream/tickets). A client more than 1 MiB behind is closed " +
    "with code 1013. Campaign events are not filtered by `twins`. An event made by a device " +
    'message with MQTT 5 user properties also has `properties` (`{"line": "L3"}`; a ' +
    "repeated name: an array of its values).",
  request: {
    // checked by the handler (bad ids are 400 bad_twin_id), described here
    query: z.object({
      twins: z.string().optional().openapi({
        description: "Comma-separated twin ids (at most 1000); none = every twin",
        example: "press-7,press-8",
      }),
      types: z.string().optional().openapi({
        description: `Comma-separated event types of ${TYPES.join(", ")}; default telemetry,state`,
        example: "telemetry,state,alarm",
      }),
      ticket: z.string().optional().openapi({
        description: "A single-use ticket instead of the Authorization header",
      }),
    }),
  },
  responses: {
    101: { description: "Switching Protocols: the WebSocket of events" },
    ...errors(400),
  },
});

/** The WebSocket stream route. */
export function streamRoutes(o: StreamOptions): OpenAPIHono {
  const app = new OpenAPIHono();
  const hub = new StreamHub({
    transport: o.transport,
    metrics: o.metrics,
    logger: o.logger,
    maxBufferedBytes: o.maxBufferedBytes ?? 1024 * 1024,
  });
  app.openapi(stream, (c) => {
    const twinsParam = c.req.query("twins");
    const typesParam = c.req.query("types");
    const twins = twinsParam ? twinsParam.split(",").filter(Boolean) : [];
    const types = typesParam ? typesParam.split(",").filter(Boolean) : ["telemetry", "state"];
    for (const t of twins) {
      if (!isValidTwinId(t)) {
        throw new BadRequestError(
          `twins: "${t.slice(0, 130)}" is not a valid twin id`,
          "bad_twin_id",
        );
      }
    }
    if (twins.length > (o.maxTwins ?? 1000)) {
      throw new BadRequestError(`twins: at most ${o.maxTwins ?? 1000} per stream`);
    }
    for (const t of types) {
      if (!TYPES.includes(t as EventType)) {
        throw new BadRequestError(`types: "${t}" is not one of ${TYPES.join(", ")}`);
      }
    }
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new BadRequestError("this route needs a WebSocket upgrade", "websocket_required");
    }
    // A site-scoped caller named its twins (checked in scope by the auth layer): campaign
    // events about other devices are not for it.
    const scoped = siteScope(c) !== undefined;
    const named = new Set(twins);
    spendTicket(c); // accepted: now the ticket is used
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw);
    const subs: Disposable[] = [];
    let counted = false;
    const cleanup = () => {
      for (const s of subs.splice(0)) s[Symbol.dispose]();
    };
    const client: StreamClient = {
      open: false,
      socket,
      visible: scoped
        ? (data: unknown) => {
          const e = data as { type?: string; data?: { event?: string; device?: string } };
          return e.type !== "campaign" || e.data?.event !== "device" ||
            named.has(e.data.device ?? "");
        }
        : undefined,
      buffered: 0,
      release: cleanup,
    };
    socket.onopen = () => {
      client.open = true;
      counted = true;
      o.metrics.wsClients.inc();
      for (const type of types as EventType[]) {
        // campaign events are not about one twin: `twins=` does not filter them
        if (twins.length === 0 || type === "campaign") {
          subs.push(hub.subscribe(subjects.eventsOf(type, "*"), client));
        }
        for (const id of twins) subs.push(hub.subscribe(subjects.event(type, id), client));
      }
    };
    socket.onclose = () => {
      cleanup();
      client.open = false;
      if (counted) o.metrics.wsClients.dec();
      counted = false;
    };
    socket.onerror = () => {};
    socket.onmessage = () => {}; // clients only listen
    return response;
  });
  return app;
}
