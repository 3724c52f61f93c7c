# Shared helpers for the bench scripts (sourced). Everything runs on
# loopback, with bounded request counts, and cleans up after itself.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/elastickv-target}
BIN=${ELASTICKV_BIN:-$TARGET/release/elastickv}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

need_release_binary() {
  if [ ! -x "$BIN" ]; then
    (cd "$ROOT" && cargo build --release --bin elastickv) >&2
  fi
}

# wait_leader ADDR: poll `status` until a leader is known (bounded).
wait_leader() {
  for _ in $(seq 1 200); do
    "$BIN" status --endpoint "$1" --output json 2>/dev/null | grep -q '"lease_valid":true' && return 0
    "$BIN" status --endpoint "$1" --output json 2>/dev/null | grep -q '"leader":[1-9]' && return 0
    sleep 0.1
  done
  echo "no leader at $1" >&2
  return 1
}

wait_port() {
  for _ in $(seq 1 200); do
    (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "port $1 never opened" >&2
  return 1
}

# start_node BIN DIR PORT GPORT: a single-node `serve` of BIN with its data
# in DIR (log in DIR.log), Redis on PORT and gRPC on GPORT, in the
# background; returns once the Redis port accepts connections. Sets
# NODE_PID (also killed on exit).
start_node() {
  "$1" serve --data-dir "$2" --listen "127.0.0.1:$4" --redis "127.0.0.1:$3" --metrics "" > "$2.log" 2>&1 &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  wait_port "$3"
}

# wait_writable PORT: poll (bounded) until the node's group takes a write.
wait_writable() {
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$1" SET bench:ready 1 2>/dev/null)" = "OK" ] && return 0
    sleep 0.1
  done
  echo "port $1 never took a write" >&2
  return 1
}

machine() {
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(date -u +%Y-%m-%d)"
}
