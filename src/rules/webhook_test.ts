import assert from "node:assert/strict";
import { createLogger } from "../obs/log.ts";
import { redactUrl, type WebhookOutcome, WebhookSender } from "./webhook.ts";

interface Seen {
  path: string;
  headers: Headers;
  body: string;
}

/** A local HTTP server; `handler` decides each answer. Handlers waiting on `gate` are freed on dispose. */
class Hook {
  readonly seen: Seen[] = [];
  handler: (n: number, req: Request) => Response | Promise<Response> = () => new Response("ok");
  #release: () => void = () => {};
  readonly gate = new Promise<void>((r) => this.#release = r);
  readonly #server: Deno.HttpServer<Deno.NetAddr>;

  constructor() {
    this.#server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
      const url = new URL(req.url);
      this.seen.push({
        path: url.pathname + url.search,
        headers: req.headers,
        body: await req.text(),
      });
      return await this.handler(this.seen.length, req);
    });
  }

  url(path = "/hook"): string {
    return `http://127.0.0.1:${this.#server.addr.port}${path}`;
  }

  /** Answer 200 only once the test releases the gate (or the client gives up). */
  blocking(): void {
    this.handler = async (_n, req) => {
      const aborted = new Promise<void>((r) => req.signal.addEventListener("abort", () => r()));
      await Promise.race([this.gate, aborted]);
      return new Response("late");
    };
  }

  release(): void {
    this.#release();
  }

  async [Symbol.asyncDispose]() {
    this.release();
    await this.#server.shutdown();
  }
}

