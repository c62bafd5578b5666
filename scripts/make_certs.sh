#!/usr/bin/env bash
# Certificates of the compose cluster's NATS servers (infra/compose.yaml), made once with
# openssl: README "Run a cluster with Docker".
#
#   scripts/make_certs.sh [dir]     # default infra/certs (git-ignored)
#
# Writes, in dir:
#   ca.pem, ca.key       a private CA (10 years); the nodes verify the servers with ca.pem
#                        (NATS_CA), the servers verify each other's routes with it
#   nats.pem, nats.key   the certificate of nats-1, nats-2 and nats-3 (825 days; also
#                        localhost and 127.0.0.1), for clients (serverAuth) and for the routes
#                        between them, where each server is also a client (clientAuth)
# Keys are readable by their owner only. A CA already in dir is kept (the servers' certificate is
# issued again from it): delete dir to start over. Needs openssl 1.1.1 or later.
set -euo pipefail

case "${1:-}" in
  -h | --help)
    sed -n '2,16p' "$0"
    exit 0
    ;;
esac
dir=${1:-infra/certs}
command -v openssl >/dev/null || { echo "make_certs: openssl not found" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
umask 077

ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
if [ -e ca.pem ] && [ -e ca.key ]; then
  echo "make_certs: keeping the CA in $dir/ca.pem"
else
  openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 3650 \
    -subj "/CN=twinmill NATS CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  echo "make_certs: new CA $dir/ca.pem"
fi

cat >nats.ext <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:nats-1,DNS:nats-2,DNS:nats-3,DNS:localhost,IP:127.0.0.1
EOF
openssl req "${ec[@]}" -keyout nats.key -out nats.csr -subj "/CN=nats" 2>/dev/null
openssl x509 -req -in nats.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out nats.pem \
  -days 825 -extfile nats.ext 2>/dev/null
rm -f nats.csr nats.ext
chmod 644 ca.pem nats.pem
echo "make_certs: $dir/nats.pem for nats-1, nats-2, nats-3 (key $dir/nats.key)"
