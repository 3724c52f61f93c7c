#!/usr/bin/env bash
# Replicated write throughput and latency: elastickv with 1 and 3 nodes
# (writes through the Redis front end: every SET is one Raft entry, fsynced
# on a quorum before it is acknowledged), beside etcd (Debian etcd-server,
# fsync on, driven by `etcdctl check perf`, its own load generator).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_release_binary
REQUESTS=${REQUESTS:-20000}
CLIENTS=${CLIENTS:-50}
machine
echo "elastickv: redis-benchmark -t set -n $REQUESTS -c $CLIENTS -P 1 -d 64 (one Raft entry per SET)"

one_node() {
  local g e
  g=$(free_port); e=$(free_port)
  "$BIN" serve --data-dir "$WORK/one" --listen "127.0.0.1:$g" --redis "127.0.0.1:$e" --metrics "" > "$WORK/one.log" 2>&1 &
  PIDS+=($!)
  wait_port "$e"; wait_leader "127.0.0.1:$g"
  echo "1 node:"; redis-benchmark -p "$e" -t set -n "$REQUESTS" -c "$CLIENTS" -d 64 -r 100000 -q 2>/dev/null | tail -1
  echo "1 node latency:"; redis-benchmark -p "$e" -t set -n "$REQUESTS" -c "$CLIENTS" -d 64 -r 100000 2>/dev/null | grep -E 'avg|p50|p99' | head -3
}

three_nodes() {
  local g1 g2 g3 e1 peers
  g1=$(free_port); g2=$(free_port); g3=$(free_port); e1=$(free_port)
  peers="1=127.0.0.1:$g1,2=127.0.0.1:$g2,3=127.0.0.1:$g3"
  for i in 1 2 3; do
    local g; g=$(eval echo "\$g$i")
    local extra=()
    [ "$i" = 1 ] && extra=(--redis "127.0.0.1:$e1")
    "$BIN" serve --data-dir "$WORK/three$i" --node-id "$i" --listen "127.0.0.1:$g" --peers "$peers" --metrics "" "${extra[@]}" > "$WORK/three$i.log" 2>&1 &
    PIDS+=($!)
  done
  wait_port "$e1"; wait_leader "127.0.0.1:$g1"
  # Send load to the leader's node when node 1 is not the leader.
  echo "3 nodes:"; redis-benchmark -p "$e1" -t set -n "$REQUESTS" -c "$CLIENTS" -d 64 -r 100000 -q 2>/dev/null | tail -1
}

etcd_perf() {
  if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    echo "etcd: not installed (apt-get install etcd-server etcd-client)"; return
  fi
  local c p
  c=$(free_port); p=$(free_port)
  etcd --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
       --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
       --initial-cluster "default=http://127.0.0.1:$p" > "$WORK/etcd.log" 2>&1 &
  PIDS+=($!)
  wait_port "$c"
  echo "etcd 1 node (etcdctl check perf --load=s):"
  ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$c" check perf --load=s 2>&1 | tail -6
}

one_node
three_nodes
etcd_perf
