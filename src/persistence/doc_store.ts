/**
 * Small JSON documents by key with compare-and-set: config templates, provisioning keys,
 * firmware metadata, campaigns. Three adapters behind one port: memory (tests), Deno KV
 * (single node, one file under the data dir, documents of a kind under `[kind, key]`), and a
 * JetStream KV bucket `tm_{kind}` (cluster mode: every node reads and writes the same one).
 *
 * Versions are opaque: pass the one read back to `put` to write only if nobody changed the
 * document meanwhile; `null` means "create only".
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { twinIdOfKey, twinKey } from "./jetstream_kv.ts";
import { liveEntries, openBucket } from "./kv_bucket.ts";

/** A document and the version it was read at. */
export interface Doc<T> {
  key: string;
  value: T;
  version: string | number;
}

/** Documents of one kind. Keys: 1–128 of `A-Z a-z 0-9 _ - . :` (twin ids fit). */
export interface DocStore<T> {
  get(key: string): Promise<Doc<T> | null>;
  /** Every document, in key order (kinds with at most some thousands of documents). */
  list(): Promise<Doc<T>[]>;
  /**
   * Write. `version` omitted: unconditionally; `null`: only if absent; else only if still at
   * that version. False when the condition failed (someone changed it meanwhile).
   */
  put(key: string, value: T, version?: string | number | null): Promise<boolean>;
  /** True if it existed. */
  delete(key: string): Promise<boolean>;
}

/** Opens the document store of a kind (`configs`, `provisioning_keys`, ...). */
export interface DocStores extends AsyncDisposable {
  open<T>(kind: string): Promise<DocStore<T>>;
}

/** Documents in memory (tests). */
export function memoryDocStores(): DocStores {
  const kinds = new Map<string, Map<string, { value: unknown; version: number }>>();
  let seq = 0;
  return {
    open<T>(kind: string): Promise<DocStore<T>> {
      let m = kinds.get(kind);
      if (!m) kinds.set(kind, m = new Map());
      const docs = m;
      const clone = <V>(v: V): V => structuredClone(v);
      return Promise.resolve({
        get(key) {
          const e = docs.get(key);
          return Promise.resolve(
            e ? { key, value: clone(e.value as T), version: e.version } : null,
          );
        },
        list() {
          const keys = [...docs.keys()].sort();
          return Promise.resolve(keys.map((key) => {
            const e = docs.get(key)!;
            return { key, value: clone(e.value as T), version: e.version };
          }));
        },
        put(key, value, version) {
          const e = docs.get(key);
          if (version !== undefined && (e?.version ?? null) !== version) {
            return Promise.resolve(false);
          }
          docs.set(key, { value: clone(value), version: ++seq });
          return Promise.resolve(true);
        },
        delete(key) {
          return Promise.resolve(docs.delete(key));
        },
      });
    },
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}

/** Documents in one Deno KV file (single node). */
export async function denoKvDocStores(path: string): Promise<DocStores> {
  const kv = await Deno.openKv(path);
  return {
    open<T>(kind: string): Promise<DocStore<T>> {
      return Promise.resolve({
        async get(key) {
          const e = await kv.get<T>([kind, key]);
          return e.versionstamp === null
            ? null
            : { key, value: e.value as T, version: e.versionstamp };
        },
        async list() {
          const out: Doc<T>[] = [];
          for await (const e of kv.list<T>({ prefix: [kind] })) {
            out.push({ key: String(e.key[1]), value: e.value, version: e.versionstamp });
          }
          return out;
        },
        async put(key, value, version) {
          const op = kv.atomic();
          if (version !== undefined) {
            op.check({ key: [kind, key], versionstamp: version as string | null });
          }
          return (await op.set([kind, key], value).commit()).ok;
        },
        async delete(key) {
          const e = await kv.get([kind, key]);
          if (e.versionstamp === null) return false;
          await kv.delete([kind, key]);
          return true;
        },
      });
    },
    [Symbol.asyncDispose]: () => Promise.resolve(kv.close()),
  };
}

/** The key a document key is stored under in JetStream KV (bytes outside `A-Za-z0-9_-` escaped). */
const kvKey = twinKey;

/**
 * Documents in JetStream KV buckets `tm_{kind}` (cluster mode). The stores do not own the
 * connection. Reads go through the stream leader (`allow_direct: false`), so a document
 * written through one node is read back through any other.
 */
export function jetstreamDocStores(
  nc: NatsConnection,
  opts: { replicas?: number } = {},
): DocStores {
  const enc = new TextEncoder();
  return {
    async open<T>(kind: string): Promise<DocStore<T>> {
      const bucket = `tm_${kind}`;
      const kv = await openBucket(nc, bucket, {
        replicas: opts.replicas ?? 1,
        history: 1,
        allow_direct: false,
      });
      const jsm = await jetstreamManager(nc);
      return {
        async get(key) {
          const e = await kv.get(kvKey(key));
          if (!e || e.operation !== "PUT") return null;
          return { key, value: e.json<T>(), version: e.revision };
        },
        async list() {
          const entries = await liveEntries(jsm, kv, bucket);
          const out: Doc<T>[] = [];
          for (const [k, e] of entries) {
            out.push({ key: twinIdOfKey(k), value: e.json<T>(), version: e.revision });
          }
          return out.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
        },
        async put(key, value, version) {
          const k = kvKey(key);
          const data = enc.encode(JSON.stringify(value));
          try {
            if (version === undefined) await kv.put(k, data);
            else if (version === null) await kv.create(k, data);
            else await kv.update(k, data, version as number);
            return true;
          } catch {
            return false; // wrong last sequence: changed meanwhile (or created)
          }
        },
        async delete(key) {
          const e = await kv.get(kvKey(key));
          if (!e || e.operation !== "PUT") return false;
          await kv.delete(kvKey(key));
          return true;
        },
      };
    },
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}
