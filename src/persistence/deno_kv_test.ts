import assert from "node:assert/strict";
import {
  persistenceConformance,
  persistenceHandle,
} from "../../tests/conformance/persistence_conformance.ts";
import { denoKvPersistence } from "./deno_kv.ts";
import type { LogEntry } from "./port.ts";

persistenceConformance("deno kv", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twinmill-kv-" });
  return {
    open: async () => persistenceHandle(await denoKvPersistence(`${dir}/state.kv`)),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
});

Deno.test("deno kv: inbound entries stored one per value by an earlier version are replayed and retired", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twinmill-kv-" });
  try {
    const path = `${dir}/state.kv`;
    const legacy = (seq: number, payload: string) =>
      new TextEncoder().encode(`{"t":"twins/d${seq}/telemetry","a":${1000 + seq}}\n${payload}`);
    {
      const kv = await Deno.openKv(path);
      await kv.atomic().set(["log", 1], legacy(1, '{"temp":1}')).set(["log", 2], legacy(2, "{}"))
        .set(["meta", "seq"], new Deno.KvU64(2n)).commit();
      kv.close();
    }
    {
      await using p = await denoKvPersistence(path);
      const seen: LogEntry[] = [];
      for await (const e of p.log.replay()) seen.push(e);
      assert.deepEqual(
        seen.map((e) => [e.seq, e.topic, e.at, new TextDecoder().decode(e.payload)]),
        [
          [1, "twins/d1/telemetry", 1001, '{"temp":1}'],
          [2, "twins/d2/telemetry", 1002, "{}"],
        ],
      );
      await p.log.append([{
        seq: 3,
        topic: "twins/d3/telemetry",
        payload: seen[0].payload,
        at: 1,
      }]);
      await p.log.retire([1, 3]);
    }
    await using q = await denoKvPersistence(path);
    const left: number[] = [];
    for await (const e of q.log.replay()) left.push(e.seq);
    assert.deepEqual(left, [2]);
    assert.equal(await q.log.lastSeq(), 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
