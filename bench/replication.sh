#!/usr/bin/env bash
# Replicated write throughput at equal durability, one load generator for
# both systems: bench/kv_load.py sends unary gRPC puts (etcd's KV/Put,
# elastickv's Admin/KvPut) with the same concurrency, keys and values; each
# put is acknowledged only once fsynced on a quorum. 1 node and 3 nodes
# each, etcd (Debian etcd-server, default fsync) beside elastickv.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_release_binary
REQUESTS=${REQUESTS:-40000}
CLIENTS=${CLIENTS:-64}
VALUE=${VALUE:-256}
LOAD=(python3 "$ROOT/bench/kv_load.py")
machine
echo "load: kv_load.py --requests $REQUESTS --clients $CLIENTS --procs 2 --value-size $VALUE --keys 100000"

load() { "${LOAD[@]}" "$1" "$2" --requests "$REQUESTS" --clients "$CLIENTS" --procs 2 --value-size "$VALUE"; }

ekv_cluster() {
  local n=$1 peers="" i
  local -a ports
  for i in $(seq 1 "$n"); do ports[$i]=$(free_port); done
  for i in $(seq 1 "$n"); do peers+="${peers:+,}$i=127.0.0.1:${ports[$i]}"; done
  for i in $(seq 1 "$n"); do
    "$BIN" serve --data-dir "$WORK/ekv$n-$i" --node-id "$i" --listen "127.0.0.1:${ports[$i]}" \
      --peers "$peers" --redis "" --metrics "" > "$WORK/ekv$n-$i.log" 2>&1 &
    PIDS+=($!)
  done
  wait_leader "127.0.0.1:${ports[1]}"
  # Load goes to the leader (followers would forward every put).
  local leader
  leader=$("$BIN" status --endpoint "127.0.0.1:${ports[1]}" --output json | python3 -c 'import json,sys; d=json.load(sys.stdin); g=d["groups"][0]; print(g["leader"])')
  echo -n "elastickv $n node(s): "; load elastickv "127.0.0.1:${ports[$leader]}"
}

etcd_cluster() {
  if ! command -v etcd >/dev/null; then
    echo "etcd: not installed (make bench installs etcd-server)"; return
  fi
  local n=$1 initial="" i
  local -a cports pports
  for i in $(seq 1 "$n"); do cports[$i]=$(free_port); pports[$i]=$(free_port); done
  for i in $(seq 1 "$n"); do initial+="${initial:+,}e$i=http://127.0.0.1:${pports[$i]}"; done
  for i in $(seq 1 "$n"); do
    etcd --name "e$i" --data-dir "$WORK/etcd$n-$i" \
      --listen-client-urls "http://127.0.0.1:${cports[$i]}" --advertise-client-urls "http://127.0.0.1:${cports[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${pports[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${pports[$i]}" \
      --initial-cluster "$initial" --initial-cluster-state new > "$WORK/etcd$n-$i.log" 2>&1 &
    PIDS+=($!)
  done
  for i in $(seq 1 "$n"); do wait_port "${cports[$i]}"; done
  local leader=1
  for _ in $(seq 1 100); do
    leader=$(ETCDCTL_API=3 etcdctl --endpoints "$(for i in $(seq 1 "$n"); do echo -n "127.0.0.1:${cports[$i]},"; done)" endpoint status -w json 2>/dev/null \
      | python3 -c 'import json,sys
d=json.load(sys.stdin)
for i,e in enumerate(d):
    if e["Status"]["leader"]==e["Status"]["header"]["member_id"]: print(i+1)' | head -1) || true
    [ -n "$leader" ] && break
    sleep 0.1
  done
  echo -n "etcd $n node(s): "; load etcd "127.0.0.1:${cports[${leader:-1}]}"
}

etcd_cluster 1
ekv_cluster 1
etcd_cluster 3
ekv_cluster 3
