#!/usr/bin/env bash
# A/B of elastickv builds on warm single nodes: for each test and each
# repetition, every build in turn gets a fresh node, one unmeasured
# redis-benchmark run of the test (so the keys exist, as they do after a
# while on a real node), then the same run again, measured. Prints per run
# the requests per second and the server's CPU time per request (user +
# system of the whole process, from /proc), then the median per build.
#
# usage: AB_TESTS="hset incr" REQUESTS=300000 REPEATS=3 bench/ab_warm.sh BIN_A BIN_B [BIN...]
#
# Key creation instead (every command a new key, no warm-up run):
#   WARMUP=0 KEYSPACE=100000000 AB_TESTS="set incr" REQUESTS=1500000 bench/ab_warm.sh BIN_A BIN_B
#
# Builds alternate run by run, so a slow minute of a shared machine lands
# on every build alike; compare the medians and look at the spread.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
REQUESTS=${REQUESTS:-300000}
REPEATS=${REPEATS:-3}
WARMUP=${WARMUP:-1}
KEYSPACE=${KEYSPACE:-100000}
read -r -a TESTS <<< "${AB_TESTS:-set incr hset zadd lpush}"
if [ "$#" -lt 2 ]; then
  echo "usage: $0 BIN_A BIN_B [BIN...]" >&2
  exit 2
fi
TICKS=$(getconf CLK_TCK)

# cpu_ticks PID: user + system clock ticks of the process so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() {
  redis-benchmark -p "$1" -t "$2" -n "$REQUESTS" -P 16 -c 50 -r "$KEYSPACE" --csv 2>/dev/null |
    awk -F, 'NR == 2 { gsub(/"/, "", $2); print $2 }'
}

machine
echo "command: redis-benchmark -t <test> -n $REQUESTS -P 16 -c 50 -r $KEYSPACE ($WARMUP warm-up runs first), $REPEATS repetitions"
for t in "${TESTS[@]}"; do
  for _ in $(seq 1 "$REPEATS"); do
    i=0
    for bin in "$@"; do
      i=$((i + 1))
      port=$(free_port); gport=$(free_port)
      dir="$WORK/node-$i-$t"
      start_node "$bin" "$dir" "$port" "$gport"
      pid=$NODE_PID
      wait_writable "$port"
      for _ in $(seq 1 "$WARMUP"); do run "$port" "$t" > /dev/null; done
      before=$(cpu_ticks "$pid")
      rps=$(run "$port" "$t")
      after=$(cpu_ticks "$pid")
      kill "$pid"; wait "$pid" 2>/dev/null || true
      rm -rf "$dir"
      cpu=$(python3 -c "print(f'{($after - $before) / $TICKS * 1e6 / $REQUESTS:.2f}')")
      echo "$t build$i $rps $cpu" | tee -a "$WORK/runs"
    done
  done
done
python3 - "$WORK/runs" "$@" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    test, build, rps, cpu = line.split()
    runs.setdefault((test, build), []).append((float(rps), float(cpu)))
builds = sys.argv[2:]
print("| test | " + " | ".join(f"build{i + 1} req/s (CPU µs/req)" for i in range(len(builds))) + " |")
print("|---" * (len(builds) + 1) + "|")
for test in dict.fromkeys(t for t, _ in runs):
    cells = []
    for i in range(len(builds)):
        r = runs.get((test, f"build{i + 1}"), [])
        cells.append(f"{statistics.median(x for x, _ in r):,.0f} ({statistics.median(c for _, c in r):.2f})" if r else "-")
    print(f"| {test.upper()} | " + " | ".join(cells) + " |")
for i, b in enumerate(builds):
    print(f"build{i + 1} = {b}")
PY
