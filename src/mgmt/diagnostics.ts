/**
 * Device diagnostics: everything an engineer needs to answer "why is this device quiet?"
 * without a shell on the server. Three sources, merged:
 * - the node hosting the twin (routed in cluster mode): connectivity as the device reported
 *   it, last seen, message counts, mailbox depth, residency, snapshot, commands, alarms, rules;
 * - the node(s) holding the device's MQTT session: client id, protocol, since when, whether
 *   it listens for commands, and the messages of it that were rejected there (with reasons);
 *   for a device on the plant's broker, the bridge it is reached through (its link, connected
 *   or not, and the device's last message through it);
 * - this node's InfluxDB writer: points waiting and how long the oldest has waited.
 * A one-line `summary` says what stands out.
 * @module
 */
import type { TwinService } from "../runtime/twin_service.ts";
import type { HostDiagnostics } from "../runtime/twin_service.ts";
import type { ConnectionInfo, Rejection } from "../ports/connector.ts";
import { TwinNotFoundError } from "../errors.ts";
import { explainRejection } from "./reject_reasons.ts";

/** What one node knows about a device's MQTT session. */
export interface SessionReport {
  node: string;
  connection: ConnectionInfo | null;
  rejections: Rejection[];
}

/** Options of {@linkcode Diagnostics}. */
export interface DiagnosticsOptions {
  twins: TwinService;
  /** Session reports of every node that has something on the device (this one included). */
  sessions(twin: string): Promise<SessionReport[]>;
  /** This node's InfluxDB writer, when telemetry goes to InfluxDB. */
  influx?: { buffered: number; lagMs(now?: number): number };
  now?: () => number;
  /** A device silent this long counts as quiet in the summary (ms). Default 5 minutes. */
  quietAfterMs?: number;
}

const iso = (ms: number | null | undefined) => ms == null ? null : new Date(ms).toISOString();

