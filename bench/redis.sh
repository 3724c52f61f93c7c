#!/usr/bin/env bash
# redis-benchmark against single-node elastickv and against redis-server,
# side by side in one run: -t set,get,incr,lpush,hset,zadd -P 16 -c 50.
#
# The two servers take turns test by test (redis-server's SET, then
# elastickv's SET, then GET ...), and the whole sequence is repeated
# REPEATS times; the table reports per test the median of each side and the
# median of the per-turn ratios. On a shared, noisy machine (a VM whose
# neighbours come and go) this keeps a slow minute from landing on one side
# only; the spread of the ratios says how much to trust them.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_release_binary
REQUESTS=${REQUESTS:-100000}
REPEATS=${REPEATS:-5}
TESTS=(set get incr lpush hset zadd)

rport=$(free_port); eport=$(free_port); gport=$(free_port)
redis-server --port "$rport" --save '' --appendonly no --daemonize no > "$WORK/redis.log" 2>&1 &
PIDS+=($!)
"$BIN" serve --data-dir "$WORK/ekv" --listen "127.0.0.1:$gport" --redis "127.0.0.1:$eport" --metrics "" > "$WORK/ekv.log" 2>&1 &
PIDS+=($!)
wait_port "$rport"; wait_port "$eport"; wait_leader "127.0.0.1:$gport"

# run PORT TEST: requests per second of one redis-benchmark test.
run() {
  redis-benchmark -p "$1" -t "$2" -n "$REQUESTS" -P 16 -c 50 -r 100000 --csv 2>/dev/null |
    awk -F, 'NR == 2 { gsub(/"/, "", $2); print $2 }'
}
machine
echo "command: redis-benchmark -t <test> -n $REQUESTS -P 16 -c 50 -r 100000, servers alternating per test, $REPEATS rounds"
for _ in $(seq 1 "$REPEATS"); do
  for t in "${TESTS[@]}"; do
    r=$(run "$rport" "$t")
    e=$(run "$eport" "$t")
    echo "$t $r $e" >> "$WORK/turns"
  done
done
python3 - "$WORK/turns" <<'PY'
import statistics, sys
turns = {}
for line in open(sys.argv[1]):
    name, r, e = line.split()
    turns.setdefault(name, []).append((float(r), float(e)))
print("| test | redis-server req/s | elastickv req/s | ratio (median) | ratio range |")
print("|---|---|---|---|---|")
for name, runs in turns.items():
    ratios = [e / r for r, e in runs if r > 0]
    r = statistics.median(r for r, _ in runs)
    e = statistics.median(e for _, e in runs)
    print(f"| {name.upper()} | {r:,.0f} | {e:,.0f} | {statistics.median(ratios):.2f} | {min(ratios):.2f}-{max(ratios):.2f} |")
PY
