/**
 * Cluster mode (`NATS_URL` set): the same node, with NATS/JetStream behind the ports —
 * NATS transport, JetStream KV snapshots, the `TM_IN` stream as the inbound log, shard
 * leases and heartbeats in KV, a coordinator that moves shards between live nodes, documents,
 * audit and firmware in JetStream. Start-up waits for NATS (`TWINMILL_STARTUP_TIMEOUT`).
 * @module
 */
import { withEventInterest } from "../cluster/interest.ts";
import { nodeProfiles } from "../rules/profiles.ts";
import { jetstreamProfileStore } from "../rules/jetstream_profile_store.ts";
import { DeviceAuth } from "../security/device_auth.ts";
import { jetstreamCredentialStore } from "../security/credentials.ts";
import { JetStreamAudit } from "../security/jetstream_audit.ts";
import { jetstreamSnapshotStore } from "../persistence/jetstream_kv.ts";
import { jetstreamDocStores } from "../persistence/doc_store.ts";
import { objectBlobStore } from "../mgmt/firmware_blobs_object.ts";
import { hostDefaults, TwinHost } from "../runtime/twin_host.ts";
import { systemClock } from "../runtime/clock.ts";
import { shardOf } from "../sharding/shard.ts";
import { ensureInboundStream, JetStreamIngest } from "../cluster/inbound.ts";
import { AckRegistry } from "../cluster/shard_consumer.ts";
import { ClusterTwins, serveNode } from "../routing/mod.ts";
import { Coordinator } from "../cluster/coordinator.ts";
import { KvLeases, KvMembership } from "../cluster/kv_leases.ts";
import { Liveness } from "../cluster/liveness.ts";
import { connectWhenUp } from "../cluster/startup.ts";
import { checkPermissions } from "../cluster/permissions.ts";
import { natsSecurity } from "../cluster/nats_connect.ts";
import { PLACEMENT, upgradePlacement } from "../cluster/upgrade_placement.ts";
import { subjects } from "../transport/subjects.ts";
import { redact } from "../transport/nats.ts";
import { clusterRoutes } from "../../routes/cluster.ts";
import { hostLinks } from "./device_links.ts";
import { shardWork } from "./cluster_shards.ts";
import type { ModeOptions, NodeParts } from "./parts.ts";

/** Delay of the snapshot group commit in cluster mode (ms). */
const CLUSTER_FLUSH_DELAY_MS = 50;

