/**
 * Cluster mode's work per shard, as the coordinator drives it: on acquiring a shard, serve
 * its twin requests and consume its slice of the `TM_IN` stream; on handing it off, stop
 * intake, drain, persist and release its twins; on losing its lease, drop them unpersisted.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import type { JsonLimits } from "../../actors/json_intake.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import type { TwinHost } from "../runtime/twin_host.ts";
import type { Subscription, Transport } from "../transport/port.ts";
import type { ShardRuntime } from "../cluster/coordinator.ts";
import { INBOUND_STREAM } from "../cluster/inbound.ts";
import { type AckRegistry, ShardConsumer } from "../cluster/shard_consumer.ts";
import { serveShard } from "../routing/mod.ts";

/** Options of {@linkcode shardWork}. */
export interface ShardWorkOptions {
  nc: NatsConnection;
  transport: Transport;
  host: TwinHost;
  /** The snapshot store: it forgets the revisions it keeps of a shard that leaves. */
  snapshots: { forgetWhere(pred: (id: string) => boolean): void };
  acks: AckRegistry;
  shardOf(id: string): number;
  /** True when this node owns `id` now (rule timers of stored twins). */
  owns(id: string): boolean;
  /**
   * True while this node may apply the shard's records: it owns the shard and its lease is
   * valid. A record delivered before the lease ran out (a node resumed after `SIGSTOP`) is
   * then not applied; the next owner gets it.
   */
  mayApply(shard: number): boolean;
  jsonLimits: JsonLimits;
  log: Logger;
  metrics: Metrics;
}

/** The shards this node works on. */
export interface ShardWork {
  runtime: ShardRuntime;
  /** Restart every shard consumer (after a NATS reconnect). */
  restartAll(): Promise<void>;
  /** Stop every consumer and shard service. */
  close(): Promise<void>;
}

/** Work on shards as the coordinator says; also reads the consumer lag when scraped. */
export async function shardWork(o: ShardWorkOptions): Promise<ShardWork> {
  const { host, metrics, log } = o;
  const routerLog = log.child("cluster").child("router");
  const consumers = new Map<number, ShardConsumer>();
  const served = new Map<number, Subscription>();

  // after acquiring shards: arm the rule timers of their stored twins and count them in the
  // fleet index (one scan each per burst)
  let armTimer: ReturnType<typeof setTimeout> | undefined;
  const armSoon = () => {
    clearTimeout(armTimer);
    host.fleet.awaitSeed();
    armTimer = setTimeout(() => {
      host.seedFleet(o.owns).catch((err) => log.warn("cannot count stored twins", { err }));
      host.armStored(o.owns).then(
        (n) => n > 0 && log.info("armed rule timers of stored twins", { twins: n }),
        (err) => log.warn("cannot arm rule timers of stored twins", { err }),
      );
    }, 2_000);
  };
  const unserve = (shard: number) => {
    served.get(shard)?.unsubscribe();
    served.delete(shard);
  };

  const runtime: ShardRuntime = {
    async start(shard) {
      served.set(shard, serveShard(o.transport, shard, host, routerLog));
      const c = new ShardConsumer({
        nc: o.nc,
        shard,
        acks: o.acks,
        dispatch: (b) => {
          if (o.mayApply(shard)) host.dispatch(b);
        },
        owned: () => o.mayApply(shard),
        logger: log.child("consumer"),
        jsonLimits: o.jsonLimits,
      });
      // in the map before it starts: a shard fenced while its consumer starts (JetStream slow
      // after a NATS server restart) must stop this consumer too. Left out until started, it
      // ran on unseen: its records were registered in the ack registry but not applied (the
      // shard no longer owned), so every redelivery to the next consumer was skipped as
      // "still being applied" and the shard stalled with its messages unacked.
      consumers.set(shard, c);
      try {
        await c.start();
      } catch (err) {
        if (consumers.get(shard) === c) consumers.delete(shard);
        throw err;
      }
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
      await host.release((id) => o.shardOf(id) === shard);
      await host.flush();
      unserve(shard);
      consumers.delete(shard);
      metrics.shardsOwned.set(consumers.size);
      o.snapshots.forgetWhere((id) => o.shardOf(id) === shard);
    },
    async fence(shard) {
      unserve(shard);
      await consumers.get(shard)?.stop();
      consumers.delete(shard);
      metrics.shardsOwned.set(consumers.size);
      o.acks.forget(shard);
      await host.discard((id) => o.shardOf(id) === shard);
      o.snapshots.forgetWhere((id) => o.shardOf(id) === shard);
    },
  };

  // lag is read from JetStream when Prometheus scrapes
  const jsm = await jetstreamManager(o.nc);
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

  return {
    runtime,
    async restartAll() {
      log.info("nats reconnected: restarting shard consumers", { shards: consumers.size });
      await Promise.all(
        [...consumers.values()].map((c) =>
          c.restart().catch((err) => log.warn("shard consumer restart failed", { err }))
        ),
      );
    },
    async close() {
      clearTimeout(armTimer);
      for (const c of consumers.values()) await c.stop();
      for (const s of served.values()) s.unsubscribe();
    },
  };
}
