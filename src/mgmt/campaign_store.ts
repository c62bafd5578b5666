/**
 * Where campaigns live: one document per campaign in the `campaigns` kind (small: the spec,
 * state and per-wave counts), and its per-device records in chunks of {@linkcode CHUNK} in the
 * `campaign_devices` kind under `{campaign}.{set}.{n}` (a Deno KV value holds at most 64 KiB; a
 * chunk stays well below that even with full histories). Chunk `n` holds targets
 * `[n·CHUNK, (n+1)·CHUNK)`.
 *
 * Every write is a compare-and-set. Each writer bumps the campaign's `revision` (a chunk's
 * `rev`), so a writer that reads back a document with the revision it wrote knows nobody wrote
 * after it — the stores do not return the new version of a write.
 * @module
 */
import type { Doc, DocStore, DocStores } from "../persistence/doc_store.ts";
import type { Campaign, DeviceRecord } from "./campaign_model.ts";

/** Device records per chunk document. */
export const CHUNK = 25;

/** A chunk of device records. */
export interface Chunk {
  /** Bumped by every write. */
  rev: number;
  devices: DeviceRecord[];
}

/** A document version as the store gives it. */
export type Version = string | number;

/** Campaign documents and their device chunks. */
export class CampaignStore {
  private constructor(
    readonly headers: DocStore<Campaign>,
    readonly chunks: DocStore<Chunk>,
  ) {}

  /** Open the two kinds. */
  static async open(docs: DocStores): Promise<CampaignStore> {
    return new CampaignStore(
      await docs.open<Campaign>("campaigns"),
      await docs.open<Chunk>("campaign_devices"),
    );
  }

  get(id: string): Promise<Doc<Campaign> | null> {
    return this.headers.get(id);
  }

  /** Every campaign, in id (= creation) order. */
  list(): Promise<Doc<Campaign>[]> {
    return this.headers.list();
  }

  /** Write `c` if the stored one is still at `version` (null: create only). */
  write(c: Campaign, version: Version | null): Promise<boolean> {
    return this.headers.put(c.id, c, version);
  }

  /**
   * {@linkcode write}, then read back the new version (the driver's next write needs it). Returns the new
   * version, or null when someone else wrote it meanwhile (or right after).
   */
  async put(c: Campaign, version: Version | null): Promise<Version | null> {
    if (!(await this.headers.put(c.id, c, version))) return null;
    const back = await this.headers.get(c.id);
    return back && back.value.revision === c.revision ? back.version : null;
  }

  /** Chunks of a campaign with `total` targets. */
  static chunkCount(total: number): number {
    return Math.ceil(total / CHUNK);
  }

  /** Chunk `n` of a campaign's device records. */
  chunk(c: ChunkOwner, n: number): Promise<Doc<Chunk> | null> {
    return this.chunks.get(chunkKey(c, n));
  }

  /**
   * Write chunk `n` if still at `version` (null: create only). Returns its new version, or
   * null when someone else wrote it meanwhile; `readBack: false` skips learning the version
   * (returns `undefined` on success: see {@linkcode ChunkRef}).
   */
  async putChunk(
    c: ChunkOwner,
    n: number,
    chunk: Chunk,
    version: Version | null,
    readBack = true,
  ): Promise<Version | null | undefined> {
    const key = chunkKey(c, n);
    if (!(await this.chunks.put(key, chunk, version))) return null;
    if (!readBack) return undefined;
    const back = await this.chunks.get(key);
    return back && back.value.rev === chunk.rev ? back.version : null;
  }

  /**
   * The version of chunk `n` if it is still at `rev` (the one we wrote), else null (someone
   * else wrote it since).
   */
  async versionOf(c: ChunkOwner, n: number, rev: number): Promise<Version | null> {
    const d = await this.chunks.get(chunkKey(c, n));
    return d && d.value.rev === rev ? d.version : null;
  }

  /** Every device record of `c` with its chunks' versions; throws when a chunk is missing. */
  async devices(c: Campaign): Promise<{ devices: DeviceRecord[]; chunks: ChunkRef[] }> {
    const devices: DeviceRecord[] = [];
    const chunks: ChunkRef[] = [];
    const n = CampaignStore.chunkCount(c.total);
    for (let i = 0; i < n; i += 16) {
      const page = await Promise.all(
        Array.from({ length: Math.min(16, n - i) }, (_, j) => this.chunk(c, i + j)),
      );
      for (const [j, d] of page.entries()) {
        if (!d) throw new Error(`Campaign "${c.id}": device chunk ${i + j} is missing`);
        devices.push(...d.value.devices);
        chunks.push({ rev: d.value.rev, version: d.version });
      }
    }
    return { devices, chunks };
  }

  /** Delete the first `count` chunks of a set (best effort: a missing one is fine). */
  async deleteChunks(c: ChunkOwner, count: number): Promise<void> {
    for (let i = 0; i < count; i++) await this.chunks.delete(chunkKey(c, i));
  }

  /** Delete a campaign and its chunks (chunks first: a half-done delete can be repeated). */
  async delete(c: Campaign): Promise<boolean> {
    await this.deleteChunks(c, CampaignStore.chunkCount(c.total));
    return await this.headers.delete(c.id);
  }
}

/** What names a set of chunks. */
export type ChunkOwner = Pick<Campaign, "id" | "chunkSet">;

const chunkKey = (c: ChunkOwner, n: number) => `${c.id}.${c.chunkSet}.${n}`;

/** What the driver knows of a stored chunk. */
export interface ChunkRef {
  rev: number;
  /** Undefined: not learnt yet (written without reading back); read before the next write. */
  version: Version | undefined;
}
