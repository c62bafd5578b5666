#!/usr/bin/env bash
# Makes sure the server binaries the integration tests start are installed.
# Missing ones are installed from Debian's packages when running as root; otherwise
# (or if that fails) it exits 1 naming what is missing. The packages' own system
# services are kept from starting: the tests always run their own copies on free
# ports of 127.0.0.1 and never use the system ones.
set -euo pipefail

# binary (alternatives separated by |) -> Debian package
BINARIES=(
  "nats-server:nats-server"
  "mosquitto:mosquitto"
  "mosquitto_pub:mosquitto-clients"
  "mosquitto_sub:mosquitto-clients"
  "influxd:influxdb"
  "victoria-metrics|victoria-metrics-prod:victoria-metrics"
  "wrk:wrk"
  "hey:hey"
  "docker-compose:docker-compose"
  "openssl:openssl"
  "curl:curl"
  "promtool:prometheus"
  "cc:gcc"
  "chromium:chromium" # headless, for the browser tests (tests/harness/browser.ts)
)
SEARCH_PATH="${PATH}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

have() {
  local name
  IFS='|' read -ra names <<<"$1"
  for name in "${names[@]}"; do
    PATH="$SEARCH_PATH" command -v "$name" >/dev/null 2>&1 && return 0
  done
  return 1
}

missing_packages() {
  local entry pkgs=()
  for entry in "${BINARIES[@]}"; do
    have "${entry%%:*}" || pkgs+=("${entry##*:}")
  done
  [ ${#pkgs[@]} -eq 0 ] || printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ' '
}

missing="$(missing_packages)"
if [ -z "$missing" ]; then
  exit 0
fi

echo "ensure_servers: missing packages: $missing" >&2
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_servers: cannot install them (needs root and apt-get): run as root, or" \
    "apt-get install $missing" >&2
  exit 1
fi

# Keep the packages' services (influxdb on :8086, mosquitto on :1883, ...) from being
# started by their install scripts; invoke-rc.d and deb-systemd-invoke both obey this.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  trap 'rm -f "$POLICY"' EXIT
fi

# shellcheck disable=SC2086 # $missing is a list of package names
if ! { apt-get update -q &&
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $missing; }; then
  echo "ensure_servers: apt-get install $missing failed" >&2
  exit 1
fi

still="$(missing_packages)"
if [ -n "$still" ]; then
  echo "ensure_servers: still missing after install: $still" >&2
  exit 1
fi
echo "ensure_servers: installed $missing" >&2
