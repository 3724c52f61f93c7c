#!/usr/bin/env bash
# snapshot-decode throughput and memory against `tar -x` of the same tree.
#
#   bench/snapshot_decode.sh [BIN] [GEN] [KEYS] [BYTES_PER_KEY] [WORK_PARENT]
#
#   BIN            elastickv binary     [$CARGO_TARGET_DIR/release/elastickv]
#   GEN            snapshot generator   [$CARGO_TARGET_DIR/release/examples/snapshot_gen]
#                  (cargo build --release --bin elastickv --example snapshot_gen)
#   KEYS           Redis keys           [1000000]
#   BYTES_PER_KEY  payload per key      [1100]  (1e6 keys x 1100 B ~ 1.1 GiB .fsm)
#   WORK_PARENT    where the scratch directory goes [${TMPDIR:-/tmp}]
#
# Steps: generate a snapshot of mixed types (strings, HLLs, hashes, lists,
# sets, sorted sets with their score index, streams; overwritten, deleted
# and expiring keys), decode it under /usr/bin/time -v, tar the resulting
# tree, then time `tar -x` of that archive into an empty directory. Both
# runs start from the page cache state the previous step left (input just
# written). Needs about 4x the snapshot size free in WORK_PARENT. Prints
# one summary block; everything is removed afterwards.

set -euo pipefail

TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/elastickv-target}
BIN=${1:-$TARGET/release/elastickv}
GEN=${2:-$TARGET/release/examples/snapshot_gen}
KEYS=${3:-1000000}
PER_KEY=${4:-1100}
PARENT=${5:-${TMPDIR:-/tmp}}

for tool in "$BIN" "$GEN"; do
  if [ ! -x "$tool" ]; then
    echo "missing $tool (cargo build --release --bin elastickv --example snapshot_gen)" >&2
    exit 2
  fi
done
if [ ! -x /usr/bin/time ]; then
  echo "/usr/bin/time (GNU time) is required" >&2
  exit 2
fi

WORK=$(mktemp -d "$PARENT/ekv-decode-bench.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

need_kib=$(( KEYS * PER_KEY * 4 / 1024 ))
free_kib=$(df -Pk "$WORK" | awk 'NR==2 {print $4}')
if [ "$free_kib" -lt "$need_kib" ]; then
  echo "warning: ${free_kib} KiB free in $PARENT, about ${need_kib} KiB needed" >&2
fi

# wall-clock seconds and peak RSS (KiB) from a `time -v` report
wall_s() {
  awk -F': ' '/Elapsed \(wall clock\)/ {
    n = split($2, p, ":"); s = 0
    for (i = 1; i <= n; i++) s = s * 60 + p[i]
    printf "%.2f", s }' "$1"
}
rss_kib() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "generating $KEYS keys x ~$PER_KEY B ..."
fsm_bytes=$("$GEN" "$WORK/in.fsm" "$KEYS" "$PER_KEY")
sync

/usr/bin/time -v -o "$WORK/decode.time" \
  "$BIN" snapshot-decode --input "$WORK/in.fsm" --output "$WORK/tree" --output-format json \
  >"$WORK/summary.json"
sync

tar -cf "$WORK/tree.tar" -C "$WORK/tree" .
sync
mkdir "$WORK/untar"
/usr/bin/time -v -o "$WORK/tar.time" tar -xf "$WORK/tree.tar" -C "$WORK/untar"
sync

files=$(jq .files "$WORK/summary.json")
tree_bytes=$(jq .bytes "$WORK/summary.json")
decoded_keys=$(jq .services.redis.total_keys "$WORK/summary.json")
tar_bytes=$(stat -c %s "$WORK/tree.tar")
decode_s=$(wall_s "$WORK/decode.time")
tar_s=$(wall_s "$WORK/tar.time")
decode_rss=$(rss_kib "$WORK/decode.time")
tar_rss=$(rss_kib "$WORK/tar.time")

echo "snapshot:      $fsm_bytes bytes, $KEYS keys generated, $decoded_keys keys dumped"
echo "tree:          $files files, $tree_bytes bytes (tar archive $tar_bytes bytes)"
echo "decode:        ${decode_s} s wall, peak RSS ${decode_rss} KiB"
echo "tar -x:        ${tar_s} s wall, peak RSS ${tar_rss} KiB"
awk -v d="$decode_s" -v t="$tar_s" -v r="$decode_rss" 'BEGIN {
  ratio = (t > 0) ? d / t : 0
  printf "ratio:         decode / tar-x = %.2f (goal <= 2.00): %s\n", ratio, (ratio <= 2.0 ? "met" : "NOT met")
  printf "memory:        %.1f MiB peak (goal <= 256 MiB): %s\n", r / 1024, (r <= 262144 ? "met" : "NOT met")
}'
jq -c '{versions, redis: .services.redis.keys, skipped: .services.redis.skipped}' "$WORK/summary.json"
