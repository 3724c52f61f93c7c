#!/usr/bin/env bash
# Key creation: every command of the run names a new key. For each test
# and repetition, every build in turn gets a fresh node and one
# redis-benchmark run over a keyspace of 100 000 000 (so nearly every SET
# or INCR creates its key). Prints the requests per second per run, then
# the median per build.
#
# usage: FK_TESTS="set incr" REQUESTS=1500000 REPEATS=2 bench/fresh_keys.sh BIN_A [BIN_B...]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
REQUESTS=${REQUESTS:-1500000}
REPEATS=${REPEATS:-2}
read -r -a TESTS <<< "${FK_TESTS:-set incr}"
if [ "$#" -lt 1 ]; then
  echo "usage: $0 BIN_A [BIN_B...]" >&2
  exit 2
fi

machine
echo "command: redis-benchmark -t <test> -n $REQUESTS -P 16 -c 50 -r 100000000 on a fresh node, $REPEATS repetitions"
for t in "${TESTS[@]}"; do
  for _ in $(seq 1 "$REPEATS"); do
    i=0
    for bin in "$@"; do
      i=$((i + 1))
      port=$(free_port); gport=$(free_port)
      dir="$WORK/node-$i-$t"
      rm -rf "$dir"
      "$bin" serve --data-dir "$dir" --listen "127.0.0.1:$gport" --redis "127.0.0.1:$port" --metrics "" > "$WORK/log-$i" 2>&1 &
      pid=$!
      PIDS+=("$pid")
      wait_port "$port"
      # Writable once the single node leads its group (bounded wait).
      for _ in $(seq 1 100); do
        [ "$(redis-cli -p "$port" SET fresh-keys:ready 1 2>/dev/null)" = "OK" ] && break
        sleep 0.1
      done
      rps=$(redis-benchmark -p "$port" -t "$t" -n "$REQUESTS" -P 16 -c 50 -r 100000000 --csv 2>/dev/null |
        awk -F, 'NR == 2 { gsub(/"/, "", $2); print $2 }')
      echo "$t build$i $rps"
      echo "$t $i $rps" >> "$WORK/runs"
      kill "$pid"; wait "$pid" 2>/dev/null || true
    done
  done
done
python3 - "$WORK/runs" "$@" <<'PY'
import statistics, sys
runs, bins = {}, sys.argv[2:]
for line in open(sys.argv[1]):
    t, i, rps = line.split()
    runs.setdefault(t, {}).setdefault(int(i), []).append(float(rps))
print("| test | " + " | ".join(f"build{i + 1} req/s" for i in range(len(bins))) + " |")
print("|---|" + "---|" * len(bins))
for t, by_build in runs.items():
    cells = " | ".join(f"{statistics.median(by_build[i + 1]):,.0f}" for i in range(len(bins)))
    print(f"| {t.upper()} | {cells} |")
for i, b in enumerate(bins):
    print(f"build{i + 1} = {b}")
PY
