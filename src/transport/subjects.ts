/**
 * Every transport subject is built here. Twin ids may contain `.`, which separates NATS
 * subject tokens, so ids are encoded (`.` → `%2E`; ids never contain `%`).
 * @module
 */

/** Encode a twin id as one subject token. */
export function idToken(id: string): string {
  return id.replaceAll(".", "%2E");
}

/** Twin event types on the event subjects. */
export type EventType = "telemetry" | "state" | "alarm" | "command" | "campaign";

/** Subjects of the twinmill transport. */
export const subjects = {
  /** Events of one twin of one type. */
  event: (type: EventType, id: string) => `tm.evt.${type}.${idToken(id)}`,
  /** Subscription: every event of one twin (`type` = `*` for all types). */
  eventsOf: (type: EventType | "*", id: string | "*") =>
    `tm.evt.${type}.${id === "*" ? "*" : idToken(id)}`,
  /** Inbound device messages of one shard (JetStream stream `TM_IN`). */
  inbound: (shard: number) => `tm.in.${shard}`,
  /** Every inbound subject (the stream's filter). */
  inboundAll: "tm.in.*",
  /** Requests to the owner of a shard (twin reads and changes). */
  shard: (shard: number) => `tm.shard.${shard}`,
  /** Batched requests to one node, for twins of any shard it owns. */
  node: (nodeId: string) => `tm.node.${idToken(nodeId)}`,
  /** Downlink of a twin's desired state to whichever node its device is connected to. */
  downlink: (id: string) => `tm.down.${idToken(id)}`,
  /** Commands for a twin's device, to whichever node its device listens on (request/reply). */
  commands: (id: string) => `tm.cmd.${idToken(id)}`,
  /** Every command subject. */
  commandsAll: "tm.cmd.*",
  /** Diagnostics: nodes holding a device's MQTT session (or its rejects) answer. */
  diagnostics: (id: string | "*") => `tm.diag.${id === "*" ? "*" : idToken(id)}`,
  /** The fleet summary: every node answers with its twins' counts (`GET /v1/fleet`). */
  fleet: "tm.fleet",
  /** A device profile changed on some node (the others reload it from the store). */
  profiles: "tm.profiles",
  /** A device credential was revoked (every node disconnects its devices using it). */
  revoked: "tm.creds.revoked",
  /** Every downlink subject. */
  downlinkAll: "tm.down.*",
  /** Prefix of every event subject (`tm.evt.{type}.{id}`). */
  eventPrefix: "tm.evt.",
  /** Each node's announcement of the event subjects its stream clients want (`interest.ts`). */
  interest: "tm.interest",
  /** A starting node asks every other node to announce its interest. */
  interestHello: "tm.interest.hello",
  /** A node's audit entries in the `TM_AUDIT` stream (the node id as one safe token). */
  audit: (nodeId: string) => `tm.audit.${nodeId.replace(/[^A-Za-z0-9_-]/g, "_")}`,
  /** Every node's audit entries. */
  auditAll: "tm.audit.*",
} as const;