/** Start the parts of a cluster node. */
export async function startCluster(o: ModeOptions): Promise<NodeParts> {
  const { cfg, log, metrics } = o;
  // replicas of the cluster's streams and buckets: one per NATS server given, at most 3
  const replicas = Math.min(3, Math.max(1, cfg.natsUrl!.split(",").length));
  const at = cfg.natsUrl!.split(",").map((u) => redact(u.trim())).join(",");
  if (cfg.nats?.insecure) {
    log.warn(
      `TWINMILL_NATS_INSECURE=1: connecting to NATS at ${at} without authentication; anyone ` +
        "who reaches it can read the twins and forge their messages",
    );
  }
  const security = await natsSecurity(cfg.nats);
  // NATS may not be there yet (started after the node, a JetStream cluster electing its
  // leader): wait for it, up to TWINMILL_STARTUP_TIMEOUT
  const transport = await connectWhenUp({
    servers: cfg.natsUrl!,
    name: cfg.nodeId,
    replicas,
    security,
    timeoutMs: cfg.startupTimeoutMs,
    logger: log,
    onWaiting: o.onWaiting,
  });
  const nc = transport.nc;
  // a permission the node's NATS user lacks is named now, not met later as a timeout
  await checkPermissions(nc, { nodeId: cfg.nodeId }).catch(async (err) => {
    await transport[Symbol.asyncDispose]();
    throw err;
  });
  // twin events reach NATS only while some node streams them (see interest.ts)
  const gated = withEventInterest(transport, { nodeId: cfg.nodeId, clock: systemClock });
  await ensureInboundStream(nc, replicas);
  // snapshots carry the writer's shard epoch; a write is a compare-and-set (jetstream_kv.ts)
  const snapshotLog = log.child("snapshots");
  const snapshots = await jetstreamSnapshotStore(nc, {
    replicas,
    fencing: {
      epochOf: (id) => coordinator.epochOf(shardOfId(id)),
      fenced(id, stored, own) {
        metrics.snapshotsFenced.inc();
        snapshotLog.warn("a newer owner's snapshot in the store: shard fenced", {
          twin: id,
          shard: shardOfId(id),
          stored,
          epoch: own,
        });
        coordinator.staleEpoch(shardOfId(id), own);
      },
      overwrote(id, stored, own) {
        metrics.staleSnapshotsOverwritten.inc();
        snapshotLog.warn("a stale owner's snapshot overwritten", { twin: id, stored, epoch: own });
      },
    },
  });
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
    disconnect: o.disconnect,
    // every node drops its cached copy and disconnects its devices using it
    announceRevoked: (twin, id) =>
      transport.publish(subjects.revoked, { twin, id, node: cfg.nodeId }),
    disconnectCert: o.disconnectCert,
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
  const acks = new AckRegistry();
  const shardOfId = (id: string) => shardOf(id, cfg.shards);
  const owns = (id: string) => coordinator.owns(shardOfId(id));

  const host = new TwinHost({
    persistence: {
      snapshots,
      log: acks,
      [Symbol.asyncDispose]: () => Promise.resolve(),
    },
    ...hostDefaults(cfg, log, metrics, o.points),
    ...hostLinks(gated, cfg.nodeId),
    transport: gated,
    source: "js",
    // Snapshots go to an R3 stream: each costs about what a device message does, so commit
    // each busy twin at most ~20 times a second. HTTP changes still commit at once, and
    // device messages stay unacked in the stream until their twin's snapshot is committed.
    flushDelayMs: CLUSTER_FLUSH_DELAY_MS,
    mayPersist: (id) => coordinator.mayPersist(shardOfId(id)),
    owns,
    profiles,
    webhooks: o.webhooks,
  });

  const shards = await shardWork({
    nc,
    transport,
    host,
    snapshots,
    acks,
    shardOf: shardOfId,
    owns,
    mayApply: (shard) => coordinator.mayPersist(shard),
    jsonLimits: cfg.limits.json,
    log,
    metrics,
  });
  // answers before the first heartbeat announces it: a dead node is seen at once (failover)
  const liveness = await Liveness.serve(nc, cfg.nodeId);
  const leases = await KvLeases.open({
    nc,
    nodeId: cfg.nodeId,
    replicas,
    clock: systemClock,
    liveness,
  });
  const members = await KvMembership.start(
    nc,
    { id: cfg.nodeId, http: "", mqtt: null, startedAt: Date.now(), ...PLACEMENT },
    { replicas, clock: systemClock, logger: log.child("membership"), liveness },
  );
  // bounded-load placement once no node of the version before it is live (rolling upgrade)
  const placement = upgradePlacement({ members, clock: systemClock });
  const coordinator: Coordinator = new Coordinator({
    nodeId: cfg.nodeId,
    shards: cfg.shards,
    leases,
    members: placement.members,
    owners: placement.owners,
    clock: systemClock,
    logger: log.child("shards"),
    tickMs: 250, // a dead member's shards are taken within a round of its takeover time
    renewMs: 500,
    hooks: {
      handoff: () => metrics.handoffs.inc(),
      leaseLost: () => metrics.leaseLosses.inc(),
      renewed: () => metrics.leaseRenewals.inc(),
    },
    runtime: shards.runtime,
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
    owns,
    log.child("cluster").child("router"),
  );
  const ingest = new JetStreamIngest(nc, cfg.shards, metrics);
  coordinator.start();
  // after a reconnect, deliveries lost in transit come again at once, not after the ack wait
  let connected = true;
  const statusLoop = (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        connected = false;
        // the survivors may take the leases over meanwhile: fence now, take them again later
        void coordinator.fenceAll();
      }
      if (s.type !== "reconnect") continue;
      connected = true;
      await shards.restartAll();
    }
  })();
  const audit = await JetStreamAudit.open(nc, { nodeId: cfg.nodeId, replicas });
  const docs = jetstreamDocStores(nc, { replicas });
  const firmwareBlobs = await objectBlobStore(nc, { replicas });

  // the audit log first (as the node did before its mode), then the shards
  const closeRest = async () => {
    coordinator.stop();
    members.stop();
    liveness.stop();
    nodeSub.unsubscribe();
    profileSub.unsubscribe();
    revokedSub.unsubscribe();
    await shards.close();
    await host.close();
    await profileStore[Symbol.asyncDispose]();
    await gated[Symbol.asyncDispose]();
    await statusLoop;
    await docs[Symbol.asyncDispose]();
  };
  return {
    host,
    twins,
    transport: gated,
    ingest,
    placement: { owns },
    docs,
    audit,
    firmwareBlobs,
    deviceAuth,
    profiles,
    routes: { "/v1/cluster": clusterRoutes({ members, leases, coordinator }) },
    nodes: async () => (await members.nodes()).map((n) => n.id),
    leaving: "leaving the cluster",
    ready: () =>
      !(connected && !nc.isClosed())
        ? {
          message: `NATS connection lost: reconnecting to ${at}`,
          waitingFor: { what: "NATS", at },
        }
        : (coordinator.settled && !shardsMoving(coordinator, cfg.shards, cfg.nodeId)) ||
          { message: "Shards are moving: not all shards of this node are served yet" },
    serving: (addresses) => members.announce(addresses),
    async reload() {
      // a bad file must not keep the node's other certificates from reloading: logged here
      await security.reload().then(
        (done) => done && log.info("NATS TLS files reloaded: the next (re)connect uses them"),
        (err) =>
          log.error("NATS TLS files not reloaded: the files read before stay in use", {
            error: (err as Error).message,
          }),
      );
    },
    async leave() {
      await audit.close();
      await members.leave();
      await coordinator.leave();
      await closeRest();
    },
    async close() {
      await audit.close();
      await closeRest();
    },
  };
}

/**
 * Shards move on this node right now: one is being acquired or handed off, or placement over
 * the live nodes gives this node a shard it does not serve yet. The coordinator's `settled`
 * is set at the end of a round, which waits for its acquisitions and handoffs: read alone, it
 * said ready while a shard this node should serve had no consumer yet (seen in the rolling
 * restart test as a GET answering 503 `shard_unavailable` between two 200s of `/readyz`).
 */
function shardsMoving(c: Coordinator, shards: number, me: string): boolean {
  for (const { state } of c.states.values()) if (state !== "owned") return true;
  for (let shard = 0; shard < shards; shard++) {
    if (!c.owns(shard) && c.ownerHint(shard) === me) return true;
  }
  return false;
}
