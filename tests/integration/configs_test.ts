/**
 * Remote configuration end to end, as a user: provision 110 twins over HTTP, PUT a config
 * template that selects 100 of them, read their desired state (and the retained
 * `twins/{id}/desired` a device receives with `mosquitto_sub`), let devices report with
 * `mosquitto_pub` — most apply it, one fails, one disagrees — and count them in the status;
 * a twin provisioned later gets the template; a changed template bumps its version.
 */
import assert from "node:assert/strict";
import {
  findBinary,
  getJson,
  type NodeProcess,
  publishQos1,
  startNode,
  waitFor,
} from "../harness/mod.ts";

const req = (method: string, body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method,
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

/** Publish a device's reported state with the real `mosquitto_pub` (QoS 1). */
async function report(node: NodeProcess, id: string, body: unknown) {
  const r = await publishQos1(node, `twins/${id}/reported`, JSON.stringify(body), [
    "-i",
    id,
  ]);
  assert.equal(r.code, 0, r.stderr);
}

/** Runs `fn` over `items`, `n` at a time. */
async function each<T>(items: T[], n: number, fn: (t: T) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

const pressId = (i: number) => `press-${String(i).padStart(3, "0")}`;
const FRAGMENT = { sampleRate: 5, limits: { temp: 80, rpm: 1200 }, legacyMode: null };
/** What a device that applied FRAGMENT reports. */
const APPLIED = { sampleRate: 5, limits: { temp: 80, rpm: 1200 } };
const marker = (version: number) => ({ configStatus: { "plant1-press": { version } } });

Deno.test("configs: a template reaching 100 twins, devices reporting over MQTT, status counting them", async (t) => {
  await using node = await startNode();
  const api = `${node.httpUrl}/v1`;
  const status = async () => {
    const r = await getJson(`${api}/configs/plant1-press/status`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body;
  };
  const twin = async (id: string) => {
    const r = await getJson(`${api}/twins/${id}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body;
  };

  const targeted = Array.from({ length: 100 }, (_, i) => pressId(i));
  const others = [
    ...Array.from({ length: 5 }, (_, i) => [`robot-${i}`, { type: "robot", site: "plant-1" }]),
    ...Array.from({ length: 5 }, (_, i) => [`press-b${i}`, { type: "press", site: "plant-2" }]),
  ] as Array<[string, Record<string, string>]>;
  await t.step("provision 110 twins", async () => {
    const all: Array<[string, Record<string, string>]> = [
      ...targeted.map((id, i) =>
        [id, { type: "press", site: "plant-1", line: String(i % 4) }] as [
          string,
          Record<string, string>,
        ]
      ),
      ...others,
    ];
    await each(all, 8, async ([id, attributes]) => {
      const r = await getJson(`${api}/twins/${id}`, req("PUT", { attributes }));
      assert.equal(r.status, 201, JSON.stringify(r.body));
    });
  });

  await t.step("bad input is refused with a clear code", async () => {
    const cases: Array<[string, unknown, number, string, RegExp]> = [
      [
        "bad name!",
        { selector: { type: "press" }, desired: { a: 1 } },
        400,
        "bad_config_name",
        /name/,
      ],
      ["c", { selector: {}, desired: { a: 1 } }, 400, "config_invalid", /selector/],
      ["c", { selector: { line: 3 }, desired: { a: 1 } }, 400, "config_invalid", /selector\.line/],
      ["c", { selector: { type: "press" }, desired: [1] }, 400, "config_invalid", /desired/],
      ["c", { selector: { type: "press" } }, 400, "config_invalid", /desired/],
      [
        "c",
        { selector: { type: "press" }, desired: { configStatus: 1 } },
        400,
        "config_invalid",
        /reserved/,
      ],
      [
        "c",
        // four 20,000-character strings: each within the JSON intake's string limit, together
        // over the config fragment limit
        {
          selector: { a: "b" },
          desired: Object.fromEntries([1, 2, 3, 4].map((i) => [`x${i}`, "y".repeat(20_000)])),
        },
        413,
        "config_too_large",
        /65536/,
      ],
    ];
    for (const [name, body, code, errCode, re] of cases) {
      const r = await getJson(`${api}/configs/${encodeURIComponent(name)}`, req("PUT", body));
      assert.equal(r.status, code, JSON.stringify(r.body));
      assert.equal(r.body.error.code, errCode);
      assert.match(r.body.error.message, re);
    }
    const missing = await getJson(`${api}/configs/nope/status`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, "config_not_found");
    const list = await getJson(`${api}/configs`);
    assert.deepEqual(list.body.items, [], "nothing was stored");
  });

  await t.step(
    "PUT the template: the 100 selected twins get the fragment, the others not",
    async () => {
      const r = await getJson(
        `${api}/configs/plant1-press`,
        req("PUT", { selector: { type: "press", site: "plant-1" }, desired: FRAGMENT }),
      );
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.config.version, 1);
      assert.deepEqual(r.body.config.desired, FRAGMENT);
      assert.deepEqual(r.body.applied, { twins: 100, changed: 100, failed: 0, errors: [] });
      const page = await getJson(`${api}/twins?type=press&site=plant-1&limit=1000`);
      assert.equal(page.body.items.length, 100);
      for (const tw of page.body.items) {
        assert.deepEqual(tw.desired, { ...APPLIED, ...marker(1) }, tw.id);
        assert.equal(tw.version, 2, tw.id);
      }
      for (const [id] of others) {
        const tw = await twin(id);
        assert.deepEqual(tw.desired, {}, id);
        assert.equal(tw.version, 1, id);
      }
      const s = await status();
      assert.deepEqual(
        [s.version, s.targeted, s.applied, s.pending, s.failed],
        [1, 100, 0, 100, 0],
      );
    },
  );

  await t.step("the retained desired state a device subscribes to holds the fragment", async () => {
    const out = await new Deno.Command(findBinary("mosquitto_sub", "mosquitto-clients"), {
      args: ["-p", String(node.mqttPort), "-t", "twins/press-007/desired", "-C", "1", "-W", "10"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const got = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.deepEqual(got, { ...APPLIED, ...marker(1) });
  });

  await t.step(
    "devices report: 70 applied, one failed, one with a key it should drop",
    async () => {
      const ack = { configStatus: { "plant1-press": { version: 1, state: "applied" } } };
      await each(targeted.slice(0, 70), 8, (id) => report(node, id, { ...APPLIED, ...ack }));
      await report(node, "press-070", {
        configStatus: {
          "plant1-press": { version: 1, state: "failed", error: "rpm limit above motor rating" },
        },
      });
      await report(node, "press-071", { ...APPLIED, legacyMode: true });
      const s = await waitFor(async () => {
        const s = await status();
        return s.applied === 70 && s.failed === 1 ? s : null;
      }, { message: "70 applied and 1 failed counted" });
      assert.equal(s.targeted, 100);
      assert.equal(s.pending, 29);
      assert.deepEqual(s.sample.failed, [{
        id: "press-070",
        error: "rpm limit above motor rating",
      }]);
      assert.equal(s.sample.pending.length, 20);
      assert.ok(s.sample.pending.includes("press-071"), "legacyMode must be absent to count");
      assert.ok(!s.sample.pending.includes("press-000"));
      // an acknowledging device leaves no delta
      assert.deepEqual((await twin("press-000")).delta, {});
    },
  );

  await t.step("a twin provisioned after the template gets it", async () => {
    const r = await getJson(
      `${api}/twins/press-100`,
      req("PUT", { attributes: { type: "press", site: "plant-1", line: "9" } }),
    );
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual((await twin("press-100")).desired, { ...APPLIED, ...marker(1) });
    const s = await status();
    assert.deepEqual([s.targeted, s.applied, s.pending, s.failed], [101, 70, 30, 1]);
    // a twin provisioned outside the selector does not
    await getJson(`${api}/twins/robot-9`, req("PUT", { attributes: { type: "robot" } }));
    assert.deepEqual((await twin("robot-9")).desired, {});
  });

  await t.step("a changed template gets version 2 and is pending again everywhere", async () => {
    const stale = await getJson(
      `${api}/configs/plant1-press`,
      req("PUT", { selector: { type: "press", site: "plant-1" }, desired: { sampleRate: 2 } }, {
        "if-match": "2",
      }),
    );
    assert.equal(stale.status, 412);
    assert.equal(stale.body.error.code, "version_conflict");
    const next = { ...FRAGMENT, sampleRate: 10 };
    const r = await getJson(
      `${api}/configs/plant1-press`,
      req("PUT", { selector: { type: "press", site: "plant-1" }, desired: next }, {
        "if-match": "1",
      }),
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.config.version, 2);
    assert.deepEqual(r.body.applied, { twins: 101, changed: 101, failed: 0, errors: [] });
    assert.deepEqual((await twin("press-042")).desired, {
      ...APPLIED,
      sampleRate: 10,
      ...marker(2),
    });
    // the failure was about version 1: nobody has failed version 2 (yet)
    let s = await status();
    assert.deepEqual([s.version, s.targeted, s.applied, s.pending, s.failed], [2, 101, 0, 101, 0]);
    await report(node, "press-001", { sampleRate: 10 });
    s = await waitFor(async () => {
      const s = await status();
      return s.applied === 1 ? s : null;
    }, { message: "the device that applied version 2 counted" });
    assert.equal(s.pending, 100);
    // the same PUT again changes nothing
    const same = await getJson(
      `${api}/configs/plant1-press`,
      req("PUT", { selector: { type: "press", site: "plant-1" }, desired: next }),
    );
    assert.equal(same.body.config.version, 2);
    assert.equal(same.body.applied.changed, 0);
  });

  await t.step("list, read, delete; deleting leaves desired states as they are", async () => {
    const list = await getJson(`${api}/configs`);
    assert.deepEqual(list.body.items.map((c: { name: string }) => c.name), ["plant1-press"]);
    const one = await getJson(`${api}/configs/plant1-press`);
    assert.equal(one.body.version, 2);
    assert.match(one.body.updatedAt, /^\d{4}-\d\d-\d\dT/);
    const del = await fetch(`${api}/configs/plant1-press`, { method: "DELETE" });
    assert.equal(del.status, 204);
    assert.equal((await getJson(`${api}/configs/plant1-press`)).status, 404);
    assert.equal((await twin("press-042")).desired.sampleRate, 10);
    const again = await getJson(`${api}/configs/plant1-press`, { method: "DELETE" });
    assert.equal(again.body.error.code, "config_not_found");
  });

  await t.step("the OpenAPI document describes the routes", async () => {
    const doc = (await getJson(`${node.httpUrl}/openapi.json`)).body;
    assert.ok(doc.paths["/v1/configs/{name}"].put);
    assert.ok(doc.paths["/v1/configs/{name}/status"].get);
  });
});
