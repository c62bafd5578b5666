/**
 * Bulk provisioning against a real node: a CSV of 1000 rows with a few bad ones, an NDJSON
 * file, a streamed per-row report with exact counts, tokens that work for MQTT, twins with
 * their attributes; an oversized body, a wrong content type and a non-admin are refused.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { getJson, type NodeProcess, startNode } from "../harness/mod.ts";

const ADMIN = "admin-key-0123456789abcdef";
const VIEWER = "viewer-key-0123456789abcdef";
const auth = { authorization: `Bearer ${ADMIN}` };

// deno-lint-ignore no-explicit-any
type Line = any;

async function bulk(
  node: NodeProcess,
  body: string,
  type: string,
  query = "",
): Promise<{ status: number; lines: Line[]; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${node.httpUrl}/v1/twins:bulk${query}`, {
    method: "POST",
    headers: { ...auth, "content-type": type },
    body,
  });
  const text = await res.text();
  const lines = text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
  return { status: res.status, lines, ms: performance.now() - t0 };
}

const results = (lines: Line[]) => lines.filter((l) => "status" in l);
const summaryOf = (lines: Line[]) => lines.at(-1).summary;

/**
 * A raw HTTP/1.1 request that announces a body it never sends (as curl does with a large file
 * before the server answers); what came back before the server closed or 5 s passed.
 */
async function announceBody(node: NodeProcess, bytes: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: node.httpPort });
  const timer = setTimeout(() => conn.close(), 5000);
  let text = "";
  try {
    await conn.write(new TextEncoder().encode(
      `POST /v1/twins:bulk HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${ADMIN}\r\n` +
        `content-type: text/csv\r\ncontent-length: ${bytes}\r\nconnection: close\r\n\r\nid\n`,
    ));
    const buf = new Uint8Array(4096);
    while (!/"code":"\w+"/.test(text)) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
}

