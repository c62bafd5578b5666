/**
 * twinmill as a Sparkplug B 3.0 host application: the MQTT sides attached to it (embedded
 * broker, bridge) hand it the `spBv1.0/…` messages they receive; it decodes them, follows
 * each edge node (`edge_nodes.ts`), submits what changes to the twins through the ingest
 * (durable before the MQTT side acknowledges), asks for rebirths, publishes its STATE, and —
 * as a {@linkcode Connector} — writes desired state and commands back as NCMD/DCMD.
 * @module
 */
import type { Command } from "../../../actors/commands.ts";
import type { JsonLimits } from "../../../actors/json_intake.ts";
import type { IngestPort } from "../../bridges/ingest.ts";
import type { Logger } from "../../obs/log.ts";
import type { ConnectionInfo, Connector, Rejection } from "../../ports/connector.ts";
import { decode, encodeCommand, readState, statePayload } from "./codec.ts";
import { DEFAULT_EDGE_LIMITS, type EdgeLimits, EdgeNodes, type Known } from "./edge_nodes.ts";
import { canonicalAll } from "./messages.ts";
import type { SparkplugMetrics } from "./notices.ts";
import { SparkplugNotices } from "./notices.ts";
import type {
  SparkplugAttachment,
  SparkplugHostPort,
  SparkplugLink,
  SparkplugOrigin,
  SparkplugOutcome,
  SparkplugReason,
  SparkplugWill,
} from "./port.ts";
import { commandTopicOf, parseSparkplugTopic, sparkplugMayPublish, stateTopic } from "./topic.ts";
import { commandWrites, desiredWrites, type Writes } from "./writes.ts";

/** Largest Sparkplug payload (a birth may be large; the broker's packet limit is 256 KiB). */
export const MAX_SPARKPLUG_PAYLOAD = 192 * 1024;

/** Options of {@linkcode SparkplugHost}. */
export interface SparkplugHostOptions {
  /** `{host_id}` of `spBv1.0/STATE/{host_id}`. */
  hostId: string;
  ingest: IngestPort;
  logger: Logger;
  metrics: SparkplugMetrics;
  /** Most metrics in one message (a birth); more: refused before decoding. Default 1,000. */
  maxMetrics?: number;
  limits?: Partial<EdgeLimits>;
  /** Limits of the JSON intake (the canonical messages must pass them on replay). */
  jsonLimits?: JsonLimits;
  /** ms since the epoch. */
  now?: () => number;
}

/** An attached MQTT side. */
interface Side {
  link: SparkplugLink;
  /** Timestamp of the STATE will of its current connection. */
  stateAt: number;
  connected: boolean;
  detached: boolean;
}

const CODES: Record<SparkplugReason, 0x80 | 0x87 | 0x95 | 0x97 | 0x99> = {
  bad_topic: 0x99,
  bad_id: 0x99,
  malformed: 0x99,
  compressed: 0x99,
  bad_metric: 0x99,
  unknown_alias: 0x99,
  acl_denied: 0x87,
  too_large: 0x95,
  too_many_metrics: 0x95,
  too_many_edge_nodes: 0x97,
  too_many_devices: 0x97,
  no_birth: 0x80,
};

const REBIRTH_METRIC = "Node Control/Rebirth";

/** The Sparkplug B host application of one node. */
export class SparkplugHost implements SparkplugHostPort, Connector {
  readonly name = "sparkplug";
  readonly filters = ["spBv1.0/#"] as const;
  readonly hostId: string;
  readonly #o: SparkplugHostOptions;
  readonly #edges: EdgeNodes;
  readonly #sides = new Map<number, Side>();
  readonly #notices: SparkplugNotices;
  readonly #now: () => number;
  #nextSide = 1;

  constructor(o: SparkplugHostOptions) {
    this.#o = o;
    this.hostId = o.hostId;
    this.#now = o.now ?? Date.now;
    this.#edges = new EdgeNodes({ ...DEFAULT_EDGE_LIMITS, ...o.limits });
    this.#notices = new SparkplugNotices(o.logger, o.metrics, this.#now);
  }

  attach(link: SparkplugLink): SparkplugAttachment {
    const id = this.#nextSide++;
    const side: Side = { link, stateAt: this.#now(), connected: false, detached: false };
    this.#sides.set(id, side);
    return {
      will: (): SparkplugWill => {
        side.stateAt = this.#now();
        return {
          topic: stateTopic(this.hostId),
          payload: statePayload(false, side.stateAt),
          qos: 1,
          retain: true,
        };
      },
      connected: async () => {
        side.connected = true;
        await this.#publishState(side, true);
      },
      onMessage: (topic, payload, origin, client) =>
        this.#onMessage(id, side, topic, payload, origin, client),
      detach: () => this.#detach(id, side),
    };
  }

  async #detach(id: number, side: Side): Promise<void> {
    if (side.detached) return;
    side.detached = true;
    if (side.connected) await this.#publishState(side, false);
    this.#edges.forgetLink(id);
    this.#sides.delete(id);
  }

  #publishState(side: Side, online: boolean): Promise<void> {
    return side.link.publish(stateTopic(this.hostId), statePayload(online, side.stateAt), {
      qos: 1,
      retain: true,
    }).catch((err) => this.#o.logger.warn("cannot publish the Sparkplug STATE", { err }));
  }

