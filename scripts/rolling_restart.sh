#!/usr/bin/env bash
# Rolling restart of the compose cluster (infra/compose.yaml), one container at a
# time, under traffic: README "Cluster mode" -> "Rolling restart and upgrade".
#
#   scripts/rolling_restart.sh [-f infra/compose.yaml] [--env-file infra/.env]
#
# 1. each twinmill replica in turn: `docker stop` (SIGTERM: it hands its shards off and exits),
#    `docker start`, then wait until every replica's /readyz answers 200 (asked inside each
#    container: the replicas publish no port);
# 2. each NATS server in turn: `docker compose stop`, `docker compose start`, then wait, through
#    its monitoring port inside the network (`docker compose exec`), for /healthz with
#    ?js-enabled-only=true (JetStream up), ?js-server-only=true (it has the meta leader) and
#    with no option (every stream and consumer it holds is current), and every replica ready.
# It restarts the containers as they are (same image): see the README for an upgrade.
#
# Environment: ROLLING_TIMEOUT (s, default 180) bounds each wait; ROLLING_POLL (s, default 2);
# ROLLING_NODE_SERVICE (default twinmill); ROLLING_NATS_SERVICES (default "nats-1 nats-2 nats-3");
# ROLLING_STOP_GRACE (s, default 60, as the service's stop_grace_period).
# Exits 1 on the first wait that times out, naming it; the cluster is then left as it is.
set -euo pipefail

compose_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -f | --file | --env-file | -p | --project-name)
      [ $# -ge 2 ] || { echo "rolling: $1 needs a value" >&2; exit 2; }
      compose_args+=("$1" "$2")
      shift 2
      ;;
    -h | --help)
      sed -n '2,22p' "$0"
      exit 0
      ;;
    *)
      echo "rolling: unknown argument \"$1\" (see --help)" >&2
      exit 2
      ;;
  esac
done
[ ${#compose_args[@]} -gt 0 ] || compose_args=(-f infra/compose.yaml)

TIMEOUT=${ROLLING_TIMEOUT:-180}
POLL=${ROLLING_POLL:-2}
NODE_SERVICE=${ROLLING_NODE_SERVICE:-twinmill}
NATS_SERVICES=${ROLLING_NATS_SERVICES:-nats-1 nats-2 nats-3}
GRACE=${ROLLING_STOP_GRACE:-60}

log() { printf '%s rolling: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
dc() { docker compose "${compose_args[@]}" "$@"; }

# wait_until "<what>" cmd args...: polls cmd every $POLL s; exits 1 after $TIMEOUT s
wait_until() {
  local what=$1 start=$SECONDS
  shift
  until "$@" >/dev/null 2>&1; do
    if [ $((SECONDS - start)) -ge "$TIMEOUT" ]; then
      log "TIMEOUT after ${TIMEOUT}s waiting for ${what}"
      exit 1
    fi
    sleep "$POLL"
  done
  log "  ${what}: ok after $((SECONDS - start))s"
}

# /readyz of one twinmill container, from inside it (its own port, HTTP or HTTPS)
node_ready() {
  docker exec "$1" deno eval --unsafely-ignore-certificate-errors=127.0.0.1 '
    const port = Deno.env.get("TWINMILL_HTTP_PORT") || "8080";
    const scheme = Deno.env.get("TWINMILL_TLS_CERT") ? "https" : "http";
    const r = await fetch(`${scheme}://127.0.0.1:${port}/readyz`);
    await r.body?.cancel();
    Deno.exit(r.status === 200 ? 0 : 1);'
}

nodes() { dc ps -q "$NODE_SERVICE"; }

all_nodes_ready() {
  local c
  for c in $(nodes); do node_ready "$c" || return 1; done
}

# /healthz of a NATS service with a query, from inside its container
nats_health() {
  dc exec -T "$1" wget -q -O - "http://127.0.0.1:8222/healthz$2" | grep -q '"status": *"ok"'
}

ids=$(nodes)
[ -n "$ids" ] || { log "no running container of service ${NODE_SERVICE}"; exit 1; }
log "twinmill replicas: $(echo "$ids" | wc -w); NATS servers: ${NATS_SERVICES}"
wait_until "every replica ready before starting" all_nodes_ready

for c in $ids; do
  log "node ${c:0:12}: stop (SIGTERM: hands its shards off, up to ${GRACE}s)"
  docker stop -t "$GRACE" "$c" >/dev/null
  log "node ${c:0:12}: start"
  docker start "$c" >/dev/null
  wait_until "node ${c:0:12} /readyz 200" node_ready "$c"
  wait_until "every replica /readyz 200" all_nodes_ready
done

for s in $NATS_SERVICES; do
  log "nats ${s}: stop"
  dc stop "$s" >/dev/null
  log "nats ${s}: start"
  dc start "$s" >/dev/null
  wait_until "nats ${s} JetStream enabled" nats_health "$s" "?js-enabled-only=true"
  wait_until "nats ${s} has the JetStream meta leader" nats_health "$s" "?js-server-only=true"
  wait_until "nats ${s} streams and consumers current" nats_health "$s" ""
  wait_until "every replica /readyz 200" all_nodes_ready
done
log "done: every twinmill replica and every NATS server restarted"