Deno.test("bulk provisioning: CSV and NDJSON, per-row report, exact counts, limits", async (t) => {
  await using node = await startNode({
    TWINMILL_MQTT_AUTH: "on",
    TWINMILL_API_KEYS: `${ADMIN}:admin,${VIEWER}:viewer`,
  });
  const tokens: string[] = [];

  await t.step("CSV: 1000 rows, 5 bad, one existing twin updated", async () => {
    const pre = await getJson(`${node.httpUrl}/v1/twins/dev-0007`, {
      method: "PUT",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ attributes: { site: "old" } }),
    });
    assert.equal(pre.status, 201);
    const rows = ["id,type,site,line,note"];
    const bad = new Map<number, string>(); // line number -> expected code
    for (let i = 0; i < 1000; i++) {
      const id = `dev-${String(i).padStart(4, "0")}`;
      const line = rows.length + 1;
      if (i === 10) (rows.push("bad id!,press,plant-b,1,"), bad.set(line, "bad_twin_id"));
      else if (i === 200) (rows.push(`${id},press,plant-b`), bad.set(line, "bad_row"));
      else if (i === 400) {
        rows.push(`${id},press,plant-b,1,${"x".repeat(2000)}`);
        bad.set(line, "bad_attributes");
      } else if (i === 600) (rows.push(`,press,plant-b,1,`), bad.set(line, "bad_twin_id"));
      else if (i === 800) (rows.push(`${id},a,b,c,d,e`), bad.set(line, "bad_row"));
      else rows.push(`${id},press,plant-b,${i % 4},"note, with ""quotes"""`);
    }
    const r = await bulk(
      node,
      rows.join("\r\n") + "\r\n",
      "text/csv",
      "?credentials=true&progress=250",
    );
    assert.equal(r.status, 200);
    console.log(`bulk CSV: 1000 rows in ${Math.round(r.ms)} ms (with tokens)`);
    const res = results(r.lines);
    assert.equal(res.length, 1000);
    assert.deepEqual(res.map((x: Line) => x.row), Array.from({ length: 1000 }, (_, i) => i + 2));
    for (const x of res) {
      if (bad.has(x.row)) {
        assert.equal(x.status, "failed", JSON.stringify(x));
        assert.equal(x.error.code, bad.get(x.row), JSON.stringify(x));
      } else if (x.id === "dev-0007") {
        assert.equal(x.status, "updated");
        assert.equal(x.token, undefined, "no new token for an existing twin");
      } else {
        assert.equal(x.status, "created", JSON.stringify(x));
        assert.ok(typeof x.token === "string" && x.token.length >= 40);
        tokens.push(x.token);
      }
    }
    assert.equal(r.lines.filter((l) => "progress" in l).length, 4);
    const s = summaryOf(r.lines);
    assert.deepEqual(
      [s.rows, s.created, s.updated, s.failed, s.complete],
      [1000, 994, 1, 5, true],
    );

    const tw = (await getJson(`${node.httpUrl}/v1/twins/dev-0005`, { headers: auth })).body;
    assert.deepEqual(tw.attributes, {
      type: "press",
      site: "plant-b",
      line: "1",
      note: 'note, with "quotes"',
    });
    const old = (await getJson(`${node.httpUrl}/v1/twins/dev-0007`, { headers: auth })).body;
    assert.equal(old.attributes.site, "plant-b");
    assert.equal(
      (await getJson(`${node.httpUrl}/v1/twins/dev-0200`, { headers: auth })).status,
      404,
    );
    let n = 0;
    let cursor = "";
    do {
      const page = await getJson(
        `${node.httpUrl}/v1/twins?site=plant-b&limit=1000${cursor ? `&cursor=${cursor}` : ""}`,
        { headers: auth },
      );
      n += page.body.items.length;
      cursor = page.body.cursor ?? "";
    } while (cursor);
    assert.equal(n, 995);

    // a token of the report works: the device connects as itself
    const created = res.find((x: Line) => x.id === "dev-0042");
    const dev = await mqtt.connectAsync(node.mqttUrl!, {
      username: "dev-0042",
      password: created.token,
      reconnectPeriod: 0,
    });
    await dev.endAsync(true);
  });

  await t.step("NDJSON: typed attributes, bad lines reported", async () => {
    const lines = [];
    for (let i = 0; i < 200; i++) {
      lines.push(JSON.stringify({ id: `nd-${i}`, attributes: { site: "plant-c", slot: i } }));
    }
    lines[50] = "{not json";
    lines[150] = JSON.stringify({ id: "nd-150", site: "plant-c" });
    const r = await bulk(node, lines.join("\n"), "application/x-ndjson");
    assert.equal(r.status, 200);
    const s = summaryOf(r.lines);
    assert.deepEqual([s.rows, s.created, s.updated, s.failed], [200, 198, 0, 2]);
    const failed = results(r.lines).filter((x: Line) => x.status === "failed");
    assert.deepEqual(failed.map((x: Line) => [x.row, x.error.code]), [[51, "bad_row"], [
      151,
      "bad_row",
    ]]);
    assert.ok(results(r.lines).every((x: Line) => x.token === undefined), "no tokens unasked");
    const tw = (await getJson(`${node.httpUrl}/v1/twins/nd-7`, { headers: auth })).body;
    assert.deepEqual(tw.attributes, { site: "plant-c", slot: 7 });
  });

  await t.step("refused: oversized body (413), bad header, wrong type, a viewer", async () => {
    const head = await announceBody(node, 100 * 1024 * 1024);
    assert.match(head, /^HTTP\/1\.1 413/);
    assert.match(head, /"code":"payload_too_large"/);
    const noId = await bulk(node, "name,site\nx,y\n", "text/csv");
    assert.equal(noId.status, 400);
    assert.equal(noId.lines[0].error.code, "bad_csv_header");
    const json = await bulk(node, "[]", "application/json");
    assert.equal(json.status, 415);
    assert.equal(json.lines[0].error.code, "unsupported_media_type");
    const viewer = await fetch(`${node.httpUrl}/v1/twins:bulk`, {
      method: "POST",
      headers: { authorization: `Bearer ${VIEWER}`, "content-type": "text/csv" },
      body: "id\nv-1\n",
    });
    assert.equal(viewer.status, 403);
    await viewer.body?.cancel();
    assert.equal((await getJson(`${node.httpUrl}/v1/twins/v-1`, { headers: auth })).status, 404);
  });

  await t.step("documented, audited, no token logged", async () => {
    const doc = await getJson(`${node.httpUrl}/openapi.json`);
    for (const p of ["/v1/twins:bulk", "/v1/provision", "/v1/provisioning-keys/{id}"]) {
      assert.ok(p in doc.body.paths, `${p} in /openapi.json`);
    }
    const audit = await getJson(`${node.httpUrl}/v1/audit?action=twin.bulk`, { headers: auth });
    // deno-lint-ignore no-explicit-any
    const counts = audit.body.items.map((e: any) => [e.detail.format, e.detail.created]).sort();
    assert.deepEqual(counts, [["csv", 994], ["ndjson", 198]]);
    assert.ok(
      node.logs.some((l) =>
        l.includes('"bulk provisioning finished"') && l.includes('"rows":1000')
      ),
    );
    for (const tok of tokens.slice(0, 50)) {
      assert.ok(!node.logs.some((l) => l.includes(tok)), "a token in the log");
    }
  });
});
