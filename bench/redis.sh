#!/usr/bin/env bash
# redis-benchmark against single-node elastickv and against redis-server,
# side by side in one run: -t set,get,incr,lpush,hset,zadd -P 16 -c 50.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_release_binary
REQUESTS=${REQUESTS:-100000}
TESTS=set,get,incr,lpush,hset,zadd

rport=$(free_port); eport=$(free_port); gport=$(free_port)
redis-server --port "$rport" --save '' --appendonly no --daemonize no > "$WORK/redis.log" 2>&1 &
PIDS+=($!)
"$BIN" serve --data-dir "$WORK/ekv" --listen "127.0.0.1:$gport" --redis "127.0.0.1:$eport" --metrics "" > "$WORK/ekv.log" 2>&1 &
PIDS+=($!)
wait_port "$rport"; wait_port "$eport"; wait_leader "127.0.0.1:$gport"

run() { redis-benchmark -p "$1" -t "$TESTS" -n "$REQUESTS" -P 16 -c 50 -r 100000 --csv 2>/dev/null; }
machine
echo "command: redis-benchmark -t $TESTS -n $REQUESTS -P 16 -c 50 -r 100000"
run "$rport" > "$WORK/redis.csv"
run "$eport" > "$WORK/ekv.csv"
python3 - "$WORK/redis.csv" "$WORK/ekv.csv" <<'PY'
import csv, sys
def load(p):
    rows = list(csv.reader(open(p)))
    return {r[0]: float(r[1]) for r in rows[1:] if len(r) > 1}
redis, ekv = load(sys.argv[1]), load(sys.argv[2])
print(f"| test | redis-server req/s | elastickv req/s | ratio |")
print(f"|---|---|---|---|")
for name, r in redis.items():
    e = ekv.get(name, 0.0)
    print(f"| {name} | {r:,.0f} | {e:,.0f} | {e / r:.2f} |")
PY
