import assert from "node:assert/strict";
import { Acl, deviceMayPublish, deviceMaySubscribe } from "./acl.ts";
import { Sessions } from "./sessions.ts";
import { fakeClient } from "./testing.ts";

Deno.test("acl: a device may subscribe to its own desired state and commands only", () => {
  for (const f of ["twins/p1/desired", "twins/p1/commands/+", "twins/p1/commands/c-9"]) {
    assert.equal(deviceMaySubscribe("p1", f), true, f);
  }
  for (
    const f of [
      "twins/p1/#",
      "twins/p1/commands/#",
      "twins/p1/telemetry",
      "twins/p2/desired",
      "twins/+/desired",
      "twins/p1/commands/c/x",
      "#",
    ]
  ) {
    assert.equal(deviceMaySubscribe("p1", f), false, f);
  }
});

Deno.test("acl: a device may publish its own twin's device topics only", () => {
  const me = { twin: "p1", credential: "c1" };
  for (const kind of ["telemetry", "reported", "status", "command_result"]) {
    assert.equal(deviceMayPublish(me, "p1", kind), true, kind);
  }
  assert.equal(deviceMayPublish(me, "p2", "telemetry"), false, "another twin");
  assert.equal(deviceMayPublish(me, "p1", "desired"), false, "not a device topic");
  assert.equal(deviceMayPublish(undefined, "p1", "telemetry"), false, "no identity");
});

Deno.test("acl: without device auth a client hears anything but the diverted rejects", () => {
  const acl = new Acl(false, new Sessions());
  const { client } = fakeClient("any");
  assert.equal(acl.restricted(client), false);
  assert.equal(acl.restricted(null), false);
  assert.equal(acl.mayReceive(client, "twins/p1/commands/+"), true);
  assert.equal(acl.mayReceive(client, "#"), true);
  assert.equal(acl.mayReceive(client, "$SYS/#"), false);
  assert.equal(acl.who(client), "any");
});

Deno.test("acl: an identified client (auth on, or mTLS with auth off) hears its own twin", () => {
  for (const auth of [true, false]) {
    const sessions = new Sessions();
    const acl = new Acl(auth, sessions);
    const { client } = fakeClient("p1-client");
    assert.equal(sessions.admit(client, { twin: "p1", credential: "c1" }), true);
    assert.equal(acl.restricted(client), true);
    assert.equal(acl.mayReceive(client, "twins/p1/commands/c-1"), true);
    assert.equal(acl.mayReceive(client, "twins/p2/commands/c-1"), false);
    assert.equal(acl.mayReceive(client, "#"), false);
    assert.equal(acl.who(client), "p1");
  }
  const acl = new Acl(true, new Sessions());
  const { client } = fakeClient("nobody");
  assert.equal(acl.restricted(null), true, "with auth on, every client is restricted");
  assert.equal(acl.mayReceive(client, "twins/p1/desired"), false, "no identity: nothing");
});

Deno.test("acl: a provisioning client hears only its own response topic", () => {
  const sessions = new Sessions();
  const acl = new Acl(false, sessions);
  const { client } = fakeClient("dev-7");
  sessions.admitProvisioner(client, "pk_secret");
  assert.equal(acl.mayReceive(client, "provision/dev-7/response"), true);
  assert.equal(acl.mayReceive(client, "provision/dev-8/response"), false);
  assert.equal(acl.mayReceive(client, "provision/+/response"), false);
  assert.equal(acl.mayReceive(client, "twins/p1/desired"), false);
  assert.equal(acl.who(client), "$provision");
});
