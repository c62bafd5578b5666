/**
 * Alarm points are points like any other: an alarm transition that a device message caused
 * reaches measurement `alarms` once, even when the node is killed (`kill -9`) after the twin's
 * new state was stored but before InfluxDB took the point (InfluxDB down meanwhile); the
 * restarted node writes it from the replayed message.
 */
import assert from "node:assert/strict";
import {
  connectDevice,
  getJson,
  type InfluxServer,
  json,
  metric,
  startInfluxd,
  startNode,
  waitFor,
  waitForInfluxCount,
} from "../harness/mod.ts";

const PROFILE = {
  rules: [{
    id: "overheat",
    kind: "threshold",
    field: "temp",
    op: ">",
    value: 80,
    clear: 75,
    severity: "critical",
  }],
};

/** The `alarms` points of `device`: `[time, state, raiseCount]` rows. */
async function alarmRows(influx: InfluxServer, db: string, device: string) {
  const r = await influx.query(
    `SELECT "state", "raiseCount" FROM "alarms" WHERE "device" = '${device}'`,
    db,
  );
  return (r?.results?.[0]?.series?.[0]?.values ?? []) as unknown[][];
}

Deno.test("alarms: a transition stored but not yet written when the node is killed reaches InfluxDB after the restart, once", async () => {
  await using influx = await startInfluxd();
  const db = "alarmcrash";
  const env = { INFLUX_URL: influx.url, INFLUX_API: "v1", INFLUX_DB: db };
  await using first = await startNode(env);
  const id = "press-alarm-crash";
  assert.equal(
    (await getJson(`${first.httpUrl}/v1/profiles/press`, json("PUT", PROFILE))).status,
    201,
  );
  const put = await getJson(
    `${first.httpUrl}/v1/twins/${id}`,
    json("PUT", { attributes: { type: "press" } }),
  );
  assert.equal(put.status, 201, JSON.stringify(put.body));
  {
    // the database exists before InfluxDB goes away
    await using dev = await connectDevice(first, "dev-alarm-crash");
    await dev.publish(`twins/${id}/telemetry`, { temp: 20 });
    await waitForInfluxCount(influx, db, id, 1);

    await influx.stop();
    const snapshots = await metric(first, "twinmill_snapshots_written_total");
    await dev.publish(`twins/${id}/telemetry`, { temp: 91 }); // raises overheat
    await waitFor(async () => {
      const a = await getJson(`${first.httpUrl}/v1/alarms?state=active&twin=${id}`);
      return a.body.items?.length === 1;
    }, { message: "overheat active" });
    // the twin's state with its alarm is stored; its points are not written
    await waitFor(
      async () => (await metric(first, "twinmill_snapshots_written_total")) > snapshots,
      {
        message: "the raising message's snapshot is stored",
      },
    );
    assert.ok((await metric(first, "twinmill_inbound_log_pending")) > 0, "points are unretired");
  }
  assert.equal(await first.kill("SIGKILL"), 137);

  await using second = await first.restart();
  await second.waitForLog((r) => r.msg === "replayed unretired inbound messages");
  await influx.start();
  await waitForInfluxCount(influx, db, id, 2);
  await waitFor(async () => (await metric(second, "twinmill_inbound_log_pending")) === 0, {
    message: "the replayed messages are retired",
  });
  const rows = await waitFor(async () => {
    const rows = await alarmRows(influx, db, id);
    return rows.length > 0 ? rows : null;
  }, { message: "the overheat transition in measurement alarms" });
  assert.deepEqual(rows!.map((r) => [r[1], r[2]]), [["active", 1]], "one raise point");
  const twin = (await getJson(`${second.httpUrl}/v1/twins/${id}`)).body;
  assert.equal(twin.version, 3, "PUT and two messages, each applied once");
});
