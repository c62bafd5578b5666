/**
 * Start-up permission check (cluster mode): right after connecting, the node tries, without
 * side effects, every kind of thing it will do on NATS — each JetStream API call on each of its
 * streams, a publish into each stream and bucket, each core subject it publishes or subscribes
 * to — and stops at once with one line naming the first permission the server refused, instead
 * of failing later (a timeout, a shard that never starts, a silent drop):
 *
 *     twinmill: cannot start: NATS user lacks permission to publish "tm.in.*"
 *
 * The probes harm nothing: JetStream API requests carry an empty body (the server answers
 * "invalid JSON", "not found" or "no responders" once the permission passed), publishes into a
 * stream or bucket carry `Nats-Expected-Stream` naming no stream (refused by the stream, never
 * stored), core publishes carry the {@linkcode PROBE_HEADER} every twinmill subscriber drops
 * (and a body that is not JSON, which nodes of earlier versions drop with a warning),
 * and subscriptions are removed after one round trip. Only a refusal counts: a probe that gets
 * no answer in time is not reported (waiting for JetStream is `connectWhenUp`'s job).
 * @module
 */
import {
  Empty,
  headers,
  type NatsConnection,
  PermissionViolationError,
  type Status,
  type Subscription,
} from "@nats-io/transport-node";
import { PROBE_HEADER } from "../transport/nats.ts";
import { type EventType, subjects } from "../transport/subjects.ts";
import { aliveSubject } from "./liveness.ts";
import { INBOUND_STREAM } from "./inbound.ts";
import { KV_BUCKETS, OBJECT_BUCKETS, STREAMS } from "./permission_list.ts";

/** The node's NATS user lacks a permission it needs. */
export class NatsPermissionError extends Error {
  override name = "NatsPermissionError";
  /** Stable code of this condition. */
  readonly code = "nats_permission";
  constructor(
    /** `publish` or `subscribe`. */
    readonly operation: "publish" | "subscribe",
    /** The subject (pattern) to allow. */
    readonly subject: string,
  ) {
    super(`NATS user lacks permission to ${operation} "${subject}"`);
  }
}

/** A name no stream, consumer, twin or node has. */
const PROBE = "tm-permission-probe";
const EVENT_TYPES: EventType[] = ["telemetry", "state", "alarm", "command", "campaign"];

/** One thing to try: `subject` is what is sent, `need` what to allow when it is refused. */
interface Probe {
  op: "publish" | "subscribe";
  subject: string;
  need: string;
}

/** The JetStream API requests a node makes, per stream (empty bodies: see the module doc). */
function apiProbes(): Probe[] {
  const out: Probe[] = [{ op: "publish", subject: "$JS.API.INFO", need: "$JS.API.INFO" }];
  const add = (subject: string, need = subject) => out.push({ op: "publish", subject, need });
  for (const s of STREAMS) {
    add(`$JS.API.STREAM.INFO.${s}`);
    add(`$JS.API.STREAM.CREATE.${s}`);
    add(`$JS.API.STREAM.UPDATE.${s}`);
    add(`$JS.API.STREAM.MSG.GET.${s}`);
    add(`$JS.API.CONSUMER.INFO.${s}.${PROBE}`, `$JS.API.CONSUMER.INFO.${s}.*`);
    add(`$JS.API.CONSUMER.CREATE.${s}.${PROBE}.${PROBE}`, `$JS.API.CONSUMER.CREATE.${s}.>`);
    add(`$JS.API.CONSUMER.DELETE.${s}.${PROBE}`, `$JS.API.CONSUMER.DELETE.${s}.*`);
  }
  return out;
}

/** Publishes into the node's streams and buckets (refused by the stream: see the module doc). */
function storedProbes(nodeId: string): Probe[] {
  const out: Probe[] = [
    { op: "publish", subject: subjects.inbound(0), need: subjects.inboundAll },
    { op: "publish", subject: subjects.audit(nodeId), need: subjects.audit(nodeId) },
  ];
  for (const b of KV_BUCKETS) {
    out.push({ op: "publish", subject: `$KV.${b}.${PROBE}`, need: `$KV.${b}.>` });
  }
  for (const b of OBJECT_BUCKETS) {
    for (const kind of ["C", "M"]) {
      out.push({ op: "publish", subject: `$O.${b}.${kind}.${PROBE}`, need: `$O.${b}.>` });
    }
  }
  return out;
}

