import assert from "node:assert/strict";
import { Api, ApiError, pool } from "./http.ts";

Deno.test("pool: at most N at a time, results in order, the first error after the rest settle", async () => {
  let running = 0, most = 0;
  const out = await pool([5, 1, 4, 2, 3, 0], 2, async (x) => {
    most = Math.max(most, ++running);
    for (let turn = 0; turn < x; turn++) await Promise.resolve(); // x turns of work
    running--;
    return x * 10;
  });
  assert.deepEqual(out, [50, 10, 40, 20, 30, 0]);
  assert.equal(most, 2);
  await assert.rejects(
    pool([1, 2, 3], 2, (x) => x === 2 ? Promise.reject(new Error("two")) : Promise.resolve(x)),
    /two/,
  );
});

Deno.test("api: retries 429 and 503, sends the bearer key, names the request in errors", async () => {
  const seen: string[] = [];
  let calls = 0;
  await using server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    seen.push(`${req.method} ${new URL(req.url).pathname} ${req.headers.get("authorization")}`);
    calls++;
    if (calls === 1) return new Response("{}", { status: 429, headers: { "retry-after": "0" } });
    if (calls === 2) return new Response("{}", { status: 503 });
    if (req.method === "PUT") return Response.json({ id: "p-1", version: 3 }, { status: 201 });
    return Response.json(
      { error: { code: "twin_not_found", message: 'Twin "ghost" not found' } },
      { status: 404 },
    );
  });
  const api = new Api(`http://127.0.0.1:${server.addr.port}`, "key-0123456789abcdef");
  assert.equal(await api.provision("p-1", { type: "press" }), 3);
  assert.deepEqual(seen, Array(3).fill("PUT /v1/twins/p-1 Bearer key-0123456789abcdef"));
  await assert.rejects(
    api.version("ghost"),
    (e) =>
      e instanceof ApiError && e.status === 404 && e.code === "twin_not_found" &&
      e.message === 'GET /v1/twins/ghost -> 404 twin_not_found: Twin "ghost" not found',
  );
});
