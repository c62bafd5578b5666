/**
 * Sparkplug B topics (`spBv1.0/{group}/{type}/{edge}[/{device}]`, `spBv1.0/STATE/{host}`),
 * the twin ids of edge nodes (`{group}:{edge}`) and devices (`{group}:{edge}:{device}`), and
 * what a client authenticated as an edge node's twin may publish and hear.
 * @module
 */
import { isValidTwinId } from "../../../actors/validate.ts";

/** Message types an edge node publishes (host side: consumed). */
export type EdgeMessageType =
  | "NBIRTH"
  | "NDATA"
  | "NDEATH"
  | "DBIRTH"
  | "DDATA"
  | "DDEATH";

/** A parsed Sparkplug topic. */
export type SparkplugTopic =
  | {
    kind: "edge";
    type: EdgeMessageType;
    group: string;
    edge: string;
    /** Set for D* types. */
    device?: string;
    /** `{group}:{edge}`. */
    edgeTwin: string;
    /** The twin the message is about: the edge node's or the device's. */
    twin: string;
  }
  | { kind: "cmd"; type: "NCMD" | "DCMD" }
  | { kind: "state"; host: string };

const EDGE_TYPES = new Set(["NBIRTH", "NDATA", "NDEATH", "DBIRTH", "DDATA", "DDEATH"]);
/** One id part: twin id characters without `:` (the separator). */
const PART_RE = /^[A-Za-z0-9_.-]{1,128}$/;

/**
 * Parse a Sparkplug topic, or say why it is refused: `bad_topic` (not the spec's shape) or
 * `bad_id` (a group, edge node or device id that cannot be part of a twin id: only
 * `A-Z a-z 0-9 _ - .`, and the whole twin id at most 128 characters).
 */
export function parseSparkplugTopic(topic: string): SparkplugTopic | "bad_topic" | "bad_id" {
  const p = topic.split("/");
  if (p[0] !== "spBv1.0" || p.length < 3) return "bad_topic";
  if (p[1] === "STATE") {
    return p.length === 3 && p[2] !== "" ? { kind: "state", host: p[2] } : "bad_topic";
  }
  if (p.length < 4) return "bad_topic";
  const type = p[2];
  if (type === "NCMD" || type === "DCMD") return { kind: "cmd", type };
  if (!EDGE_TYPES.has(type)) return "bad_topic";
  const isDevice = type[0] === "D";
  if (p.length !== (isDevice ? 5 : 4)) return "bad_topic";
  const [group, edge, device] = [p[1], p[3], p[4]];
  if (!PART_RE.test(group) || !PART_RE.test(edge)) return "bad_id";
  if (isDevice && !PART_RE.test(device)) return "bad_id";
  const edgeTwin = `${group}:${edge}`;
  const twin = isDevice ? `${edgeTwin}:${device}` : edgeTwin;
  if (!isValidTwinId(twin)) return "bad_id";
  return {
    kind: "edge",
    type: type as EdgeMessageType,
    group,
    edge,
    ...(isDevice ? { device } : {}),
    edgeTwin,
    twin,
  };
}

/** `spBv1.0/{group}/NCMD/{edge}` or `spBv1.0/{group}/DCMD/{edge}/{device}` for a twin id. */
export function commandTopicOf(twin: string): string | null {
  const p = twin.split(":");
  if (p.length === 2) return `spBv1.0/${p[0]}/NCMD/${p[1]}`;
  if (p.length === 3) return `spBv1.0/${p[0]}/DCMD/${p[1]}/${p[2]}`;
  return null;
}

/** `spBv1.0/STATE/{host}`. */
export function stateTopic(host: string): string {
  return `spBv1.0/STATE/${host}`;
}

/**
 * True when a restricted client (device authentication on) authenticated as twin `me` may
 * publish on `topic`: only an edge node's own BIRTH, DATA and DEATH messages, for itself
 * and its devices (`me` = `{group}:{edge}`).
 */
export function sparkplugMayPublish(me: string | undefined, topic: string): boolean {
  const t = parseSparkplugTopic(topic);
  return me !== undefined && typeof t !== "string" && t.kind === "edge" && t.edgeTwin === me;
}

/**
 * True when a restricted client authenticated as twin `me` (`{group}:{edge}`) may subscribe
 * to `filter`: its own NCMD and DCMD topics (`…/NCMD/{edge}`, `…/NCMD/{edge}/#`,
 * `…/DCMD/{edge}/+`, `…/DCMD/{edge}/#`, `…/DCMD/{edge}/{device}`) and any host's STATE
 * (`spBv1.0/STATE/+` or one host).
 */
export function sparkplugMaySubscribe(me: string | undefined, filter: string): boolean {
  const p = filter.split("/");
  if (p[0] !== "spBv1.0" || me === undefined) return false;
  if (p[1] === "STATE") return p.length === 3 && p[2] !== "#" && p[2] !== "";
  const own = me.split(":");
  if (own.length !== 2 || p[1] !== own[0] || p[3] !== own[1]) return false;
  if (p[2] === "NCMD") return p.length === 4 || (p.length === 5 && p[4] === "#");
  if (p[2] !== "DCMD" || p.length !== 5) return false;
  return p[4] === "+" || p[4] === "#" || PART_RE.test(p[4]);
}