/** Polls `fn` until it is truthy; fails after `timeoutMs`. */
async function until(fn: () => unknown, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("webhook: a 500 is retried, the 200 after it counts as sent", async () => {
  await using hook = new Hook();
  hook.handler = (n) => new Response(n === 1 ? "busy" : "ok", { status: n === 1 ? 500 : 200 });
  const outcomes: WebhookOutcome[] = [];
  await using hooks = new WebhookSender({
    minBackoffMs: 10,
    onOutcome: (o) => outcomes.push(o),
  });
  assert.equal(
    hooks.send({ url: hook.url(), headers: { "X-Key": "k1" }, body: { alarm: "overheat" } }),
    true,
  );
  await until(() => hooks.sent === 1, "the delivery");
  assert.equal(hook.seen.length, 2);
  for (const s of hook.seen) {
    assert.equal(s.body, '{"alarm":"overheat"}');
    assert.equal(s.headers.get("content-type"), "application/json");
    assert.equal(s.headers.get("x-key"), "k1");
  }
  assert.deepEqual(outcomes, [{ kind: "sent", url: hook.url(), attempts: 2, status: 200 }]);
  assert.deepEqual([hooks.failed, hooks.dropped, hooks.queued, hooks.inFlight], [0, 0, 0, 0]);
});

Deno.test("webhook: each attempt times out; retries are bounded, then it fails", async () => {
  await using hook = new Hook();
  hook.blocking();
  const outcomes: WebhookOutcome[] = [];
  await using hooks = new WebhookSender({
    timeoutMs: 100,
    retries: 1,
    minBackoffMs: 10,
    onOutcome: (o) => outcomes.push(o),
  });
  hooks.send({ url: hook.url(), body: 1 });
  await until(() => hooks.failed === 1, "the failure");
  assert.equal(hook.seen.length, 2);
  assert.deepEqual(outcomes, [{
    kind: "failed",
    url: hook.url(),
    attempts: 2,
    status: undefined,
    reason: "timed out after 100 ms",
  }]);
  await hooks.idle();
  assert.equal(hooks.inFlight, 0);
});

Deno.test("webhook: a full queue drops (and counts) without blocking the caller", async () => {
  await using hook = new Hook();
  hook.blocking();
  await using hooks = new WebhookSender({ concurrency: 1, queueSize: 2 });
  const accepted = [1, 2, 3, 4, 5].map((n) => hooks.send({ url: hook.url(), body: { n } }));
  assert.deepEqual(accepted, [true, true, true, false, false]); // 1 in flight + 2 queued
  assert.deepEqual([hooks.dropped, hooks.queued, hooks.inFlight], [2, 2, 1]);
  hook.release();
  await until(() => hooks.sent === 3, "the three deliveries");
  await hooks.idle();
  assert.deepEqual(hook.seen.map((s) => s.body), ['{"n":1}', '{"n":2}', '{"n":3}']);
  assert.equal(hooks.dropped, 2);
});

Deno.test("webhook: a 4xx is not retried; bad URLs fail at once", async () => {
  await using hook = new Hook();
  hook.handler = () => new Response("no", { status: 400 });
  await using hooks = new WebhookSender({ minBackoffMs: 10 });
  hooks.send({ url: hook.url(), body: {} });
  await until(() => hooks.failed === 1, "the refusal");
  assert.equal(hook.seen.length, 1);
  assert.equal(hooks.send({ url: "ftp://example.com/x", body: {} }), false);
  assert.equal(hooks.send({ url: "not a url", body: {} }), false);
  assert.equal(hooks.send({ url: hook.url(), body: { n: 1n } }), false);
  assert.equal(hooks.failed, 4);
});

Deno.test("webhook: close aborts deliveries and retry timers, drops the queue", async () => {
  await using hook = new Hook();
  hook.blocking();
  const hooks = new WebhookSender({ concurrency: 1, timeoutMs: 60_000 });
  hooks.send({ url: hook.url(), body: 1 });
  hooks.send({ url: hook.url(), body: 2 });
  await until(() => hook.seen.length === 1, "the first request");
  const t0 = Date.now();
  await hooks.close();
  assert.ok(Date.now() - t0 < 5000);
  assert.deepEqual([hooks.sent, hooks.dropped, hooks.inFlight, hooks.queued], [0, 2, 0, 0]);
  assert.equal(hooks.send({ url: hook.url(), body: 3 }), false);
  assert.equal(hooks.dropped, 3);
  await hooks.idle(); // resolves when closed

  // a delivery waiting for its retry is stopped too (no timer left behind)
  hook.handler = () => new Response("busy", { status: 503 });
  const retrying = new WebhookSender({ minBackoffMs: 60_000 });
  retrying.send({ url: hook.url(), body: 1 });
  await until(() => hook.seen.length === 2, "the first attempt");
  await retrying.close();
  assert.deepEqual([retrying.failed, retrying.dropped], [0, 1]);
});

Deno.test("webhook: logs never hold header values or URL secrets", async () => {
  await using hook = new Hook();
  hook.handler = () => new Response("no", { status: 403 });
  const lines: string[] = [];
  const logger = createLogger("debug", "test", (l) => lines.push(l));
  await using hooks = new WebhookSender({ logger, queueSize: 0 });
  const url = hook.url("/hook?token=q-secret").replace("http://", "http://user:p-secret@");
  hooks.send({ url, headers: { Authorization: "Bearer h-secret" }, body: {} }); // dropped: queue 0
  const open = new WebhookSender({ logger });
  open.send({ url, headers: { Authorization: "Bearer h-secret" }, body: {} });
  await until(() => open.failed === 1, "the refusal");
  await open.close();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close(); // a port nobody listens on
  const closed = `http://127.0.0.1:${listener.addr.port}/hook?token=q-secret`;
  const refused = new WebhookSender({ logger, retries: 0 });
  refused.send({ url: closed, headers: { "X-Key": "h-secret" }, body: {} });
  await until(() => refused.failed === 1, "the connection error");
  await refused.close();
  assert.match(hook.seen[0].headers.get("authorization")!, /Bearer h-secret/); // it was sent
  const text = lines.join("\n");
  if (Deno.env.get("SHOW_LOGS")) console.log(text);
  assert.match(text, /webhook failed/);
  assert.match(text, /webhooks dropped/);
  assert.match(text, /Connection refused/); // the cause is kept, its URL query cut out
  for (const secret of ["h-secret", "q-secret", "p-secret"]) {
    assert.ok(!text.includes(secret), text);
  }
});

Deno.test("redactUrl keeps scheme, host and path only", () => {
  assert.equal(
    redactUrl(new URL("https://u:p@hooks.example.com:8443/a/b?token=x#f")),
    "https://hooks.example.com:8443/a/b",
  );
});
