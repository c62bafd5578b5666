import assert from "node:assert/strict";
import type { Client } from "aedes";
import { Sessions } from "./sessions.ts";
import { fakeClient } from "./testing.ts";

const nobodyListens = { listens: () => false };

Deno.test("sessions: a client id held live by another twin is refused, the own twin id never", () => {
  const s = new Sessions();
  const clients: Record<string, Client> = {};
  clients.shared = fakeClient("shared", { clients }).client;
  assert.equal(s.admit(clients.shared, { twin: "p1", credential: "c1" }), true);
  const intruder = fakeClient("shared", { clients }).client;
  assert.equal(s.admit(intruder, { twin: "p2", credential: "c2" }), false);
  assert.equal(s.identity(intruder), undefined, "nothing recorded");
  const again = fakeClient("shared", { clients }).client;
  assert.equal(s.admit(again, { twin: "p1", credential: "c3" }), true, "the same twin takes over");
  clients.p3 = fakeClient("p3", { clients }).client;
  s.admit(clients.p3, { twin: "p9", credential: "c9" });
  const own = fakeClient("p3", { clients }).client;
  assert.equal(s.admit(own, { twin: "p3", credential: "c4" }), true, "its own twin id");
});

Deno.test("sessions: a stored persistent session belongs to its twin while it is offline", () => {
  const s = new Sessions();
  assert.equal(
    s.admit(fakeClient("gw", { clean: false }).client, { twin: "p1", credential: "c" }),
    true,
  );
  // p1 is offline now (not in the broker's table): its session is still its own
  assert.equal(s.admit(fakeClient("gw").client, { twin: "p2", credential: "c" }), false);
  assert.equal(s.admit(fakeClient("gw").client, { twin: "p1", credential: "c" }), true);
  // the owner connecting clean with its own twin id forgets a session stored under it
  assert.equal(
    s.admit(fakeClient("p5", { clean: false }).client, { twin: "p5", credential: "c" }),
    true,
  );
  assert.equal(s.admit(fakeClient("p5").client, { twin: "p5", credential: "c" }), true);
  assert.equal(s.admit(fakeClient("p5").client, { twin: "p6", credential: "c" }), true);
});

Deno.test("sessions: each twin's latest session, ended with its connection", () => {
  const s = new Sessions();
  const gw = fakeClient("gw").client;
  s.connected(gw);
  assert.equal(s.devices, 0, "a client without identity speaks for nobody yet");
  s.seen(gw, "p1");
  s.seen(gw, "p2");
  assert.equal(s.devices, 2);
  const info = s.connection("p1", { listens: (twin, c) => twin === "p1" && c === gw });
  assert.equal(info?.clientId, "gw");
  assert.equal(info?.protocol, "mqtt 3.1.1");
  assert.equal(info?.commands, true);
  const dev = fakeClient("p2").client;
  assert.equal(s.admit(dev, { twin: "p2", credential: "c" }), true);
  s.connected(dev);
  assert.equal(s.connection("p2", nobodyListens)?.clientId, "p2", "the latest session");
  s.disconnected(gw);
  assert.equal(s.connection("p1", nobodyListens), null);
  assert.equal(s.connection("p2", nobodyListens)?.clientId, "p2", "not the gateway's to end");
  assert.equal(s.devices, 1);
  assert.equal(s.live.size, 1);
});

Deno.test("sessions: drop closes the identified connections that match", () => {
  const s = new Sessions();
  const a = fakeClient("a");
  const b = fakeClient("b");
  const anon = fakeClient("anon");
  s.admit(a.client, { twin: "p1", credential: "c1" });
  s.admit(b.client, { twin: "p1", credential: "cert:0a" });
  for (const f of [a, b, anon]) s.connected(f.client);
  assert.equal(s.drop((me) => me.credential === "c1"), 1);
  assert.deepEqual([a.closed, b.closed, anon.closed], [true, false, false]);
});
