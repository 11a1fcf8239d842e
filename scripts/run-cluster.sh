#!/usr/bin/env bash
# Starts a 3-node countd cluster on loopback for trying things out: data in
# ./data/nN, logs in ./data/nN.log. Ctrl-C stops all three gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-./bin}
DATA=${DATA:-./data}
JOIN=127.0.0.1:8400,127.0.0.1:8401,127.0.0.1:8402
ADDRS=http://127.0.0.1:8080,http://127.0.0.1:8081,http://127.0.0.1:8082

mkdir -p "$DATA"
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
    -join "$JOIN" -bootstrap-expect 3 -leave-on-terminate=false >>"$DATA/n$n.log" 2>&1 &
  pids+=($!)
done

echo "starting 3 countd nodes (logs: $DATA/n1.log, n2.log, n3.log)..."
for _ in $(seq 100); do
  if "$BIN/countctl" -a "$ADDRS" --timeout 1s cluster status -o text 2>/dev/null | grep -q '^cluster .*leader n'; then
    break
  fi
  sleep 0.1
done
"$BIN/countctl" -a "$ADDRS" cluster status -o text || echo "no leader yet; see the logs in $DATA"

cat <<MSG

The cluster is up. In another terminal, try:

  export PATH=\$PWD/bin:\$PATH COUNTD_ADDR=$ADDRS
  countctl -i mycounter counter next
  countctl -i mycounter counter next --count 5 -o text
  countctl -i mycounter counter get
  countctl -i mycounter counter next --continuous     # then kill -9 the leader's countd
  countctl cluster status -o text

Press Ctrl-C here to stop all three nodes.
MSG
wait "${pids[@]}"
