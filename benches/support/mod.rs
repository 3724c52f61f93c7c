//! What the storage benchmarks share: the loaded store, and each measured
//! read as a pair — the store's call and the raw RocksDB calls doing the
//! same physical work on the same database — so the criterion bench and the
//! interleaved ratio bench time exactly the same code.

#![allow(dead_code)] // each bench binary uses its own subset

use std::hint::black_box;

use elastickv::storage::{
    Cf, Direction, GroupStore, Mutation, ScanRequest, StoreOptions, WriteIntent, encode_data_key,
};
use rand::Rng;
use rand::rngs::StdRng;
use rocksdb::ReadOptions;

pub const KEYS: u64 = 100_000;
pub const LOAD_TS: u64 = 100;
pub const VALUE_LEN: usize = 100;
/// Every version is visible here.
pub const READ_TS: u64 = 1_000;

pub fn user_key(i: u64) -> Vec<u8> {
    format!("user{i:010}").into_bytes()
}

/// A store loaded with `KEYS` keys of one version each, flushed to files;
/// `row_cache_bytes` 0 compares the RocksDB read path itself with raw
/// RocksDB.
pub fn setup(row_cache_bytes: usize) -> (tempfile::TempDir, GroupStore) {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        sync_writes: false,
        block_cache_bytes: 256 << 20,
        create_if_missing: true,
        row_cache_bytes,
    };
    let store = GroupStore::open(dir.path(), opts).unwrap();
    load(&store, (0..KEYS).map(user_key), &[7u8; VALUE_LEN], LOAD_TS);
    (dir, store)
}

/// Writes `value` under every key of `keys` at `commit_ts` (batches of
/// 1 000), then flushes the data column family to files.
pub fn load(store: &GroupStore, keys: impl Iterator<Item = Vec<u8>>, value: &[u8], commit_ts: u64) {
    let keys: Vec<Vec<u8>> = keys.collect();
    for chunk in keys.chunks(1000) {
        let intent = WriteIntent {
            start_ts: commit_ts - 1,
            commit_ts,
            mutations: chunk
                .iter()
                .map(|key| Mutation::Put {
                    key: key.clone(),
                    value: value.to_vec(),
                    expire_at: 0,
                })
                .collect(),
            ..WriteIntent::default()
        };
        store.apply(&intent).unwrap();
    }
    store.db().flush_cf(store.cf(Cf::Data).unwrap()).unwrap();
}

pub fn random_keys(rng: &mut StdRng, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| user_key(rng.random_range(0..KEYS)))
        .collect()
}

/// The physical keys of `user_keys`' loaded versions (what a raw `Get`
/// must name; the store cannot, it does not know the version).
pub fn physical_keys(user_keys: &[Vec<u8>]) -> Vec<Vec<u8>> {
    user_keys
        .iter()
        .map(|k| encode_data_key(k, LOAD_TS))
        .collect()
}

pub fn store_point_get(store: &GroupStore, key: &[u8]) {
    black_box(store.get(key, READ_TS).unwrap());
}

pub fn raw_point_get(store: &GroupStore, key: &[u8]) {
    let data = store.cf(Cf::Data).unwrap();
    let phys = encode_data_key(key, LOAD_TS);
    black_box(
        store
            .db()
            .get_pinned_cf(data, phys)
            .unwrap()
            .map(|v| v.len()),
    );
}

pub fn store_multi_get(store: &GroupStore, keys: &[Vec<u8>]) {
    black_box(store.multi_get(keys, READ_TS).unwrap());
}

pub fn raw_multi_get(store: &GroupStore, physical: &[Vec<u8>]) {
    let data = store.cf(Cf::Data).unwrap();
    black_box(store.db().batched_multi_get_cf(data, physical, false).len());
}

pub fn store_scan(store: &GroupStore, start: u64) {
    let req = ScanRequest {
        start: user_key(start),
        end: None,
        read_ts: READ_TS,
        limit: 1_000,
        direction: Direction::Forward,
        resume: None,
        keys_only: false,
    };
    black_box(store.scan(&req).unwrap().rows.len());
}

pub fn raw_scan(store: &GroupStore, start: u64) {
    let data = store.cf(Cf::Data).unwrap();
    let mut ro = ReadOptions::default();
    ro.set_total_order_seek(true);
    let mut it = store.db().raw_iterator_cf_opt(data, ro);
    it.seek(encode_data_key(&user_key(start), LOAD_TS));
    let mut rows = Vec::with_capacity(1_000);
    while rows.len() < 1_000 {
        let Some((k, v)) = it.item() else { break };
        rows.push((k.to_vec(), v.to_vec()));
        it.next();
    }
    black_box(rows.len());
}
