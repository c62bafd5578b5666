/**
 * In-memory persistence adapter (unit tests, benchmarks of the rest of the pipeline).
 * Records are deep-copied so callers cannot mutate what was "persisted".
 * @module
 */
import type { InboundLog, LogEntry, Persistence, SnapshotStore } from "./port.ts";
import type { TwinRecord } from "../../actors/twin.ts";

/** Create an in-memory {@linkcode Persistence}. */
export function memoryPersistence(): Persistence {
  const twins = new Map<string, TwinRecord>();
  const log = new Map<number, LogEntry>();
  let hwm = 0;
  const snapshots: SnapshotStore = {
    load: (id) => Promise.resolve(twins.has(id) ? structuredClone(twins.get(id)!) : null),
    saveMany(records) {
      for (const r of records) twins.set(r.state.id, structuredClone(r));
      return Promise.resolve();
    },
    list(after, limit) {
      const ids = [...twins.keys()].filter((id) => after === undefined || id > after).sort();
      return Promise.resolve(ids.slice(0, limit).map((id) => structuredClone(twins.get(id)!)));
    },
  };
  const inbound: InboundLog = {
    append(entries) {
      for (const e of entries) {
        log.set(e.seq, { ...e, payload: e.payload.slice() });
        hwm = Math.max(hwm, e.seq);
      }
      return Promise.resolve();
    },
    retire(seqs) {
      for (const s of seqs) log.delete(s);
      return Promise.resolve();
    },
    async *replay() {
      const seqs = [...log.keys()].sort((a, b) => a - b);
      for (const s of seqs) if (log.has(s)) yield log.get(s)!;
    },
    lastSeq: () => Promise.resolve(hwm),
  };
  return { snapshots, log: inbound, [Symbol.asyncDispose]: () => Promise.resolve() };
}
