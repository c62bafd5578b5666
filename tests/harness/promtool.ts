/**
 * `promtool check metrics` on a scrape: what Prometheus's own linter says of `/metrics`
 * (Debian `prometheus` package, installed by `tests/ensure_servers.sh`).
 * @module
 */
import assert from "node:assert/strict";
import { findBinary } from "./binaries.ts";

/**
 * Runs `promtool check metrics` on `scrape` and fails with its output when it prints anything
 * (a warning or an error) or exits non-zero.
 *
 * @example
 * ```ts
 * await assertPromtoolClean(await (await fetch(`${node.httpUrl}/metrics`)).text());
 * ```
 */
export async function assertPromtoolClean(scrape: string): Promise<void> {
  const promtool = findBinary("promtool", "prometheus");
  const child = new Deno.Command(promtool, {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(scrape));
  await writer.close();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(text.trim(), "", `promtool check metrics: ${text}`);
  assert.equal(out.code, 0, `promtool check metrics exit code: ${text}`);
}
