/**
 * Hono "hello" on `Deno.serve`: the baseline of the http bench.
 *
 * `deno run --allow-net bench/hello_server.ts [port]` listens on 127.0.0.1 (port 0, the
 * default, picks a free one) and prints the port it bound on stdout.
 * @module
 */
import { Hono } from "hono";

const app = new Hono();
app.get("/", (c) => c.text("hello"));

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 0);
  Deno.serve({
    hostname: "127.0.0.1",
    port,
    onListen: (addr) => console.log(addr.port),
  }, app.fetch);
}
