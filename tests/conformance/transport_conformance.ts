/**
 * Conformance cases every transport adapter must pass (memory now; NATS in cluster mode).
 * @module
 */
import assert from "node:assert/strict";
import { type Transport, TransportError } from "../../src/transport/port.ts";
import { subjects } from "../../src/transport/subjects.ts";

/** Register the conformance tests for a transport adapter. */
export function transportConformance(name: string, open: () => Promise<Transport>): void {
  Deno.test(`${name}: publish reaches exact and wildcard subscribers, in order`, async () => {
    await using t = await open();
    const got: string[] = [];
    using _a = t.subscribe(subjects.event("telemetry", "a.b"), (m) => got.push(`exact:${m.data}`));
    using _b = t.subscribe(subjects.eventsOf("*", "a.b"), (m) => got.push(`star:${m.data}`));
    using _c = t.subscribe("tm.evt.>", (m) => got.push(`gt:${m.data}`));
    using _d = t.subscribe(subjects.eventsOf("*", "a"), (m) => got.push(`other:${m.data}`));
    t.publish(subjects.event("telemetry", "a.b"), 1);
    t.publish(subjects.event("state", "a.b"), 2);
    await waitUntil(() => got.length >= 5);
    assert.deepEqual(got.filter((g) => g.startsWith("exact")), ["exact:1"]);
    assert.deepEqual(got.filter((g) => g.startsWith("star")), ["star:1", "star:2"]);
    assert.deepEqual(got.filter((g) => g.startsWith("gt")), ["gt:1", "gt:2"]);
    assert.equal(got.filter((g) => g.startsWith("other")).length, 0); // "a.b" is one token
  });

  Deno.test(`${name}: unsubscribe stops delivery`, async () => {
    await using t = await open();
    let n = 0;
    const s = t.subscribe("x.y", () => n++);
    t.publish("x.y", 1);
    await waitUntil(() => n === 1);
    s.unsubscribe();
    t.publish("x.y", 2);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(n, 1);
  });

  Deno.test(`${name}: request/reply, no responders, timeout`, async () => {
    await using t = await open();
    using _s = t.subscribe("svc.echo", (m) => m.respond({ echo: m.data }));
    using _q = t.subscribe("svc.silent", () => {});
    assert.deepEqual(await t.request("svc.echo", { a: 1 }), { echo: { a: 1 } });
    await assert.rejects(
      t.request("svc.none", 1),
      (e) => e instanceof TransportError && e.code === "no_responders",
    );
    await assert.rejects(
      t.request("svc.silent", 1, { timeoutMs: 30 }),
      (e) => e instanceof TransportError && e.code === "timeout",
    );
  });

  Deno.test(`${name}: JSON payloads round-trip; dotted twin ids are one subject token`, async () => {
    await using t = await open();
    const id = "site-1.line:2.press_7";
    const payload = {
      temp: 21.5,
      ok: true,
      none: null,
      label: "Presse Nr. 7 — Überhitzung 🔥 温度",
      nested: { list: [1, "two", { three: [3] }, []], empty: {} },
    };
    const got: { subject: string; data: unknown }[] = [];
    using _a = t.subscribe(subjects.eventsOf("*", id), (m) => got.push(m));
    using _b = t.subscribe(subjects.eventsOf("*", "site-1"), (m) => got.push(m));
    using _c = t.subscribe("svc.echo", (m) => m.respond(m.data));
    t.publish(subjects.event("telemetry", id), payload);
    t.publish(subjects.event("state", id), [null, "x", 0]);
    t.publish(subjects.event("alarm", id), undefined);
    await waitUntil(() => got.length >= 3);
    assert.deepEqual(got.map((m) => [m.subject, m.data]), [
      [subjects.event("telemetry", id), payload],
      [subjects.event("state", id), [null, "x", 0]],
      [subjects.event("alarm", id), undefined],
    ]);
    assert.deepEqual(await t.request("svc.echo", payload), payload);
    assert.equal(await t.request("svc.echo", "ünïcödé ✓"), "ünïcödé ✓");
  });

  Deno.test(`${name}: gather collects every reply, ends early on until(), none is []`, async () => {
    await using t = await open();
    using _a = t.subscribe("svc.many.*", (m) => m.respond({ from: "a", q: m.data }));
    using _b = t.subscribe("svc.many.x", (m) => setTimeout(() => m.respond({ from: "b" }), 5));
    using _c = t.subscribe("svc.many.x", () => {}); // silent: never answers
    const all = await t.gather("svc.many.x", 7, { maxWaitMs: 300 }) as { from: string }[];
    assert.deepEqual(all.map((r) => r.from).sort(), ["a", "b"]);
    assert.deepEqual(all.find((r) => r.from === "a"), { from: "a", q: 7 });
    const started = Date.now();
    const first = await t.gather("svc.many.x", 1, {
      maxWaitMs: 5_000,
      until: (r) => (r as { from: string }).from === "b",
    }) as { from: string }[];
    assert.ok(Date.now() - started < 2_000, "until() ends the wait");
    assert.equal(first.at(-1)?.from, "b");
    assert.deepEqual(await t.gather("svc.nobody", 1, { maxWaitMs: 50 }), []);
  });

  Deno.test(`${name}: respond() on a plain publish is a no-op`, async () => {
    await using t = await open();
    let n = 0;
    using _s = t.subscribe("x.plain", (m) => {
      m.respond({ ignored: true });
      n++;
    });
    t.publish("x.plain", 1);
    await waitUntil(() => n === 1);
  });

  Deno.test(`${name}: after dispose, requests reject "closed"; publish is a no-op`, async () => {
    await using t = await open();
    await t[Symbol.asyncDispose]();
    await assert.rejects(
      t.request("svc.echo", 1),
      (e) => e instanceof TransportError && e.code === "closed",
    );
    t.publish("x.y", 1);
    t.subscribe("x.y", () => {}).unsubscribe();
  }); // the second dispose (by `await using`) must be harmless too
}

async function waitUntil(fn: () => boolean, ms = 2000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 1));
  }
}
