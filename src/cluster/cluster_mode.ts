/**
 * Cluster mode (`NATS_URL` set): the same node, with NATS/JetStream behind the ports —
 * NATS transport, JetStream KV snapshots, the `TM_IN` stream as the inbound log, shard
 * leases and heartbeats in KV, and a coordinator that moves shards between live nodes.
 * @module
 */
import type { Config } from "../config/config.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import { natsTransport } from "../transport/nats.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import { withEventInterest } from "./interest.ts";
import { nodeProfiles, type Profiles } from "../rules/profiles.ts";
import { jetstreamProfileStore } from "../rules/jetstream_profile_store.ts";
import type { WebhookSender } from "../rules/webhook.ts";
import { DeviceAuth } from "../security/device_auth.ts";
import { jetstreamCredentialStore } from "../security/credentials.ts";
import { jetstreamSnapshotStore } from "../persistence/jetstream_kv.ts";
import { hostDefaults, type PointSink, TwinHost } from "../runtime/twin_host.ts";
import { systemClock } from "../runtime/clock.ts";
import { shardOf } from "../sharding/shard.ts";
import { ensureInboundStream, INBOUND_STREAM, JetStreamIngest } from "./inbound.ts";
import { jetstreamManager } from "@nats-io/jetstream";
import { AckRegistry, ShardConsumer } from "./shard_consumer.ts";
import { ClusterTwins, serveNode, serveShard } from "../routing/mod.ts";
import { Coordinator } from "./coordinator.ts";
import { KvLeases, KvMembership } from "./kv_leases.ts";
import { ownerOf } from "../sharding/placement.ts";
import { subjects } from "../transport/subjects.ts";
import type { Subscription, Transport } from "../transport/port.ts";
import type { JsonObject } from "../../actors/json.ts";
import type { Command } from "../../actors/commands.ts";
import type { SessionReport } from "../mgmt/diagnostics.ts";
import { TransportError } from "../transport/port.ts";

/** Everything cluster mode adds to a node. */
/** Delay of the snapshot group commit in cluster mode (ms). */
const CLUSTER_FLUSH_DELAY_MS = 50;

export interface ClusterParts {
  /** The node's NATS connection (JetStream users that are not cluster parts: the audit log). */
  nc: NatsConnection;
  /** Replicas of the cluster's streams and buckets: one per NATS server given, at most 3. */
  replicas: number;
  /** False from a lost NATS connection until nats.js has reconnected (readiness). */
  readonly connected: boolean;
  transport: Transport;
  host: TwinHost;
  ingest: JetStreamIngest;
  twins: ClusterTwins;
  coordinator: Coordinator;
  members: KvMembership;
  leases: KvLeases;
  profiles: Profiles;
  deviceAuth: DeviceAuth;
  /** Republish every persisted desired state to the local broker (start-up). */
  republishDesired(publish: (id: string, desired: JsonObject) => Promise<void>): Promise<number>;
  /** Deliver desired-state changes of any twin to the local broker. */
  onDownlink(publish: (id: string, desired: JsonObject) => void): void;
  /**
   * Deliver commands of any twin through the local broker: `deliver` returns the ids handed
   * to a device listening on this node (none: this node stays silent, another may answer).
   */
  onCommands(deliver: (twin: string, commands: Command[]) => Promise<string[]>): void;
  /** Answer other nodes' diagnostics with what this node's broker knows of a device. */
  onSessions(local: (twin: string) => SessionReport): void;
  /** What every node's broker knows of a device (this node's included), within 300 ms. */
  sessions(twin: string): Promise<SessionReport[]>;
  /** Graceful leave: hand off every shard, then close. */
  leave(): Promise<void>;
  /** Close without handing off. */
  close(): Promise<void>;
}

