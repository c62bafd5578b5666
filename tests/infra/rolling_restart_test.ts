/**
 * `scripts/rolling_restart.sh` against a fake `docker` on PATH (there is no container engine
 * here): the fake records every call and plays a compose cluster of 3 twinmill replicas and 3
 * NATS servers whose readiness comes back a few polls after a restart. Checked: the order
 * (one replica at a time — stop, start, its /readyz polled until 200 — then one NATS server at
 * a time through its three health checks), the waits, and a non-zero exit naming the wait on a
 * timeout.
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "../harness/mod.ts";

const FAKE_DOCKER = `#!/usr/bin/env bash
# fake docker: records its arguments, plays 3 replicas (c1..c3) and nats-1..3
args="$*"
echo "\${args//$'\\n'/ }" >> "$FAKE_DIR/calls"
# a counter file: how many more polls answer "not ready"
pending() { local f="$FAKE_DIR/pending_$1"; local n; n=$(cat "$f" 2>/dev/null || echo 0)
  if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$f"; return 0; fi; return 1; }
if [ "$1" = compose ]; then
  shift
  while [ "$1" = -f ] || [ "$1" = --env-file ]; do shift 2; done
  case "$1" in
    ps) printf 'c1\\nc2\\nc3\\n' ;;
    stop) echo 2 > "$FAKE_DIR/pending_$2" ;;
    start) ;;
    exec)
      svc=$3
      if [ -e "$FAKE_DIR/nats_never" ] || pending "$svc"; then
        echo '{"status":"unavailable","error":"JetStream stream is not current"}'
      else echo '{"status": "ok"}'; fi ;;
    *) echo "fake docker: unexpected compose $*" >&2; exit 3 ;;
  esac
  exit 0
fi
case "$1" in
  stop) echo 2 > "$FAKE_DIR/pending_$4" ;;
  start) ;;
  exec) if pending "$2"; then exit 1; fi ;;
  *) echo "fake docker: unexpected $*" >&2; exit 3 ;;
esac
`;

async function run(env: Record<string, string> = {}, o: { natsNeverHealthy?: boolean } = {}) {
  const dir = await Deno.makeTempDir({ prefix: "rolling-script-" });
  try {
    if (o.natsNeverHealthy) await Deno.writeTextFile(`${dir}/nats_never`, "");
    await Deno.mkdir(`${dir}/bin`);
    await Deno.writeTextFile(`${dir}/bin/docker`, FAKE_DOCKER, { mode: 0o755 });
    const out = await new Deno.Command("bash", {
      args: [`${REPO_ROOT}/scripts/rolling_restart.sh`, "-f", "infra/compose.yaml"],
      cwd: REPO_ROOT,
      env: {
        PATH: `${dir}/bin:${Deno.env.get("PATH")}`,
        FAKE_DIR: dir,
        ROLLING_POLL: "0.05",
        ...env,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    const calls = (await Deno.readTextFile(`${dir}/calls`).catch(() => "")).trim().split("\n");
    return {
      code: out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
      calls,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The calls that change something, and each container's readiness polls, in order. */
function steps(calls: string[]): string[] {
  return calls.map((c) => {
    const ready = /^exec (c\d) deno eval/.exec(c);
    if (ready) return `ready? ${ready[1]}`;
    const health = /exec -T (nats-\d) wget -q -O - http:\/\/127\.0\.0\.1:8222\/healthz(\S*)/
      .exec(c);
    if (health) return `health${health[2] || " (full)"} ${health[1]}`;
    return c.replace(/^compose -f infra\/compose\.yaml /, "compose ");
  });
}

Deno.test("rolling_restart.sh: one replica at a time, then one NATS server at a time, each waited for", async () => {
  const r = await run();
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const s = steps(r.calls);
  // every replica: stop with the grace period, start, its own readiness polled until 200
  // (the fake answers 503 twice after a start), then every replica ready, before the next one
  let at = 0;
  const next = (step: string) => {
    const i = s.indexOf(step, at);
    assert.ok(i >= at, `"${step}" after step ${at} in:\n${s.join("\n")}`);
    at = i + 1;
    return i;
  };
  for (const c of ["c1", "c2", "c3"]) {
    next(`stop -t 60 ${c}`);
    const started = next(`start ${c}`);
    const polls = s.slice(started + 1).findIndex((x) => x !== `ready? ${c}`);
    assert.equal(polls, 3, `${c}: polled until ready (2 refusals, then 200)`);
    for (const o of ["c1", "c2", "c3"]) next(`ready? ${o}`);
  }
  for (const n of ["nats-1", "nats-2", "nats-3"]) {
    next(`compose stop ${n}`);
    next(`compose start ${n}`);
    next(`health?js-enabled-only=true ${n}`);
    next(`health?js-server-only=true ${n}`);
    next(`health (full) ${n}`);
    next("ready? c3");
  }
  assert.match(r.stdout, /node c1: stop/);
  assert.match(r.stdout, /nats nats-3 streams and consumers current: ok/);
  assert.match(r.stdout, /done: every twinmill replica and every NATS server restarted/);
});

Deno.test("rolling_restart.sh: a wait that runs out exits 1 and names it", async () => {
  const r = await run({ ROLLING_TIMEOUT: "2" }, { natsNeverHealthy: true });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /TIMEOUT after 2s waiting for nats nats-1 JetStream enabled/);
  assert.ok(!r.calls.some((c) => c.includes("stop nats-2")), "stops at the first timeout");
});
