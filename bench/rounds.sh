#!/usr/bin/env bash
# Steady state of one elastickv node under bench/redis.sh's load: ROUNDS
# rounds of the redis-benchmark tests on ONE node that keeps its data, as
# bench/redis.sh runs them. Prints per test and round the requests per
# second and the CPU milliseconds each busy thread used during it (the
# tokio workers, the Raft thread `raft-g1`, RocksDB's flush `rocksdb:high`
# and compaction `rocksdb:low` threads; threads under 40 ms are left out),
# then the requests per second of each test by round, to show whether the
# node slows as its database grows.
#
# usage: ROUNDS=5 RTESTS="set get incr lpush hset zadd" REQUESTS=100000 bench/rounds.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_release_binary
ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-100000}
read -r -a TESTS <<< "${RTESTS:-set get incr lpush hset zadd}"

port=$(free_port); gport=$(free_port)
start_node "$BIN" "$WORK/ekv" "$port" "$gport"
pid=$NODE_PID
wait_leader "127.0.0.1:$gport"

# threads: "name-tid cpu_ns" per thread of the server, sorted for join.
threads() {
  for t in /proc/"$pid"/task/*; do
    echo "$(tr ' ' '_' < "$t/comm")-$(basename "$t") $(awk '{print $1}' "$t/schedstat")"
  done | sort
}

machine
echo "command: redis-benchmark -t <test> -n $REQUESTS -P 16 -c 50 -r 100000 on one node, $ROUNDS rounds"
for r in $(seq 1 "$ROUNDS"); do
  for t in "${TESTS[@]}"; do
    threads > "$WORK/before"
    rps=$(redis-benchmark -p "$port" -t "$t" -n "$REQUESTS" -P 16 -c 50 -r 100000 --csv 2>/dev/null |
      awk -F, 'NR == 2 { gsub(/"/, "", $2); print $2 }')
    threads > "$WORK/after"
    cpu=$(join "$WORK/before" "$WORK/after" | awk '{
      ms = ($3 - $2) / 1e6; name = $1; sub(/-[0-9]+$/, "", name)
      if (ms >= 40) printf "%s=%.0f ", name, ms }')
    echo "round $r $t $rps cpu_ms: $cpu"
    echo "$t $r $rps" >> "$WORK/table"
  done
done
python3 - "$WORK/table" "$ROUNDS" <<'PY'
import sys
rows, rounds = {}, int(sys.argv[2])
for line in open(sys.argv[1]):
    name, r, rps = line.split()
    rows.setdefault(name, {})[int(r)] = float(rps)
print("| test | " + " | ".join(f"round {r}" for r in range(1, rounds + 1)) + " |")
print("|---|" + "---|" * rounds)
for name, by_round in rows.items():
    cells = " | ".join(f"{by_round.get(r, 0) / 1000:,.0f} k" for r in range(1, rounds + 1))
    print(f"| {name.upper()} | {cells} |")
PY