/** Start cluster mode. `address` is announced in the membership. */
export async function startCluster(
  cfg: Config,
  info: { http: string; mqtt: string | null },
  points: PointSink | undefined,
  log: Logger,
  metrics: Metrics,
  extra: {
    webhooks?: WebhookSender;
    /** Disconnect this node's devices of a revoked credential. */
    disconnect?(twin: string, credential: string): void;
    /** Disconnect this node's devices of a revoked client certificate. */
    disconnectCert?(serial: string): void;
    /** A connection made already (start-up that waits: `connectWhenUp`); else one is made. */
    transport?: Transport & { nc: NatsConnection };
  } = {},
): Promise<ClusterParts> {
  const { webhooks } = extra;
  const transport = extra.transport ?? await natsTransport({
    servers: cfg.natsUrl!,
    name: cfg.nodeId,
    logger: log.child("nats"),
  });
  const nc = transport.nc;
  // twin events reach NATS only while some node streams them (see interest.ts)
  const gated = withEventInterest(transport, { nodeId: cfg.nodeId, clock: systemClock });
  const replicas = Math.min(3, Math.max(1, cfg.natsUrl!.split(",").length));
  await ensureInboundStream(nc, replicas);
  const snapshots = await jetstreamSnapshotStore(nc, { replicas });
  const profileStore = await jetstreamProfileStore(nc, { replicas });
  const profiles = nodeProfiles({
    store: profileStore,
    logger: log.child("profiles"),
    metrics,
    host: () => host,
    // the other nodes re-read it from the store
    announce: (name) => transport.publish(subjects.profiles, { name, node: cfg.nodeId }),
  });
  metrics.profilesLoaded.set(await profiles.load());
  const deviceAuth = new DeviceAuth({
    store: await jetstreamCredentialStore(nc, { replicas }),
    logger: log.child("credentials"),
    clock: systemClock,
    disconnect: extra.disconnect,
    // every node drops its cached copy and disconnects its devices using it
    announceRevoked: (twin, id) =>
      transport.publish(subjects.revoked, { twin, id, node: cfg.nodeId }),
    disconnectCert: extra.disconnectCert,
    announceRevokedCert: (serial) =>
      transport.publish(subjects.revoked, { serial, node: cfg.nodeId }),
    revokedFile: cfg.tls?.revokedFile,
    caFile: cfg.tls?.caFile,
  });
  const revokedSub = transport.subscribe(subjects.revoked, (m) => {
    const r = m.data as { twin?: string; id?: string; serial?: string; node: string };
    if (r.node === cfg.nodeId) return;
    if (r.serial) deviceAuth.certRevoked(r.serial);
    else if (r.twin && r.id) deviceAuth.revoked(r.twin, r.id);
  });
  const profileSub = transport.subscribe(subjects.profiles, (m) => {
    const { name, node } = m.data as { name: string; node: string };
    if (node === cfg.nodeId) return;
    profiles.reload(name).catch((err) => log.warn("profile reload failed", { name, err }));
  });
  const routerLog = log.child("cluster").child("router");
  const acks = new AckRegistry();
  const consumers = new Map<number, ShardConsumer>();
  const served = new Map<number, Subscription>();
  const epochs = new Map<number, number>();
  const shardOfId = (id: string) => shardOf(id, cfg.shards);

  const host = new TwinHost({
    persistence: {
      snapshots,
      log: acks,
      [Symbol.asyncDispose]: () => Promise.resolve(),
    },
    ...hostDefaults(cfg, log, metrics, points),
    transport: gated,
    source: "js",
    // Snapshots go to an R3 stream: each costs about what a device message does, so commit
    // each busy twin at most ~20 times a second. HTTP changes still commit at once, and
    // device messages stay unacked in the stream until their twin's snapshot is committed.
    flushDelayMs: CLUSTER_FLUSH_DELAY_MS,
    mayPersist: (id) => coordinator.mayPersist(shardOfId(id)),
    owns: (id) => coordinator.owns(shardOfId(id)),
    profiles,
    webhooks,
    downlink: (id, desired) => transport.publish(subjects.downlink(id), { id, desired }),
    commands: {
      // the node whose broker has the device listening answers; no answer: not listening
      async deliver(twin, commands) {
        try {
          const rep = await transport.request(subjects.commands(twin), { twin, commands }, {
            timeoutMs: 1_000,
          }) as { ids: string[] };
          return rep.ids;
        } catch (err) {
          if (err instanceof TransportError) return [];
          throw err;
        }
      },
    },
  });

  // after acquiring shards: arm the rule timers of their stored twins (one scan per burst)
  let armTimer: ReturnType<typeof setTimeout> | undefined;
  const armSoon = () => {
    clearTimeout(armTimer);
    armTimer = setTimeout(() => {
      host.armStored((id) => coordinator.owns(shardOfId(id))).then(
        (n) => n > 0 && log.info("armed rule timers of stored twins", { twins: n }),
        (err) => log.warn("cannot arm rule timers of stored twins", { err }),
      );
    }, 2_000);
  };

  const leases = await KvLeases.open({ nc, nodeId: cfg.nodeId, replicas, clock: systemClock });
  const members = await KvMembership.start(nc, { id: cfg.nodeId, ...info, startedAt: Date.now() }, {
    replicas,
    clock: systemClock,
    logger: log.child("membership"),
  });

  const coordinator: Coordinator = new Coordinator({
    nodeId: cfg.nodeId,
    shards: cfg.shards,
    leases,
    members,
    ownerOf,
    clock: systemClock,
    logger: log.child("shards"),
    tickMs: 500,
    hooks: {
      handoff: () => metrics.handoffs.inc(),
      leaseLost: () => metrics.leaseLosses.inc(),
      renewed: () => metrics.leaseRenewals.inc(),
    },
    runtime: {
      async start(shard, epoch) {
        epochs.set(shard, epoch);
        served.set(shard, serveShard(transport, shard, host, routerLog));
        const c = new ShardConsumer({
          nc,
          shard,
          acks,
          dispatch: (b) => host.dispatch(b),
          logger: log.child("consumer"),
          jsonLimits: cfg.limits.json,
        });
        await c.start();
        consumers.set(shard, c);
        armSoon();
        metrics.shardsOwned.set(consumers.size);
      },
      async stopIntake(shard) {
        await consumers.get(shard)?.stop();
      },
      async drain(shard) {
        return await consumers.get(shard)?.drain() ?? true;
      },
      async persist(shard) {
        await host.release((id) => shardOfId(id) === shard);
        await host.flush();
        served.get(shard)?.unsubscribe();
        served.delete(shard);
        consumers.delete(shard);
        metrics.shardsOwned.set(consumers.size);
      },
      async fence(shard) {
        served.get(shard)?.unsubscribe();
        served.delete(shard);
        await consumers.get(shard)?.stop();
        consumers.delete(shard);
        metrics.shardsOwned.set(consumers.size);
        acks.forget(shard);
        await host.discard((id) => shardOfId(id) === shard);
      },
    },
  });

  const twins = new ClusterTwins({
    transport,
    host,
    snapshots,
    shards: cfg.shards,
    owns: (s) => coordinator.owns(s),
    ownerHint: (s) => coordinator.ownerHint(s),
  });
  const nodeSub = serveNode(
    transport,
    cfg.nodeId,
    host,
    (id) => coordinator.owns(shardOfId(id)),
    routerLog,
  );
  const ingest = new JetStreamIngest(nc, cfg.shards, metrics);
  // lag is read from JetStream when Prometheus scrapes
  const jsm = await jetstreamManager(nc);
  const lagGauge = metrics.consumerLag as unknown as { collect?: () => Promise<void> };
  lagGauge.collect = async () => {
    let lag = 0;
    await Promise.all([...consumers.keys()].map(async (shard) => {
      const info = await jsm.consumers.info(INBOUND_STREAM, ShardConsumer.durable(shard))
        .catch(() => null);
      if (info) lag += info.num_pending + info.num_ack_pending;
    }));
    metrics.consumerLag.set(lag);
  };
  coordinator.start();
  // after a reconnect, deliveries lost in transit come again at once, not after the ack wait
  let connected = true;
  const statusLoop = (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") connected = false;
      if (s.type !== "reconnect") continue;
      connected = true;
      log.info("nats reconnected: restarting shard consumers", { shards: consumers.size });
      await Promise.all(
        [...consumers.values()].map((c) =>
          c.restart().catch((err) => log.warn("shard consumer restart failed", { err }))
        ),
      );
    }
  })();

  let downSub: Subscription | undefined;
  let cmdSub: Subscription | undefined;
  let diagSub: Subscription | undefined;
  let local: ((twin: string) => SessionReport) | undefined;
  const close = async () => {
    coordinator.stop();
    members.stop();
    downSub?.unsubscribe();
    cmdSub?.unsubscribe();
    diagSub?.unsubscribe();
    nodeSub.unsubscribe();
    profileSub.unsubscribe();
    revokedSub.unsubscribe();
    clearTimeout(armTimer);
    for (const c of consumers.values()) await c.stop();
    for (const s of served.values()) s.unsubscribe();
    await host.close();
    await profileStore[Symbol.asyncDispose]();
    await gated[Symbol.asyncDispose]();
    await statusLoop;
  };
  return {
    nc,
    replicas,
    get connected() {
      return connected && !nc.isClosed();
    },
    transport: gated,
    host,
    ingest,
    twins,
    coordinator,
    members,
    leases,
    profiles,
    deviceAuth,
    async republishDesired(publish) {
      let n = 0;
      for await (const s of host.withDesired()) {
        await publish(s.id, s.desired);
        n++;
      }
      return n;
    },
    onSessions(fn) {
      local = fn;
      diagSub = transport.subscribe(subjects.diagnostics("*"), (m) => {
        const r = fn((m.data as { twin: string }).twin);
        if (r.connection || r.rejections.length > 0) m.respond(r);
      });
    },
    async sessions(twin) {
      const mine = local?.(twin);
      const out: SessionReport[] = [];
      const enc = new TextEncoder();
      const dec = new TextDecoder();
      try {
        const replies = await nc.requestMany(
          subjects.diagnostics(twin),
          enc.encode(JSON.stringify({ twin })),
          { strategy: "timer", maxWait: 300 },
        );
        for await (const m of replies) {
          const r = JSON.parse(dec.decode(m.data)) as SessionReport;
          if (r.node !== cfg.nodeId) out.push(r);
        }
      } catch (err) {
        log.debug("diagnostics: no answer from other nodes", { twin, err });
      }
      return mine ? [mine, ...out] : out;
    },
    onCommands(deliver) {
      cmdSub = transport.subscribe(subjects.commandsAll, (m) => {
        const d = m.data as { twin: string; commands: Command[] };
        deliver(d.twin, d.commands).then(
          (ids) => ids.length > 0 && m.respond({ ids }),
          (err) => log.warn("cannot deliver commands", { twin: d.twin, err }),
        );
      });
    },
    onDownlink(publish) {
      downSub = transport.subscribe(subjects.downlinkAll, (m) => {
        const d = m.data as { id: string; desired: JsonObject };
        publish(d.id, d.desired);
      });
    },
    async leave() {
      await members.leave();
      await coordinator.leave();
      await close();
    },
    close,
  };
}
