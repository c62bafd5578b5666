/**
 * Storing one commit batch of twin snapshots so that one twin that cannot be stored does not
 * hold back the others.
 * @module
 */
import type { TwinRecord } from "../../actors/twin.ts";
import type { SnapshotStore } from "../persistence/port.ts";

/**
 * Store a commit batch. When the store refuses the batch, each twin is tried on its own.
 * `stored` is told which twins were stored. Returns the twins not stored with their errors,
 * and `all` when none was stored (then the store, not a twin, is the likely problem).
 */
export async function saveBatch(
  store: SnapshotStore,
  batch: Map<string, TwinRecord>,
  stored: (ids: Iterable<string>) => void,
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
      store.saveMany([r]).then(() => null, (err: unknown) => [id, err] as const)
    ),
  );
  for (const x of results) if (x) failed.set(x[0], x[1]);
  stored([...batch.keys()].filter((id) => !failed.has(id)));
  return { failed, all: failed.size === batch.size };
}
