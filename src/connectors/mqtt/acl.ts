/**
 * The broker's access control. A restricted client — every client with device authentication
 * on, and a client identified by its certificate (mTLS) whatever device authentication says —
 * may publish only its own twin's device topics and hear only its own twin's desired state and
 * commands. A provisioning client hears only its own answers; nobody hears diverted rejects.
 * @module
 */
import type { Client } from "aedes";
import type { Identity, Sessions } from "./sessions.ts";
import { matchesDropTopic } from "./rejections.ts";
import { PROVISION_USERNAME, provisionTopics } from "./provisioning.ts";
import { sparkplugMaySubscribe } from "../sparkplug/topic.ts";

/** Topic kinds a device may publish to its own twin. */
const DEVICE_PUBLISH = new Set(["telemetry", "reported", "status", "command_result"]);

/** True when an authenticated device of `twin` may subscribe to `filter`. */
export function deviceMaySubscribe(twin: string, filter: string): boolean {
  const own = `twins/${twin}/`;
  if (!filter.startsWith(own)) return false;
  const rest = filter.slice(own.length);
  if (rest === "desired" || rest === "commands/+") return true;
  // one command: commands/{cmdId} with no wildcard
  return /^commands\/[^/+#]+$/.test(rest);
}

/** True when a restricted client authenticated as `me` may publish a `kind` message of `twin`. */
export function deviceMayPublish(me: Identity | undefined, twin: string, kind: string): boolean {
  return me !== undefined && twin === me.twin && DEVICE_PUBLISH.has(kind);
}

/** The ACL of one broker. */
export class Acl {
  /** `auth`: device authentication is on (every client is restricted). */
  constructor(readonly auth: boolean, readonly sessions: Sessions) {}

  /** True when the client is held to its own twin's topics. */
  restricted(client: Client | null): boolean {
    return this.auth || (client !== null && this.sessions.hasIdentity(client));
  }

  /**
   * THE decision of what a client may hear: a subscription filter it asks for, and each topic
   * something is delivered to it on (commands go straight to their listeners, not through
   * aedes's topic tree, so delivery asks here too).
   */
  mayReceive(client: Client, topic: string): boolean {
    if (matchesDropTopic(topic)) return false;
    if (this.sessions.isProvisioner(client)) {
      return topic === provisionTopics(client.id).response;
    }
    if (!this.restricted(client)) return true;
    const me = this.sessions.identity(client);
    // an edge node (Sparkplug B, twin `{group}:{edge}`): its NCMD/DCMD and the hosts' STATE
    return me !== undefined &&
      (deviceMaySubscribe(me.twin, topic) || sparkplugMaySubscribe(me.twin, topic));
  }

  /** Who a denial of the client is reported as: `$provision`, its twin, else its client id. */
  who(client: Client): string {
    return this.sessions.isProvisioner(client)
      ? PROVISION_USERNAME
      : this.sessions.identity(client)?.twin ?? client.id;
  }
}
