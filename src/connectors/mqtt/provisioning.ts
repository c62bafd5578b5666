/**
 * Zero-touch provisioning over MQTT: a client logs in with username `$provision` and a
 * provisioning key as password (checked at CONNECT, see `authenticate.ts`), subscribes to
 * `provision/{clientId}/response`, publishes its request on `provision/{clientId}/request` and
 * gets the answer on the response topic — straight to that client, never through the topic
 * tree, as the answer holds the device's token.
 * @module
 */
import type { AuthorizePublishHandler, Client } from "aedes";
import { Buffer } from "node:buffer";
import { divert, type Rejections } from "./rejections.ts";
import type { Notices } from "./notices.ts";

/** What the broker needs for provisioning over MQTT (see `BrokerOptions.provisioning`). */
export interface ProvisioningPort {
  /** Null when `key` may provision now; else the reason it may not (logged, never the key). */
  check(key: string): Promise<string | null>;
  /** Answer one request; the result is published as JSON on the client's response topic. */
  handle(key: string, clientId: string, payload: Uint8Array): Promise<unknown>;
}

/** Username of a client that logs in with a provisioning key. */
export const PROVISION_USERNAME = "$provision";

/** The request and response topics of a provisioning client. */
export function provisionTopics(clientId: string): { request: string; response: string } {
  return { request: `provision/${clientId}/request`, response: `provision/${clientId}/response` };
}

type Packet = Parameters<AuthorizePublishHandler>[1];
type Ack = Parameters<AuthorizePublishHandler>[2];

/** Answers the requests of clients logged in as `$provision`. */
export class ProvisioningRequests {
  constructor(
    readonly port: ProvisioningPort,
    readonly rejections: Rejections,
    readonly notices: Notices,
  ) {}

  /** A provisioning client's publish: only its request topic, answered on its response topic. */
  request(client: Client, key: string, packet: Packet, cb: Ack): void {
    const topics = provisionTopics(client.id);
    if (packet.topic !== topics.request) {
      this.notices.aclDenied(PROVISION_USERNAME, "publish", packet.topic);
      this.rejections.reject(packet, client.id, "acl_denied");
      return cb(null);
    }
    const payload = packet.payload instanceof Uint8Array
      ? packet.payload
      : Buffer.from(String(packet.payload));
    divert(packet); // the request goes to nobody else
    // deno-lint-ignore no-explicit-any
    if ((client as any).closed) return cb(null); // its will message: nobody would hear the answer
    this.port.handle(key, client.id, payload).then(
      (answer) => answer,
      (err) => {
        this.notices.log.error("provisioning request failed", {
          client: client.id.slice(0, 128),
          err,
        });
        return { status: "error", error: { code: "internal", message: "Provisioning failed" } };
      },
    ).then((answer) => {
      // straight to this client, not through the topic tree: the answer holds its token, and
      // another client subscribed to `#` or `provision/+/response` (no device auth) must not
      // hear it
      client.publish({
        cmd: "publish",
        topic: topics.response,
        payload: Buffer.from(JSON.stringify(answer)),
        qos: 1,
        retain: false,
        dup: false,
      }, () => cb(null));
    });
  }
}
