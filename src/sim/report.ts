/**
 * The simulator's output: the progress line (stderr) and the summary at the end (stdout, as
 * text or JSON).
 * @module
 */
import type { Histogram } from "./stats.ts";
import type { Tally } from "./tally.ts";

/** A twin whose version is not what the simulator sent it. */
export interface Mismatch {
  id: string;
  /** Version after provisioning + changes acknowledged + wills. */
  expected: number;
  /** Up to this much more is explained by messages that may have been resent. */
  tolerance: number;
  actual: number;
}

/** Result of `--verify`. */
export interface Verification {
  twins: number;
  /** Twins whose version is exactly (or within tolerance of) what was sent. */
  matched: number;
  /** At most 20 of the twins that did not match. */
  mismatches: Mismatch[];
  /** How long the versions took to settle (s). */
  seconds: number;
}

/** Everything the simulator reports at the end. */
export interface Summary {
  /** Every QoS 1 message acknowledged, nothing failed, and `--verify` (if asked) exact. */
  ok: boolean;
  devices: number;
  brokers: number;
  qos: 0 | 1;
  seed: number;
  faultSpec: string;
  /** Seconds spent sending. */
  seconds: number;
  targetRate: number;
  /** Messages sent per second while sending (the status messages at connect and at the end aside). */
  achievedRate: number;
  sent: number;
  /** PUBACKs (QoS 1; 0 with QoS 0). */
  acked: number;
  failed: number;
  /** Sent, neither acknowledged nor failed when the simulator gave up waiting. */
  unacked: number;
  /** Malformed messages sent: acknowledged and dropped by the node by design. */
  rejected: number;
  messages: { telemetry: number; reported: number; status: number; malformed: number };
  /** Connections dropped without DISCONNECT (dropouts, storms), so their will was published. */
  wills: number;
  reconnects: number;
  unexpectedDisconnects: number;
  /** Messages the scheduler could not place in time (rate not reached). */
  skipped: number;
  faults: {
    overheat: number;
    stuck: number;
    dropout: number;
    storms: number;
    stormDevices: number;
  };
  /** Publish → PUBACK in ms (QoS 1), null when nothing was acknowledged. */
  latencyMs: { p50: number; p90: number; p99: number; max: number } | null;
  verify?: Verification;
}

const r2 = (v: number) => Math.round(v * 100) / 100;

/** Percentiles of a histogram, rounded to 0.01 ms; null when empty. */
export function latencyOf(h: Histogram): Summary["latencyMs"] {
  if (h.count === 0) return null;
  return {
    p50: r2(h.percentile(50)),
    p90: r2(h.percentile(90)),
    p99: r2(h.percentile(99)),
    max: r2(h.max),
  };
}

/** Build the summary from the counters. */
export function summarize(
  t: Tally,
  o: {
    devices: number;
    brokers: number;
    qos: 0 | 1;
    seed: number;
    faultSpec: string;
    rate: number;
  },
  sending: { seconds: number; sent: number },
  verify?: Verification,
): Summary {
  const seconds = sending.seconds;
  const unacked = o.qos === 1 ? Math.max(0, t.sent - t.acked - t.failed) : 0;
  const allAcked = o.qos === 1 ? t.acked === t.sent : true;
  const ok = allAcked && t.failed === 0 &&
    (verify === undefined || verify.matched === verify.twins);
  const s: Summary = {
    ok,
    devices: o.devices,
    brokers: o.brokers,
    qos: o.qos,
    seed: o.seed,
    faultSpec: o.faultSpec,
    seconds: r2(seconds),
    targetRate: o.rate,
    achievedRate: seconds > 0 ? r2(sending.sent / seconds) : 0,
    sent: t.sent,
    acked: t.acked,
    failed: t.failed,
    unacked,
    rejected: t.byKind.malformed,
    messages: { ...t.byKind },
    wills: t.wills,
    reconnects: t.reconnects,
    unexpectedDisconnects: t.unexpected,
    skipped: t.skipped,
    faults: { ...t.faults },
    latencyMs: latencyOf(t.latency),
  };
  if (verify) s.verify = verify;
  return s;
}

/** The summary as text for people. */
export function formatSummary(s: Summary): string {
  const m = s.messages;
  const f = s.faults;
  const lines = [
    `twinmill simulator: ${s.devices} devices on ${s.brokers} broker${s.brokers > 1 ? "s" : ""}, ` +
    `QoS ${s.qos}, ${s.seconds} s, faults ${s.faultSpec}, seed ${s.seed}`,
    `  sent         ${s.sent} (telemetry ${m.telemetry}, reported ${m.reported}, status ${m.status}, malformed ${m.malformed})`,
    s.qos === 1
      ? `  acked        ${s.acked}   failed ${s.failed}   unacked ${s.unacked}`
      : `  written      ${s.sent - s.failed}   failed ${s.failed}   (QoS 0: no acknowledgements)`,
    `  rejected     ${s.rejected} malformed (acknowledged and dropped by the node, by design)`,
    `  rate         ${s.achievedRate} msg/s (target ${s.targetRate}${
      s.skipped ? `; ${s.skipped} not placed in time` : ""
    })`,
    s.latencyMs
      ? `  latency      p50 ${s.latencyMs.p50} ms   p90 ${s.latencyMs.p90} ms   p99 ${s.latencyMs.p99} ms   max ${s.latencyMs.max} ms`
      : `  latency      -`,
    `  faults       overheat ${f.overheat}, stuck ${f.stuck}, dropout ${f.dropout}, storms ${f.storms} (${f.stormDevices} devices)`,
    `  connections  reconnects ${s.reconnects}, wills ${s.wills}, unexpected disconnects ${s.unexpectedDisconnects}`,
  ];
  if (s.verify) {
    const v = s.verify;
    lines.push(
      v.matched === v.twins
        ? `  verify       ${v.twins} twins, every version exact (${v.seconds} s to settle)`
        : `  verify       ${v.twins - v.matched} of ${v.twins} twins do not match: ` +
          v.mismatches.slice(0, 5).map((x) => `${x.id} expected ${x.expected} got ${x.actual}`)
            .join("; "),
    );
  }
  lines.push(`  result       ${s.ok ? "OK" : "FAILED"}`);
  return lines.join("\n");
}

/** One progress line. */
export function progressLine(
  elapsed: number,
  t: Tally,
  windowSent: number,
  windowSeconds: number,
  inflight: number,
  up: number,
  devices: number,
): string {
  const rate = windowSeconds > 0 ? Math.round(windowSent / windowSeconds) : 0;
  const lat = t.window.count > 0
    ? `p50 ${r2(t.window.percentile(50))} ms p99 ${r2(t.window.percentile(99))} ms`
    : "p50 - p99 -";
  return `${elapsed.toFixed(0)}s sent ${t.sent} acked ${t.acked} rejected ${t.byKind.malformed} ` +
    `inflight ${inflight} ${rate} msg/s ${lat} up ${up}/${devices}`;
}
