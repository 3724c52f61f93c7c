# elastickv — build, run and test entry points.
#
#   make run    single-node `serve` with the default data dir (./elastickv-data)
#   make test   fmt check + clippy -D warnings + the whole test suite
#   make bench  criterion benchmarks and the scripts under bench/
#   make man    regenerate the committed man pages under man/
#
# An existing CARGO_TARGET_DIR is honoured; otherwise builds go to a cache
# outside the work tree so a kept machine rebuilds fast.

SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(HOME)/.cache/elastickv-target
export CARGO_TERM_COLOR ?= never

.PHONY: all deps run test lint unit bench man clean

all: test

# System packages the build and the tests need, installed only when missing.
# libclang/clang: RocksDB's bindings; redis-server/redis-tools: differential
# and client tests; jq: format tests; python3 redis: redis-py client tests.
deps:
	@bash scripts/deps.sh

run: deps
	$(CARGO) build --release --bin elastickv
	$(CARGO_TARGET_DIR)/release/elastickv serve

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

unit: deps
	$(CARGO) test --all-targets
	$(CARGO) test --doc

test: lint unit

bench: deps
	@bash scripts/deps.sh bench
	$(CARGO) bench --bench storage
	$(CARGO) bench --bench storage_ratio
	$(CARGO) build --release --bin elastickv --example snapshot_gen
	bench/replication.sh
	bench/redis.sh
	bench/snapshot_decode.sh

man: deps
	ELASTICKV_UPDATE_MAN=1 $(CARGO) test --test cli_man

clean:
	$(CARGO) clean
