/**
 * One `wrk -t2` run, parsed.
 * @module
 */
import { findBinary } from "../tests/harness/mod.ts";
import { readAll, spawn } from "./proc.ts";

/** What one wrk run measured. */
export interface WrkResult {
  /** Responses per second: as wrk prints it when strict, else 2xx responses only. */
  rps: number;
  /** All responses per second, as wrk prints it. */
  allRps: number;
  requests: number;
  non2xx: number;
  timeouts: number;
  socketErrors: string;
  latency: string;
  /** wrk's whole output. */
  summary: string;
}

/**
 * Runs `wrk -t2 -c<connections> -d<secs>s url` (50 connections by default). With `strict`
 * (default), throws on socket errors or non-2xx responses; without, counts them (and `rps`
 * counts 2xx responses only). With `paths`, each connection requests them in turn (on the
 * origin of `url`).
 */
export async function wrk(
  url: string,
  secs: number,
  strict = true,
  paths?: string[],
  connections = 50,
): Promise<WrkResult> {
  const args = ["-t2", `-c${connections}`, `-d${secs}s`];
  let script: string | undefined;
  if (paths?.length) {
    script = await Deno.makeTempFile({ prefix: "twinmill-wrk-", suffix: ".lua" });
    await Deno.writeTextFile(script, rotateScript(paths));
    args.push("-s", script);
  }
  args.push(url);
  try {
    return await run(url, args, strict);
  } finally {
    if (script) await Deno.remove(script).catch(() => {});
  }
}

/** A wrk Lua script that requests `paths` round-robin. */
function rotateScript(paths: string[]): string {
  const list = paths.map((p) => JSON.stringify(p)).join(", ");
  return `local paths = {${list}}
local i = math.random(#paths)
request = function()
  i = (i % #paths) + 1
  return wrk.format("GET", paths[i])
end
`;
}

async function run(url: string, args: string[], strict: boolean): Promise<WrkResult> {
  const p = spawn(findBinary("wrk", "wrk"), args, { stdout: "piped" });
  const [status, out, err] = await Promise.all([
    p.status,
    readAll(p.child.stdout),
    readAll(p.child.stderr),
  ]);
  if (status.code !== 0) throw new Error(`wrk exited with code ${status.code}: ${err}${out}`);
  const rps = out.match(/Requests\/sec:\s+([\d.]+)/);
  const total = out.match(/(\d+) requests in ([\d.]+)(m?s)/);
  if (!rps || !total) throw new Error(`Cannot parse wrk output:\n${out}`);
  const bad = out.match(/(Non-2xx or 3xx responses: \d+|Socket errors: .*)/);
  if (bad && strict) throw new Error(`wrk against ${url}: ${bad[1]}\n${out}`);
  const non2xx = Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  const socket = out.match(/Socket errors: (.*)/)?.[1].trim() ?? "";
  const timeouts = Number(socket.match(/timeout (\d+)/)?.[1] ?? 0);
  const requests = Number(total[1]);
  const dur = Number(total[2]) / (total[3] === "ms" ? 1000 : 1);
  const lat = out.match(/Latency\s+(\S+)\s+(\S+)\s+(\S+)/);
  return {
    rps: strict ? Number(rps[1]) : (requests - non2xx) / dur,
    allRps: Number(rps[1]),
    requests,
    non2xx,
    timeouts,
    socketErrors: socket,
    latency: lat ? `avg ${lat[1]}, stdev ${lat[2]}, max ${lat[3]}` : "?",
    summary: out,
  };
}
