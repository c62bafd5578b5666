/**
 * Twins and devices meet on the transport, in both modes alike: a twin's desired state and
 * commands are published on its subjects (`tm.down.{id}`, `tm.cmd.{id}`), and every node
 * serves them to the connectors (device protocols) its devices use; session questions
 * (diagnostics) are gathered from every node the same way. On a single node the in-process
 * transport hands the payload over by reference: a direct call behind the seam.
 * @module
 */
import type { JsonObject } from "../../actors/json.ts";
import type { Command } from "../../actors/commands.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import type { Connector } from "../ports/connector.ts";
import type { SessionReport } from "../mgmt/diagnostics.ts";
import type { Subscription, Transport } from "../transport/port.ts";
import { subjects } from "../transport/subjects.ts";

/** How long commands wait for a node whose device listens (ms); none: they stay queued. */
const COMMANDS_WAIT_MS = 1_000;
/** How long a session question waits for the other nodes (ms). */
const SESSIONS_WAIT_MS = 300;

/** A downlink on the transport. */
interface Downlink {
  id: string;
  desired: JsonObject;
}

/** Commands on the transport; `from`: the asking node (older nodes send none). */
interface Commands {
  twin: string;
  commands: Command[];
  from?: string;
}

/**
 * The twin host's way to its devices: downlink and commands over the transport. `nodeId`
 * names this node in command requests: it always answers its own (a single node does not
 * wait), the others only when they handed commands over.
 */
export function hostLinks(transport: Transport, nodeId: string): {
  downlink(id: string, desired: JsonObject): void;
  commands: { deliver(twin: string, commands: Command[]): Promise<string[]> };
} {
  return {
    downlink: (id, desired) =>
      transport.publish(subjects.downlink(id), { id, desired } satisfies Downlink),
    commands: {
      // the node whose connector has the device listening answers with the ids handed over
      async deliver(twin, commands) {
        const replies = await transport.gather(
          subjects.commands(twin),
          { twin, commands, from: nodeId } satisfies Commands,
          {
            maxWaitMs: COMMANDS_WAIT_MS,
            until: (r) => (r as { ids: string[] }).ids.length > 0,
          },
        ) as { ids: string[] }[];
        return replies.flatMap((r) => r.ids);
      },
    },
  };
}

/** Options of {@linkcode serveConnectors}. */
export interface ServeConnectorsOptions {
  transport: Transport;
  nodeId: string;
  /** This node's running connectors (the list may grow as they start). */
  connectors: readonly Connector[];
  logger: Logger;
  metrics: Metrics;
}

/**
 * Serve the twins' downlink, commands and session questions to this node's connectors.
 * Disposing stops it.
 */
export function serveConnectors(o: ServeConnectorsOptions): Disposable {
  const { transport, connectors, logger: log } = o;
  const subs: Subscription[] = [
    transport.subscribe(subjects.downlinkAll, (m) => {
      const d = m.data as Downlink;
      for (const c of connectors) {
        // contained: a downlink that fails (or cannot be serialized) is logged, never an
        // unhandled rejection that ends the process
        c.publishDesired(d.id, d.desired).catch((err) => {
          o.metrics.effectFailures.inc({ type: "desired" });
          log.error("cannot publish desired state to device", { device: d.id, err });
        });
      }
    }),
    transport.subscribe(subjects.commandsAll, (m) => {
      const d = m.data as Commands;
      // an empty answer only to this node's own request: a node of an earlier version takes
      // the first answer it gets as the only one
      const mine = d.from === o.nodeId;
      Promise.all(connectors.map((c) => c.deliverCommands(d.twin, d.commands))).then(
        (ids) => (mine || ids.some((i) => i.length > 0)) && m.respond({ ids: ids.flat() }),
        (err) => {
          log.warn("cannot deliver commands", { twin: d.twin, err });
          if (mine) m.respond({ ids: [] });
        },
      );
    }),
    // the asking node always gets this node's report; the others only when it has something
    transport.subscribe(subjects.diagnostics("*"), (m) => {
      const q = m.data as { twin: string; from: string };
      const r = sessionHere(o.nodeId, connectors, q.twin);
      if (q.from === o.nodeId || r.connection || r.rejections.length > 0) m.respond(r);
    }),
  ];
  return { [Symbol.dispose]: () => subs.forEach((s) => s.unsubscribe()) };
}

/** What this node's connectors know of a device. */
function sessionHere(node: string, connectors: readonly Connector[], twin: string): SessionReport {
  return {
    node,
    connection: connectors.map((c) => c.connection(twin)).find((c) => c !== null) ?? null,
    rejections: connectors.flatMap((c) => c.rejections(twin)),
  };
}

/**
 * What every node's connectors know of a device: this node's report first (always there),
 * then each other node that has something, within {@linkcode SESSIONS_WAIT_MS}.
 */
export async function sessionsOf(
  transport: Transport,
  nodeId: string,
  twin: string,
): Promise<SessionReport[]> {
  const replies = await transport.gather(subjects.diagnostics(twin), { twin, from: nodeId }, {
    maxWaitMs: SESSIONS_WAIT_MS,
  }) as SessionReport[];
  const mine = replies.find((r) => r.node === nodeId) ??
    { node: nodeId, connection: null, rejections: [] };
  return [mine, ...replies.filter((r) => r.node !== nodeId)];
}

/**
 * Publish the persisted desired state of every twin this node hosts to its connectors
 * (start-up: a connector's retained state may be older); how many twins.
 */
export async function republishDesired(
  twins: { withDesired(): AsyncIterable<{ id: string; desired: JsonObject }> },
  connectors: readonly Connector[],
): Promise<number> {
  let n = 0;
  for await (const s of twins.withDesired()) {
    for (const c of connectors) await c.publishDesired(s.id, s.desired);
    n++;
  }
  return n;
}
