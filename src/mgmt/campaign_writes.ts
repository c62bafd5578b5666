/**
 * What the campaign driver stores: a begun campaign's device records and document, and each
 * step's changed records and document. Records go first and the document last, each with
 * compare-and-set, so the document never names records that do not exist and a driver that
 * loses a race to another (a user action, another node) re-reads instead of overwriting.
 * @module
 */
import type { Campaign, DeviceRecord, Observation, StepResult } from "./campaign_model.ts";
import { type CampaignStore, CHUNK, type ChunkRef, type Version } from "./campaign_store.ts";

/** A driven campaign as this node holds it between ticks. */
export interface Held {
  c: Campaign;
  /** The stored version of `c`. */
  version: Version;
  devices: DeviceRecord[];
  chunks: ChunkRef[];
  /** Observations of the last actions, for the next step. */
  pending: Observation[];
  /** Where the next round of twin reads starts. */
  cursor: number;
}

/** Device-record chunks written at once. */
const WRITERS = 16;

/** `fn` over `items`, at most `n` at a time; the results in order (the first error throws). */
async function pool<T, R>(items: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

/**
 * Store a campaign `begin` resolved (`r`, from `h.c` at version `h.version`): its device
 * records under a chunk set of their own, then the document. "retry" when a record could not
 * be written, "lost" when another writer changed the document first (this attempt's records
 * are removed again in both cases); else the stored document, its version and chunk refs.
 */
export async function storeBegun(
  store: CampaignStore,
  h: Held,
  r: { campaign: Campaign; devices: DeviceRecord[] },
  now: number,
): Promise<"retry" | "lost" | { c: Campaign; version: Version; chunks: ChunkRef[] }> {
  const c = h.c;
  // records first, under a set of their own: the campaign document never names records that
  // do not exist, and a driver that loses the race below leaves only its own set behind
  const set = r.campaign;
  const count = Math.ceil(r.devices.length / CHUNK);
  const written = await pool(Array.from({ length: count }, (_, n) => n), WRITERS, (n) => {
    const devices = r.devices.slice(n * CHUNK, (n + 1) * CHUNK);
    // thousands of chunks for a large campaign: each version is learnt when first needed
    return store.putChunk(set, n, { rev: 1, devices }, null, false);
  });
  if (written.some((v) => v === null)) {
    await store.deleteChunks(set, count);
    return "retry";
  }
  const chunks: ChunkRef[] = written.map(() => ({ rev: 1, version: undefined }));
  const next = { ...r.campaign, revision: c.revision + 1, updatedAt: now };
  const v = await store.put(next, h.version);
  if (v === null) {
    await store.deleteChunks(set, chunks.length);
    return "lost";
  }
  return { c: next, version: v, chunks };
}

/**
 * Store a step's result into `h`: the changed device chunks, then the document. "unchanged"
 * when there was nothing to store; "conflict" when someone else wrote first (what was written
 * are facts — reports, offers made — and the next tick re-reads all of it).
 */
export async function storeStep(
  store: CampaignStore,
  h: Held,
  r: StepResult,
  now: number,
): Promise<"unchanged" | "stored" | "conflict"> {
  const changed = r.updates.size > 0 || JSON.stringify(r.campaign) !== JSON.stringify(h.c);
  if (!changed) return "unchanged";
  const touched = [...new Set([...r.updates.keys()].map((i) => Math.floor(i / CHUNK)))];
  const ok = await pool(touched, WRITERS, async (n) => {
    const devices = h.devices.slice(n * CHUNK, (n + 1) * CHUNK)
      .map((d, j) => r.updates.get(n * CHUNK + j) ?? d);
    const ref = h.chunks[n];
    const at = ref.version ?? await store.versionOf(h.c, n, ref.rev);
    if (at === null) return false;
    const rev = ref.rev + 1;
    const v = await store.putChunk(h.c, n, { rev, devices }, at);
    if (!v) return false;
    h.chunks[n] = { rev, version: v };
    h.devices.splice(n * CHUNK, devices.length, ...devices);
    return true;
  });
  if (ok.includes(false)) return "conflict";
  const next: Campaign = { ...r.campaign, revision: h.c.revision + 1, updatedAt: now };
  const v = await store.put(next, h.version);
  if (v === null) return "conflict";
  h.c = next;
  h.version = v;
  return "stored";
}
