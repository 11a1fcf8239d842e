#!/usr/bin/env bash
# Starts a 3-node countd cluster on loopback for trying things out: data in
# ./data/nN, logs in ./data/nN.log; HTTP on 8080-8082, the Redis protocol on
# 6379-6381. Ctrl-C stops all three gracefully.
#
# SECURE=1 (make run-secure) starts the production configuration instead:
# mutual TLS, an encrypted gossip and ACLs, with data in ./data-secure. The
# CA, the node certificates, the gossip key and the management token are
# made on the first run (in ./data-secure/pki) and reused afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-./bin}
SECURE=${SECURE:-}
JOIN=127.0.0.1:8400,127.0.0.1:8401,127.0.0.1:8402
SCHEME=http
if [ -n "$SECURE" ]; then
  SCHEME=https
  DATA=${DATA:-./data-secure}
else
  DATA=${DATA:-./data}
fi
ADDRS=$SCHEME://127.0.0.1:8080,$SCHEME://127.0.0.1:8081,$SCHEME://127.0.0.1:8082

mkdir -p "$DATA"
chmod 700 "$DATA"
extra=()
ctl=("$BIN/countctl" -a "$ADDRS")
if [ -n "$SECURE" ]; then
  PKI=$DATA/pki
  if [ ! -f "$PKI/countd-ca.pem" ]; then
    "$BIN/countctl" tls ca create --dir "$PKI" -o text
    for n in n1 n2 n3; do "$BIN/countctl" tls cert create --dir "$PKI" --name "$n" -o text; done
    "$BIN/countctl" gossip keygen -o text >"$PKI/gossip.key"
    head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$PKI/management.token"
    chmod 600 "$PKI/gossip.key" "$PKI/management.token"
  fi
  extra=(-tls-ca "$PKI/countd-ca.pem" -gossip-key-file "$PKI/gossip.key" -acl
    -acl-initial-management-token-file "$PKI/management.token")
  ctl+=(--ca-cert "$PKI/countd-ca.pem" --token-file "$PKI/management.token")
fi
pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping the cluster..."
  # -leave-on-terminate=false: stopping the whole cluster keeps every
  # node's vote, so the next `make run` picks up where this one stopped.
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  echo "stopped; data kept in $DATA (make clean removes it)"
  exit 0
}
trap stop INT TERM EXIT

for i in 0 1 2; do
  n=$((i + 1))
  "$BIN/countd" -node-id "n$n" -data-dir "$DATA/n$n" \
    -http-addr "127.0.0.1:808$i" -raft-addr "127.0.0.1:830$i" -gossip-addr "127.0.0.1:840$i" \
    -resp-addr "127.0.0.1:$((6379 + i))" \
    -join "$JOIN" -bootstrap-expect 3 -leave-on-terminate=false "${extra[@]}" \
    ${SECURE:+-tls-cert "$PKI/n$n.pem" -tls-key "$PKI/n$n-key.pem"} >>"$DATA/n$n.log" 2>&1 &
  pids+=($!)
done

echo "starting 3 countd nodes (logs: $DATA/n1.log, n2.log, n3.log)..."
for _ in $(seq 100); do
  if "${ctl[@]}" --timeout 1s cluster status -o text 2>/dev/null | grep -q '^cluster .*leader n'; then
    break
  fi
  sleep 0.1
done
"${ctl[@]}" cluster status -o text || echo "no leader yet; see the logs in $DATA"

exports="export PATH=\$PWD/bin:\$PATH COUNTD_ADDR=$ADDRS"
if [ -n "$SECURE" ]; then
  exports="$exports
  export COUNTD_CACERT=\$PWD/${PKI#./}/countd-ca.pem COUNTD_TOKEN=$(cat "$PKI/management.token")"
  echo
  echo "The management token (keep it secret) is in $PKI/management.token."
fi
cat <<MSG

The cluster is up. In another terminal, try:

  $exports
  countctl -i mycounter counter next
  countctl -i mycounter counter next --count 5 -o text
  countctl -i mycounter counter get
  countctl -i mycounter counter next --continuous     # then kill -9 the leader's countd
  countctl cluster status -o text
  open http://127.0.0.1:8080/ui/ in a browser: the web console
  redis-cli -p 6379 INCR hits                          # any node; a follower answers TRY <leader>
  redis-cli -p \$(redis-cli -p 6379 RAFTLEADER | cut -d: -f2) INCR hits

Press Ctrl-C here to stop all three nodes.
MSG
wait "${pids[@]}"
