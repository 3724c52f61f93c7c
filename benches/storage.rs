//! Storage benchmarks: each store operation beside the raw RocksDB calls that
//! do the same physical work, on the same database (same options, same data):
//! point get, multi-get of 32 keys, a 1 000-row scan, and a 100-key batched
//! put. Goal: store gets and scans ≥ 0.7× raw throughput. The store under
//! comparison runs without its newest-version cache; a separate group shows
//! the same gets with it.

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use elastickv::model::redis::{Body, layout};
use elastickv::storage::{Cf, GroupStore, Mutation, StoreOptions, WriteIntent, encode_data_key};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rocksdb::{WriteBatch, WriteOptions};
use support::*;

fn benches(c: &mut Criterion) {
    let (_dir, store) = setup(0);
    let data = store.cf(Cf::Data).unwrap();
    let db = store.db();
    let mut rng = StdRng::seed_from_u64(7);

    let mut g = c.benchmark_group("point_get");
    g.bench_function("store", |b| {
        b.iter(|| store_point_get(&store, &user_key(rng.random_range(0..KEYS))))
    });
    g.bench_function("raw", |b| {
        b.iter(|| raw_point_get(&store, &user_key(rng.random_range(0..KEYS))))
    });
    g.finish();

    let mut g = c.benchmark_group("multi_get_32");
    g.bench_function("store", |b| {
        b.iter_batched(
            || random_keys(&mut rng, 32),
            |keys| store_multi_get(&store, &keys),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("raw", |b| {
        b.iter_batched(
            || physical_keys(&random_keys(&mut rng, 32)),
            |physical| raw_multi_get(&store, &physical),
            BatchSize::SmallInput,
        )
    });
    g.finish();

    // The same reads with the newest-version cache on (warm after the
    // first pass over the keys): what a node serving hot keys sees.
    let (_cached_dir, cached) = setup(64 << 20);
    let mut g = c.benchmark_group("row_cache");
    g.bench_function("point_get", |b| {
        b.iter(|| store_point_get(&cached, &user_key(rng.random_range(0..KEYS))))
    });
    g.bench_function("multi_get_32", |b| {
        b.iter_batched(
            || random_keys(&mut rng, 32),
            |keys| store_multi_get(&cached, &keys),
            BatchSize::SmallInput,
        )
    });
    g.finish();
    drop(cached);

    let mut g = c.benchmark_group("scan_1000");
    g.bench_function("store", |b| {
        b.iter(|| store_scan(&store, rng.random_range(0..KEYS - 1_000)))
    });
    g.bench_function("raw", |b| {
        b.iter(|| raw_scan(&store, rng.random_range(0..KEYS - 1_000)))
    });
    g.finish();

    let mut g = c.benchmark_group("batched_put_100");
    let mut next_ts = LOAD_TS + 1;
    let value = vec![9u8; VALUE_LEN];
    g.bench_function("store", |b| {
        b.iter(|| {
            next_ts += 1;
            let intent = WriteIntent {
                start_ts: next_ts - 1,
                commit_ts: next_ts,
                mutations: (0..100)
                    .map(|_| Mutation::Put {
                        key: user_key(rng.random_range(0..KEYS)),
                        value: value.clone(),
                        expire_at: 0,
                    })
                    .collect(),
                ..WriteIntent::default()
            };
            black_box(store.apply(&intent).unwrap())
        })
    });
    g.bench_function("raw", |b| {
        let mut wo = WriteOptions::default();
        wo.set_sync(false);
        b.iter(|| {
            next_ts += 1;
            let mut batch = WriteBatch::default();
            for _ in 0..100 {
                batch.put_cf(
                    data,
                    encode_data_key(&user_key(rng.random_range(0..KEYS)), next_ts),
                    &value,
                );
            }
            db.write_opt(batch, &wo).unwrap();
        })
    });
    g.finish();
}

/// Keys a `redis_set_round` draws from; the first half exist before it runs.
const REDIS_KEYSPACE: u64 = 200_000;
/// SETs in one combined write round (what the Redis combiner commits as one
/// Raft entry under redis-benchmark -P 16 -c 50).
const REDIS_ROUND: usize = 256;

fn redis_meta_key(i: u64) -> Vec<u8> {
    layout::meta_key(format!("key:{i:012}").as_bytes())
}

/// The apply of one combined round of Redis SETs, as the Raft thread runs
/// it: a SET of a key that does not exist range-deletes the key's rows
/// first (an expired collection may have left member rows), a SET of an
/// existing string rewrites its META row; every META row read is validated
/// against a round still in flight. No Raft, no fsync: this isolates the
/// apply's CPU, the part of a write that the Raft thread serialises.
fn redis_set_round(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = GroupStore::open(
        dir.path(),
        StoreOptions {
            sync_writes: false,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let body = Body::String(b"xxx".to_vec()).encode();
    load(
        &store,
        (0..REDIS_KEYSPACE / 2).map(redis_meta_key),
        &body,
        LOAD_TS,
    );
    let mut exists = vec![false; REDIS_KEYSPACE as usize];
    exists[..(REDIS_KEYSPACE / 2) as usize].fill(true);
    // The first round reads at the load's commit, not below it.
    let mut ts = LOAD_TS + 1;
    let mut rng = StdRng::seed_from_u64(11);
    let mut g = c.benchmark_group("redis_set_round");
    g.throughput(criterion::Throughput::Elements(REDIS_ROUND as u64));
    g.bench_function("apply_256", |b| {
        b.iter_batched(
            || {
                ts += 1;
                let mut picked: Vec<u64> = (0..REDIS_ROUND)
                    .map(|_| rng.random_range(0..REDIS_KEYSPACE))
                    .collect();
                picked.sort_unstable();
                picked.dedup();
                let read_keys: Vec<Vec<u8>> = picked.iter().map(|&i| redis_meta_key(i)).collect();
                // The SETs' META reads, as the Redis workers make them
                // before the round is proposed (they fill the row cache
                // that validation then consults).
                black_box(store.multi_get(&read_keys, ts - 2).unwrap());
                let mut ranges = Vec::new();
                let mut puts = Vec::new();
                for (&i, key) in picked.iter().zip(&read_keys) {
                    if !exists[i as usize] {
                        let mut end = key.clone();
                        *end.last_mut().unwrap() += 1;
                        ranges.push(Mutation::DeleteRange {
                            start: key.clone(),
                            end: Some(end),
                        });
                        exists[i as usize] = true;
                    }
                    puts.push(Mutation::Put {
                        key: key.clone(),
                        value: body.clone(),
                        expire_at: 0,
                    });
                }
                WriteIntent {
                    // Read at the commit of the round before the one in flight.
                    start_ts: ts - 2,
                    commit_ts: ts,
                    validate: true,
                    read_keys,
                    mutations: ranges.into_iter().chain(puts).collect(),
                    ..WriteIntent::default()
                }
            },
            |intent| black_box(store.apply(&intent).unwrap()),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group! {
    name = storage;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    targets = benches, redis_set_round
}
criterion_main!(storage);