function ago(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/** Builds the diagnostics of one device. */
export class Diagnostics {
  constructor(readonly o: DiagnosticsOptions) {}

  /**
   * The diagnostics of `id`. A twin that does not exist yet but whose device some node knows
   * (its messages were rejected, or it holds an MQTT session) is explained too, with
   * `exists: false` and no actor or snapshot; only an id no node knows is `twin_not_found`.
   */
  async of(id: string) {
    const now = (this.o.now ?? Date.now)();
    const [host, reports] = await Promise.all([
      this.o.twins.diagnostics(id),
      this.o.sessions(id).catch(() => [] as SessionReport[]),
    ]);
    const found = sessionOf(reports);
    const session = found?.connection ?? null;
    const sessionNode = found?.node ?? null;
    const link = session?.bridge;
    // refused by the broker (invalid), or by the twin after it (size limit, quarantine)
    const rejected = reports.flatMap((r) => r.rejections.map((x) => ({ ...x, node: r.node })))
      .concat((host?.refused ?? []).map((x) => ({ ...x, node: host!.node })))
      .sort((a, b) => a.at - b.at).slice(-20);
    if (!host && !session && rejected.length === 0) throw new TwinNotFoundError(id);
    const t = host?.traffic ?? null;
    const minute = now - (now % 60_000);
    // counts of the current and previous minute as of now (old counts have aged out)
    const lastMinute = t && t.minute === minute ? t.count : 0;
    const previousMinute = t
      ? (t.minute === minute ? t.previous : t.minute === minute - 60_000 ? t.count : 0)
      : 0;
    const commands = host?.commands ?? [];
    const open = commands.filter((c) => c.status === "pending" || c.status === "delivered");
    const faults = (host?.rules ?? []).filter((r) => (r as { faults?: number }).faults);
    const reported = host?.connectivity ?? { status: "unknown" as const, since: null };
    return {
      twin: id,
      exists: host !== null,
      summary: summarise({
        now,
        quietAfter: this.o.quietAfterMs ?? 300_000,
        exists: host !== null,
        online: session !== null && (link?.connected ?? true),
        bridge: link && { url: link.url, connected: link.connected },
        reported,
        lastSeen: t?.lastSeen ?? null,
        rejected: rejected.length,
        lastReject: rejected.at(-1)?.reason,
        pending: open.filter((c) => c.status === "pending").length,
        listens: session?.commands ?? false,
        mailbox: host?.actor.mailboxDepth ?? 0,
        influxLagMs: this.o.influx?.lagMs(now) ?? 0,
        quarantinedUntil: host?.quarantine?.active ? host.quarantine.until : null,
      }),
      connectivity: {
        online: session !== null && (link?.connected ?? true),
        reported: { status: reported.status, since: iso(reported.since) },
        session: session
          ? {
            node: sessionNode,
            clientId: session.clientId,
            protocol: session.protocol,
            connectedAt: iso(session.connectedAt),
            listensForCommands: session.commands,
            ...(link
              ? {
                bridge: {
                  url: link.url,
                  connected: link.connected,
                  lastMessageAt: iso(link.lastMessageAt),
                },
              }
              : {}),
          }
          : null,
        lastSeen: iso(t?.lastSeen),
        silentForSeconds: t ? Math.max(0, Math.round((now - t.lastSeen) / 1000)) : null,
      },
      messages: { total: t?.total ?? 0, lastMinute, previousMinute },
      rejected: rejected.map((r) => ({
        at: iso(r.at),
        reason: r.reason,
        explanation: explainRejection(r.reason),
        topic: r.topic,
        node: r.node,
      })),
      actor: host
        ? {
          node: host.node,
          version: host.version,
          resident: host.actor.resident,
          mailboxDepth: host.actor.mailboxDepth,
          lastActive: iso(host.actor.lastActive),
          timerAt: iso(host.actor.timerAt),
        }
        : null,
      snapshot: host
        ? {
          persistedVersion: host.snapshot.persistedVersion,
          unpersistedChanges: host.snapshot.unpersisted,
          savedAt: iso(host.snapshot.savedAt),
        }
        : null,
      influx: this.o.influx
        ? {
          configured: true,
          bufferedPoints: this.o.influx.buffered,
          writeLagMs: this.o.influx.lagMs(now),
        }
        : { configured: false, bufferedPoints: 0, writeLagMs: 0 },
      commands: commands.slice().reverse().map((c) => ({
        id: c.id,
        name: c.name,
        status: c.status,
        createdAt: iso(c.createdAt),
        finishedAt: iso(c.finishedAt),
        deliveries: c.deliveries,
        ...(c.error !== undefined ? { error: c.error } : {}),
      })),
      alarms: host?.alarms ?? [],
      ruleFaults: faults,
      // the twin's last quarantine on its node: its snapshot could not be stored
      quarantine: host?.quarantine
        ? {
          active: host.quarantine.active,
          since: iso(host.quarantine.since),
          until: iso(host.quarantine.until),
          reason: host.quarantine.reason,
          droppedVersion: host.quarantine.droppedVersion,
          droppedMessages: host.quarantine.droppedMessages,
        }
        : null,
    };
  }
}

/**
 * The report whose session diagnostics show: a session on a node's own broker first, else the
 * bridge link that heard the device last (in a cluster several nodes may have).
 */
function sessionOf(reports: SessionReport[]): SessionReport | undefined {
  const withSession = reports.filter((r) => r.connection);
  const direct = withSession.find((r) => !r.connection!.bridge);
  if (direct) return direct;
  const heard = (r: SessionReport) => r.connection!.bridge!.lastMessageAt;
  return withSession.reduce<SessionReport | undefined>(
    (best, r) => (best && heard(best) >= heard(r) ? best : r),
    undefined,
  );
}

/** One sentence on what stands out, most likely cause of silence first. */
function summarise(d: {
  now: number;
  quietAfter: number;
  exists: boolean;
  online: boolean;
  /** The bridge the device is reached through, if it is. */
  bridge?: { url: string; connected: boolean };
  reported: HostDiagnostics["connectivity"];
  lastSeen: number | null;
  rejected: number;
  lastReject?: string;
  pending: number;
  listens: boolean;
  mailbox: number;
  influxLagMs: number;
  quarantinedUntil: number | null;
}): string {
  const notes: string[] = [];
  if (d.quarantinedUntil !== null) {
    notes.push(
      `quarantined for ${ago(d.quarantinedUntil - d.now)} more: its state could not be ` +
        "stored; it takes no changes meanwhile",
    );
  }
  if (!d.exists) notes.push("the twin does not exist yet: no message from the device was applied");
  else if (d.lastSeen === null) notes.push("no message from the device was ever applied");
  else if (d.now - d.lastSeen > d.quietAfter) {
    notes.push(`quiet: last message ${ago(d.now - d.lastSeen)} ago`);
  }
  if (!d.online && d.bridge) {
    notes.push(`reached through the bridge to ${d.bridge.url}, which is disconnected`);
  } else if (!d.online) {
    notes.push(
      d.reported.status === "offline" && d.reported.since
        ? `no MQTT session; the device said offline ${ago(d.now - d.reported.since)} ago`
        : "no MQTT session on any node",
    );
  }
  if (d.rejected > 0) notes.push(`${d.rejected} recent messages rejected (last: ${d.lastReject})`);
  if (d.pending > 0) {
    notes.push(
      `${d.pending} commands queued${
        d.online && !d.listens ? " (not subscribed to commands)" : ""
      }`,
    );
  }
  if (d.mailbox > 100) notes.push(`mailbox backlog ${d.mailbox}`);
  if (d.influxLagMs > 60_000) notes.push(`InfluxDB writes ${ago(d.influxLagMs)} behind`);
  return notes.length === 0 ? "ok: online and sending" : notes.join("; ");
}
