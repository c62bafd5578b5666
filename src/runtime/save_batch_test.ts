import assert from "node:assert/strict";
import { emptyTwin, type TwinRecord } from "../../actors/twin.ts";
import type { SnapshotStore } from "../persistence/port.ts";
import { FencedWhileSavingError, saveBatch } from "./save_batch.ts";

Deno.test("saveBatch: after a failed batch, a twin no longer allowed here is not sent again (a node resumed past its lease)", async () => {
  const sent: string[][] = [];
  let fail = true;
  const store: SnapshotStore = {
    load: () => Promise.resolve(null),
    list: () => Promise.resolve([]),
    saveMany(records: TwinRecord[]) {
      sent.push(records.map((r) => r.state.id));
      if (fail) {
        fail = false; // the batch times out; single retries would go through
        return Promise.reject(new Error("timeout"));
      }
      return Promise.resolve();
    },
  };
  const batch = new Map(["a", "b"].map((id) => [id, emptyTwin(id, 0)]));
  const stored: string[] = [];
  const { failed, all } = await saveBatch(
    store,
    batch,
    (ids) => stored.push(...ids),
    (id) => id !== "b",
  );
  assert.deepEqual(sent, [["a", "b"], ["a"]]);
  assert.deepEqual(stored, ["a"]);
  assert.ok(failed.get("b") instanceof FencedWhileSavingError);
  assert.equal(all, false);
});
