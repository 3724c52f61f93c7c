#!/usr/bin/env bash
# Installs the system packages elastickv's build and tests need, only when
# missing, on a Debian machine. Safe to run repeatedly.
set -euo pipefail

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_libclang() { ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; }

have_libclang || need+=(libclang-dev)
have_cmd clang || need+=(clang)
have_cmd redis-server || need+=(redis-server)
have_cmd redis-cli || need+=(redis-tools)
have_cmd redis-benchmark || need+=(redis-tools)
have_cmd jq || need+=(jq)
have_cmd python3 || need+=(python3)
# Benchmarks compare against etcd (`scripts/deps.sh bench`).
if [ "${1:-}" = bench ]; then
  have_cmd etcd || need+=(etcd-server)
  have_cmd etcdctl || need+=(etcd-client)
fi

if ((${#need[@]})); then
  echo "deps: installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# redis-py for client tests.
if ! python3 -c 'import redis' >/dev/null 2>&1; then
  echo "deps: installing python redis client" >&2
  python3 -m pip install --quiet --disable-pip-version-check 'redis>=5' ||
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages 'redis>=5'
fi

# grpcio (+ grpcio-tools for its protoc) for bench/kv_load.py, the one load
# generator that drives both etcd and elastickv in bench/replication.sh.
if [ "${1:-}" = bench ] && ! python3 -c 'import grpc, grpc_tools' >/dev/null 2>&1; then
  echo "deps: installing python grpcio for the replication benchmark" >&2
  python3 -m pip install --quiet --disable-pip-version-check grpcio grpcio-tools ||
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages grpcio grpcio-tools
fi
