#!/usr/bin/env bash
# Where a Redis write's time goes on a single-node elastickv, read from the
# server's own Prometheus metrics around one redis-benchmark run per test:
# commands per write-combiner round, a round's duration (execution,
# replication, apply), and per Raft Ready step (log append, apply) the wall
# time, the Raft thread's CPU time and the entries handled. Wall time above
# CPU time is waiting (for the log fsync, mostly).
#
# TESTS (default "set incr hset zadd"), REQUESTS (default 300000) and the
# redis-benchmark shape (-P 16 -c 50 -r 100000, as bench/redis.sh) apply;
# every test runs on a fresh node.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_release_binary
REQUESTS=${REQUESTS:-300000}
read -r -a TESTS <<< "${TESTS:-set incr hset zadd}"

# scrape PORT FILE: the metrics the report needs, one "name{labels} value"
# per line.
scrape() {
  curl -fsS "http://127.0.0.1:$1/metrics" |
    grep -E '^elastickv_(raft_(log_append|apply)_duration_seconds_(sum|count)|raft_thread_cpu_seconds_total|raft_step_entries_total|redis_write_round_(commands|duration_seconds)_(sum|count))' > "$2"
}

machine
echo "command: redis-benchmark -t <test> -n $REQUESTS -P 16 -c 50 -r 100000, fresh node per test"
for t in "${TESTS[@]}"; do
  eport=$(free_port); gport=$(free_port); mport=$(free_port)
  "$BIN" serve --data-dir "$WORK/ekv-$t" --listen "127.0.0.1:$gport" --redis "127.0.0.1:$eport" \
    --metrics "127.0.0.1:$mport" > "$WORK/ekv-$t.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_port "$eport"; wait_leader "127.0.0.1:$gport"; wait_port "$mport"
  # A warm-up of a tenth of the run, so the counters see a running node.
  redis-benchmark -p "$eport" -t "$t" -n $((REQUESTS / 10)) -P 16 -c 50 -r 100000 -q > /dev/null
  scrape "$mport" "$WORK/before"
  rps=$(redis-benchmark -p "$eport" -t "$t" -n "$REQUESTS" -P 16 -c 50 -r 100000 --csv 2>/dev/null |
    awk -F, 'NR == 2 { gsub(/"/, "", $2); print $2 }')
  scrape "$mport" "$WORK/after"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  python3 - "$t" "$rps" "$WORK/before" "$WORK/after" <<'PY'
import sys
test, rps, before, after = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
def load(path):
    out = {}
    for line in open(path):
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out
b, a = load(before), load(after)
d = lambda name: a.get(name, 0.0) - b.get(name, 0.0)
g = 'group="1"'
rounds = d("elastickv_redis_write_round_commands_count")
cmds = d("elastickv_redis_write_round_commands_sum")
round_s = d("elastickv_redis_write_round_duration_seconds_sum")
appends = d(f"elastickv_raft_log_append_duration_seconds_count{{{g}}}")
append_s = d(f"elastickv_raft_log_append_duration_seconds_sum{{{g}}}")
applies = d(f"elastickv_raft_apply_duration_seconds_count{{{g}}}")
apply_s = d(f"elastickv_raft_apply_duration_seconds_sum{{{g}}}")
append_cpu = d(f'elastickv_raft_thread_cpu_seconds_total{{{g},step="log_append"}}')
apply_cpu = d(f'elastickv_raft_thread_cpu_seconds_total{{{g},step="apply"}}')
if not rounds or not appends or not applies or not cmds:
    sys.exit(f"{test}: no rounds or Raft steps were recorded")
us = 1e6
print(f"{test}: {rps:,.0f} req/s; {cmds / rounds:.0f} commands a round, a round {round_s / rounds * us:.0f} us; "
      f"per Ready: log append {append_s / appends * us:.0f} us (CPU {append_cpu / appends * us:.0f}), "
      f"apply {apply_s / applies * us:.0f} us (CPU {apply_cpu / applies * us:.0f}); "
      f"Raft thread per command: append {append_s / cmds * us:.2f} us, apply CPU {apply_cpu / cmds * us:.2f} us")
PY
done
