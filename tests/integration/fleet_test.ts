/**
 * `GET /v1/fleet` on one node, as a user: devices publish with `mosquitto_pub`, an alarm is
 * raised, acknowledged and cleared, a twin moves to another site, and the counts follow each
 * change exactly; after a restart the stored twins are counted again; a site-scoped key sees
 * its site only.
 */
import assert from "node:assert/strict";
import {
  getJson,
  json,
  type NodeProcess,
  publishQos1,
  startNode,
  waitFor,
} from "../harness/mod.ts";

async function pub(node: NodeProcess, topic: string, body: unknown) {
  const r = await publishQos1(node, topic, typeof body === "string" ? body : JSON.stringify(body));
  assert.equal(r.code, 0, r.stderr);
}

const auth = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });
const ADMIN = "admin-key-0123456789";
/** A JSON request as the admin. */
const asAdmin = (method: string, body: unknown): RequestInit => {
  const init = json(method, body);
  return {
    ...init,
    headers: { ...init.headers as Record<string, string>, ...auth(ADMIN).headers },
  };
};

/** The fleet, once `ok` holds for it. */
async function fleetWhen(
  node: NodeProcess,
  ok: (f: Fleet) => boolean,
  message: string,
  init: RequestInit = auth("admin-key-0123456789"),
): Promise<Fleet> {
  let last: Fleet | undefined;
  await waitFor(async () => {
    const r = await getJson(`${node.httpUrl}/v1/fleet`, init);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    last = r.body;
    if (!ok(last!)) throw new Error(JSON.stringify(last));
    return true;
  }, { message });
  return last!;
}

interface Counts {
  twins: number;
  connectivity: { online: number; offline: number; unknown: number };
  alarms: { active: Record<string, number>; acknowledged: Record<string, number> };
  messagesPerSecond: number;
}
interface Fleet {
  complete: boolean;
  asOf: string;
  nodes: { expected: number; answered: number; missing: string[] };
  totals: Counts;
  sites: Array<Counts & { site: string | null; lines: Array<Counts & { line: string | null }> }>;
  other: Counts | null;
}

const site = (f: Fleet, s: string | null) => f.sites.find((x) => x.site === s);

Deno.test("fleet: exact counts by connectivity, alarms, site and line; restart; site scope", async () => {
  let node = await startNode({
    TWINMILL_API_KEYS: "admin-key-0123456789:admin,east-key-0123456789:viewer:east",
  });
  try {
    const profile = {
      rules: [{
        id: "hot",
        kind: "threshold",
        field: "temp",
        op: ">",
        value: 80,
        clear: 75,
        severity: "critical",
      }],
    };
    let r = await getJson(`${node.httpUrl}/v1/profiles/oven`, asAdmin("PUT", profile));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const twins = [
      ["oven-1", { site: "east", line: "l1", type: "oven" }],
      ["oven-2", { site: "east", line: "l2", type: "oven" }],
      ["oven-3", { site: "west", type: "oven" }],
      ["loose", {}],
    ] as const;
    for (const [id, attributes] of twins) {
      r = await getJson(`${node.httpUrl}/v1/twins/${id}`, asAdmin("PUT", { attributes }));
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    await pub(node, "twins/oven-1/status", "online");
    await pub(node, "twins/oven-2/status", "offline");
    await pub(node, "twins/oven-3/telemetry", { temp: 95 });
    for (let i = 0; i < 5; i++) await pub(node, "twins/oven-1/telemetry", { temp: 20 + i });

    let f = await fleetWhen(
      node,
      (f) => f.totals.alarms.active.critical === 1 && f.totals.connectivity.online === 1,
      "one online, one alarm",
    );
    assert.equal(f.complete, true);
    assert.deepEqual(f.nodes, { expected: 1, answered: 1, missing: [] });
    assert.equal(f.totals.twins, 4);
    assert.deepEqual(f.totals.connectivity, { online: 1, offline: 1, unknown: 2 });
    assert.deepEqual(site(f, "east")!.connectivity, { online: 1, offline: 1, unknown: 0 });
    assert.deepEqual(
      site(f, "east")!.lines.map((l) => [l.line, l.twins]).sort(),
      [["l1", 1], ["l2", 1]],
    );
    assert.equal(site(f, "west")!.alarms.active.critical, 1);
    assert.deepEqual(site(f, "west")!.lines.map((l) => l.line), [null]);
    assert.equal(site(f, null)!.twins, 1);
    assert.equal(f.other, null);
    // 6 device messages (status and telemetry) within the last 10 s: a rate above zero
    f = await fleetWhen(node, (f) => f.totals.messagesPerSecond > 0, "a message rate");
    assert.ok(f.totals.messagesPerSecond <= 0.8, `rate ${f.totals.messagesPerSecond}`);

    // acknowledged, then cleared
    r = await getJson(`${node.httpUrl}/v1/alarms/oven-3:hot:1/ack`, asAdmin("POST", {}));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    f = await fleetWhen(node, (f) => f.totals.alarms.acknowledged.critical === 1, "acknowledged");
    assert.equal(f.totals.alarms.active.critical, 0);
    await pub(node, "twins/oven-3/telemetry", { temp: 60 });
    f = await fleetWhen(node, (f) => f.totals.alarms.acknowledged.critical === 0, "cleared");
    assert.equal(f.totals.alarms.active.critical, 0);

    // a twin moves from east to west (twins are never deleted: a move takes it out of a group)
    r = await getJson(
      `${node.httpUrl}/v1/twins/oven-2`,
      asAdmin("PUT", { attributes: { site: "west", type: "oven" } }),
    );
    assert.equal(r.status, 200);
    f = await fleetWhen(node, (f) => site(f, "west")?.twins === 2, "oven-2 in west");
    assert.equal(site(f, "east")!.twins, 1);
    assert.deepEqual(site(f, "east")!.lines.map((l) => l.line), ["l1"]);
    assert.equal(f.totals.twins, 4);

    // site scope: the east viewer sees east only, totals included
    f = await fleetWhen(node, () => true, "scoped", auth("east-key-0123456789"));
    assert.deepEqual(f.sites.map((s) => s.site), ["east"]);
    assert.equal(f.totals.twins, 1);
    assert.equal(f.other, null);

    // after a restart the stored twins are counted again (none is in memory)
    node = await node.restart();
    f = await fleetWhen(node, (f) => f.complete && f.totals.twins === 4, "counted after restart");
    assert.deepEqual(f.totals.connectivity, { online: 1, offline: 1, unknown: 2 });
    assert.equal(site(f, "west")!.twins, 2);
  } finally {
    await node[Symbol.asyncDispose]();
  }
});