  #refuse(device: string, topic: string, reason: SparkplugReason): SparkplugOutcome {
    this.#notices.reject(device, topic, reason);
    return { ok: false, reason, device, code: CODES[reason] };
  }

  async #onMessage(
    sideId: number,
    side: Side,
    topic: string,
    payload: Uint8Array,
    origin?: SparkplugOrigin,
    client?: { restricted: boolean; twin?: string },
  ): Promise<SparkplugOutcome> {
    const who = client?.twin ?? origin?.clientId ?? "unknown";
    if (client?.restricted && !sparkplugMayPublish(client.twin, topic)) {
      return this.#refuse(who, topic, "acl_denied");
    }
    const t = parseSparkplugTopic(topic);
    if (typeof t === "string") return this.#refuse(who, topic, t);
    if (t.kind === "cmd") return { ok: true }; // another host's command to an edge node
    if (t.kind === "state") {
      // our own STATE offline while connected (a stale will): say online again
      const s = t.host === this.hostId ? readState(payload) : null;
      if (s && !s.online && side.connected && !side.detached) {
        await this.#publishState(side, true);
      }
      return { ok: true };
    }
    const d = decode(payload, MAX_SPARKPLUG_PAYLOAD, this.#o.maxMetrics ?? 1_000);
    if (typeof d === "string") return this.#refuse(t.twin, topic, d);
    const m = this.#o.metrics;
    m.messages.inc({ type: t.type });
    const now = this.#now();
    const step = this.#edges.receive(t, d, sideId, now);
    if (step.skipped > 0) m.metricsSkipped.inc(step.skipped);
    if (step.ignored) m.ignored.inc({ reason: step.ignored });
    if (step.rebirth) this.#askRebirth(side, t.group, t.edge, step.rebirth, now);
    if (step.refused) return this.#refuse(t.twin, topic, step.refused);
    const durable: Promise<void>[] = [];
    for (const c of step.changes) {
      for (const msg of canonicalAll(c, this.#o.jsonLimits)) {
        if (typeof msg === "string") {
          this.#refuse(c.twin, topic, msg === "too_large" ? "too_large" : "bad_metric");
          continue;
        }
        durable.push(
          this.#o.ingest.submit(msg.topic, msg.body, msg.rawTopic, msg.payload, now, origin),
        );
      }
    }
    try {
      await Promise.all(durable);
    } catch (err) {
      // not acknowledged: the edge node resends, and with its seq already taken that resend
      // would be ignored; so it is asked for a rebirth (its full state) instead
      this.#edges.unsettle(t.edgeTwin);
      throw err;
    }
    return { ok: true };
  }

  #askRebirth(side: Side, group: string, edge: string, cause: string, now: number): void {
    this.#o.metrics.rebirths.inc({ cause });
    const payload = encodeCommand(
      [{ name: REBIRTH_METRIC, datatype: "Boolean", value: true }],
      now,
    );
    side.link.publish(`spBv1.0/${group}/NCMD/${edge}`, payload, { qos: 0, retain: false }).catch(
      (err) => this.#o.logger.warn("cannot ask a Sparkplug edge node for a rebirth", { edge, err }),
    );
  }

  /** Publish the writes to the twin's edge node or device; false when it is not born here. */
  async #write(
    twin: string,
    source: "desired" | "command",
    make: (k: Known) => Writes,
  ): Promise<boolean> {
    const found = this.#edges.find(twin);
    const side = found && this.#sides.get(found.edge.link);
    const topic = commandTopicOf(twin);
    if (!found?.known.born || !found.edge.born || !side || side.detached || !topic) return false;
    const w = make(found.known);
    if (w.refused.length > 0 && this.#notices.oncePerMinute(`${twin}\u0000write`)) {
      this.#o.logger.warn("Sparkplug write refused: the value is not of the metric's datatype", {
        device: twin,
        metrics: w.refused.slice(0, 10),
      });
    }
    if (w.metrics.length === 0) return false;
    await side.link.publish(topic, encodeCommand(w.metrics, this.#now()), {
      qos: 0,
      retain: false,
    });
    this.#o.metrics.writes.inc({ source }, w.metrics.length);
    return true;
  }

  async publishDesired(id: string, desired: unknown): Promise<void> {
    if (desired === null || typeof desired !== "object" || Array.isArray(desired)) return;
    await this.#write(id, "desired", (k) => desiredWrites(k, desired as Record<string, unknown>));
  }

  async deliverCommands(twin: string, commands: Command[]): Promise<string[]> {
    let ids: string[] = [];
    const sent = await this.#write(twin, "command", (k) => {
      const w = commandWrites(k, commands);
      ids = w.ids;
      return w;
    });
    return sent ? ids : [];
  }

  disconnect(): number {
    return 0; // the MQTT side holds the connections
  }

  disconnectCert(): number {
    return 0;
  }

  async reloadTls(): Promise<void> {}

  /** Born edge nodes and devices. */
  get devicesConnected(): number {
    return this.#edges.born;
  }

  connection(twin: string): ConnectionInfo | null {
    const found = this.#edges.find(twin);
    if (!found?.known.born) return null;
    const side = this.#sides.get(found.edge.link);
    return {
      clientId: found.edge.twin,
      protocol: `sparkplug b (${side?.link.name ?? "?"})`,
      connectedAt: found.known.bornAt,
      commands: true,
    };
  }

  rejections(twin: string): Rejection[] {
    return this.#notices.of(twin);
  }

  /**
   * For `GET /v1/connectors`: the STATE host id, the MQTT sides (connected or not), edge nodes
   * followed and twins born (edge nodes and devices).
   */
  status(): Record<string, unknown> {
    return {
      hostId: this.hostId,
      sides: [...this.#sides.values()].map((s) => ({ name: s.link.name, connected: s.connected })),
      edgeNodes: this.#edges.size,
      born: this.#edges.born,
    };
  }

  /** Detach every side (STATE offline where connected). */
  async [Symbol.asyncDispose](): Promise<void> {
    for (const [id, side] of [...this.#sides]) await this.#detach(id, side);
  }
}
