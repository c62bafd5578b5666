/**
 * JetStream KV helpers for buckets that many nodes open at once and whose entries expire
 * (bucket TTL): opening that tolerates a concurrent creator, and a scan without a consumer.
 *
 * - {@linkcode openBucket}: `Kvm.create` looks the stream up and adds it when missing; two
 *   nodes starting together both miss it, and the second add fails ("subjects overlap with an
 *   existing stream", code 10065, or "stream name already in use", 10058). Trying again binds
 *   to the stream the other node made.
 * - {@linkcode liveEntries}: one `STREAM.INFO` request with a subjects filter lists the keys,
 *   then one `get` per key. Not `kv.keys()`: it runs an ordered push consumer and stops when a
 *   delivery reports `pending === 0`; on nats-server 2.9, an entry that expires between the
 *   consumer's creation and its delivery is never delivered, pending never reaches zero, and
 *   the iterator turns into a live watch that never ends (seen in the membership tests: a scan
 *   hung for minutes, yielding every new heartbeat). Stream info has no such race, and a key
 *   that expires after the listing just reads as `null`.
 * @module
 */
import { type KV, type KvEntry, Kvm, type KvOptions } from "@nats-io/kv";
import { JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

/** "subjects overlap with an existing stream", "stream name already in use". */
const CREATE_RACE = new Set([10065, 10058]);

/** `Kvm.create(name, opts)`, trying again when another node created the bucket meanwhile. */
export async function openBucket(
  nc: NatsConnection,
  name: string,
  opts: Partial<KvOptions>,
): Promise<KV> {
  const kvm = new Kvm(nc);
  for (let attempt = 1;; attempt++) {
    try {
      return await kvm.create(name, { ...opts });
    } catch (err) {
      const raced = err instanceof JetStreamApiError && CREATE_RACE.has(err.code);
      if (!raced || attempt === 3) throw err;
    }
  }
}

/** The keys with at least one stored message (values may be delete markers). */
export async function bucketKeys(jsm: JetStreamManager, bucket: string): Promise<string[]> {
  const prefix = `$KV.${bucket}.`;
  const si = await jsm.streams.info(`KV_${bucket}`, { subjects_filter: `${prefix}>` });
  return Object.keys(si.state.subjects ?? {}).map((s) => s.slice(prefix.length));
}

/** Every key whose current value is a PUT, with its entry, in key order. */
export async function liveEntries(
  jsm: JetStreamManager,
  kv: KV,
  bucket: string,
): Promise<Map<string, KvEntry>> {
  const keys = (await bucketKeys(jsm, bucket)).sort();
  const entries = await Promise.all(keys.map((k) => kv.get(k)));
  const out = new Map<string, KvEntry>();
  entries.forEach((e, i) => {
    if (e?.operation === "PUT") out.set(keys[i], e);
  });
  return out;
}
