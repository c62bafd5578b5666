/**
 * Storing one commit batch of twin snapshots so that one twin that cannot be stored does not
 * hold back the others.
 * @module
 */
import type { TwinRecord } from "../../actors/twin.ts";
import type { SnapshotStore } from "../persistence/port.ts";

/** A twin of the batch no longer allowed to be persisted here when it was tried on its own. */
export class FencedWhileSavingError extends Error {
  override name = "FencedWhileSavingError";
}

/**
 * Store a commit batch. When the store refuses the batch, each twin is tried on its own —
 * if `may` still allows it: the batch may have failed because this node was paused past its
 * lease (a request timed out on resume), and a retry sent now would overwrite the new owner's
 * snapshot. `stored` is told which twins were stored. Returns the twins not stored with their
 * errors, and `all` when none was stored (then the store, not a twin, is the likely problem).
 */
export async function saveBatch(
  store: SnapshotStore,
  batch: Map<string, TwinRecord>,
  stored: (ids: Iterable<string>) => void,
  may: (id: string) => boolean = () => true,
): Promise<{ failed: Map<string, unknown>; all: boolean }> {
  const failed = new Map<string, unknown>();
  try {
    await store.saveMany([...batch.values()]);
    stored(batch.keys());
    return { failed, all: false };
  } catch (err) {
    if (batch.size === 1) {
      failed.set(batch.keys().next().value!, err);
      return { failed, all: true };
    }
  }
  const results = await Promise.all(
    [...batch].map(([id, r]) =>
      may(id)
        ? store.saveMany([r]).then(() => null, (err: unknown) => [id, err] as const)
        : [id, new FencedWhileSavingError(`Twin "${id}" is no longer persisted here`)] as const
    ),
  );
  for (const x of results) if (x) failed.set(x[0], x[1]);
  stored([...batch.keys()].filter((id) => !failed.has(id)));
  return { failed, all: failed.size === batch.size };
}