/** Publishes without an answer (core ones with the probe header) and subscriptions. */
function coreProbes(nodeId: string): Probe[] {
  const pub = (subject: string, need = subject): Probe => ({ op: "publish", subject, need });
  const sub = (subject: string): Probe => ({ op: "subscribe", subject, need: subject });
  return [
    ...EVENT_TYPES.map((t) => pub(subjects.event(t, PROBE), subjects.eventsOf(t, "*"))),
    pub(subjects.shard(0), "tm.shard.*"),
    pub(subjects.node(PROBE), "tm.node.*"),
    pub(subjects.downlink(PROBE), subjects.downlinkAll),
    pub(subjects.commands(PROBE), subjects.commandsAll),
    pub(subjects.diagnostics(PROBE), subjects.diagnostics("*")),
    pub(subjects.fleet),
    pub(subjects.profiles),
    pub(subjects.revoked),
    pub(subjects.interest),
    pub(subjects.interestHello),
    pub(aliveSubject(PROBE), aliveSubject("*")),
    pub(`_INBOX.${PROBE}`, "_INBOX.>"),
    pub(`$JS.ACK.${INBOUND_STREAM}.${PROBE}.1.1.1.0.0`, `$JS.ACK.${INBOUND_STREAM}.>`),
    // a pull from a consumer that does not exist gets no answer at all: published, not asked
    ...STREAMS.map((s) =>
      pub(`$JS.API.CONSUMER.MSG.NEXT.${s}.${PROBE}`, `$JS.API.CONSUMER.MSG.NEXT.${s}.*`)
    ),
    ...EVENT_TYPES.map((t) => sub(subjects.eventsOf(t, "*"))),
    sub(subjects.shard(0)),
    sub(subjects.node(nodeId)),
    sub(aliveSubject(nodeId)),
    sub(subjects.downlinkAll),
    sub(subjects.commandsAll),
    sub(subjects.diagnostics("*")),
    sub(subjects.fleet),
    sub(subjects.profiles),
    sub(subjects.revoked),
    sub(subjects.interest),
    sub(subjects.interestHello),
  ];
}

/** The refusal behind a failed request (nats.js wraps it in a `RequestError`). */
export function violation(err: unknown): PermissionViolationError | undefined {
  if (err instanceof PermissionViolationError) return err;
  const cause = (err as Error | undefined)?.cause;
  return cause instanceof PermissionViolationError ? cause : undefined;
}

/** The {@linkcode NatsPermissionError} of a refusal (a request's subject, as refused). */
export function permissionErrorOf(v: PermissionViolationError): NatsPermissionError {
  return new NatsPermissionError(
    v.operation === "subscription" ? "subscribe" : "publish",
    v.subject,
  );
}

/** Options of {@linkcode checkPermissions}. */
export interface CheckPermissionsOptions {
  /** The node's id (its audit subject, its node and liveness subjects). */
  nodeId: string;
  /** Longest wait for one request's answer (ms, default 5000). */
  timeoutMs?: number;
}

/**
 * Throws {@linkcode NatsPermissionError} naming the first permission (in the order of the
 * module doc) the NATS server refused the connection's user; resolves when none was refused.
 *
 * @example
 * ```ts
 * await checkPermissions(transport.nc, { nodeId: "node-1" });
 * ```
 */
export async function checkPermissions(
  nc: NatsConnection,
  o: CheckPermissionsOptions,
): Promise<void> {
  const timeout = o.timeoutMs ?? 5_000;
  const refused: Probe[] = [];
  const core = coreProbes(o.nodeId);
  const byRefusal = (e: PermissionViolationError) => {
    const op = e.operation === "subscription" ? "subscribe" : "publish";
    if (op === "subscribe" && e.subject.startsWith("_INBOX.")) {
      return { op, subject: e.subject, need: "_INBOX.>" } satisfies Probe;
    }
    return core.find((p) => p.op === op && p.subject === e.subject);
  };
  // nats.js's status iterator (a QueuedIterator) has stop(); the type says AsyncIterable only
  const status = nc.status() as AsyncIterable<Status> & { stop?(): void };
  const watching = (async () => {
    for await (const s of status) {
      if (s.type !== "error" || !(s.error instanceof PermissionViolationError)) continue;
      const p = byRefusal(s.error);
      if (p) refused.push(p);
    }
  })();
  try {
    const h = headers();
    h.set("Nats-Expected-Stream", PROBE);
    const requests = [
      ...apiProbes().map((p) => ({ p, opts: { timeout } })),
      ...storedProbes(o.nodeId).map((p) => ({ p, opts: { timeout, headers: h } })),
    ];
    const answers = await Promise.all(
      requests.map(({ p, opts }) =>
        nc.request(p.subject, Empty, opts).then(
          () => undefined,
          (err) => {
            const v = violation(err);
            return v ? byRefusal(v) ?? p : undefined;
          },
        )
      ),
    );
    const probe = headers();
    probe.set(PROBE_HEADER, "1");
    const subs: Subscription[] = [];
    for (const p of core) {
      // not JSON either: a node of an earlier version, which keeps no header, drops it with a
      // warning ("not JSON") instead of handing its handler an empty message
      if (p.op === "publish") nc.publish(p.subject, PROBE, { headers: probe });
      else subs.push(nc.subscribe(p.subject, { callback: () => {} }));
    }
    // the server answers each refused PUB or SUB with -ERR before the PONG of a flush
    await nc.flush();
    await nc.flush();
    for (const s of subs) if (!s.isClosed()) s.unsubscribe();
    const first = answers.find((a) => a !== undefined) ?? refused[0];
    if (first) throw new NatsPermissionError(first.op, first.need);
  } finally {
    status.stop?.();
    await watching;
  }
}
