/**
 * Conformance cases every {@linkcode DocStores} adapter must pass (memory, Deno KV, JetStream
 * KV): get, list in key order, compare-and-set, create-only, delete, kinds kept apart.
 * @module
 */
import assert from "node:assert/strict";
import type { DocStores } from "../../src/persistence/doc_store.ts";

/** Register the cases for the stores `open` makes (fresh, empty storage per case). */
export function docStoreConformance(
  name: string,
  open: () => Promise<DocStores & { cleanup?(): Promise<void> }>,
): void {
  const run = (what: string, fn: (s: DocStores) => Promise<void>) =>
    Deno.test(`${name}: ${what}`, async () => {
      const stores = await open();
      try {
        await fn(stores);
      } finally {
        await stores[Symbol.asyncDispose]();
        await stores.cleanup?.();
      }
    });

  run("a document written is read back, listed in key order", async (s) => {
    const docs = await s.open<{ n: number }>("things");
    assert.equal(await docs.get("a"), null);
    for (const k of ["b", "a.b", "a", "line:3", "Z"]) assert.ok(await docs.put(k, { n: k.length }));
    assert.deepEqual((await docs.get("a.b"))?.value, { n: 3 });
    assert.deepEqual((await docs.list()).map((d) => d.key), ["Z", "a", "a.b", "b", "line:3"]);
  });

  run("compare-and-set refuses a stale version, create-only refuses an existing key", async (s) => {
    const docs = await s.open<{ n: number }>("things");
    assert.ok(await docs.put("k", { n: 1 }, null));
    assert.equal(await docs.put("k", { n: 2 }, null), false);
    const d = await docs.get("k");
    assert.ok(d);
    assert.ok(await docs.put("k", { n: 2 }, d.version));
    assert.equal(await docs.put("k", { n: 3 }, d.version), false, "stale version");
    assert.deepEqual((await docs.get("k"))?.value, { n: 2 });
    assert.ok(await docs.put("k", { n: 4 }), "unconditional");
    assert.deepEqual((await docs.get("k"))?.value, { n: 4 });
  });

  run("delete, and kinds do not see each other", async (s) => {
    const a = await s.open<string>("alpha");
    const b = await s.open<string>("beta");
    await a.put("x", "in alpha");
    assert.equal(await b.get("x"), null);
    assert.deepEqual(await b.list(), []);
    assert.equal(await a.delete("x"), true);
    assert.equal(await a.delete("x"), false);
    assert.equal(await a.get("x"), null);
    assert.deepEqual(await a.list(), []);
    assert.ok(await a.put("x", "again", null), "created again after delete");
  });
}
