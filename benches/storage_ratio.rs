//! The issue-2 ratios (store throughput / raw RocksDB throughput for point
//! get, multi-get of 32 keys and a 1 000-row scan), measured interleaved:
//! each turn times a batch of store calls and a batch of raw calls, back to
//! back and in alternating order, and the ratio of the two is taken per
//! turn. The two batches draw their own random inputs from the same
//! distribution (on shared inputs the second batch would find the first
//! one's blocks in the CPU caches), after a warm-up pass that brings every
//! block into RocksDB's block cache, as in the criterion bench. On a shared machine whose speed drifts by
//! tens of percent within minutes (bench/RESULTS.md), separate measurement
//! windows — criterion's groups — compare the store in one window with
//! RocksDB in another; per-turn ratios cancel the drift. Prints the median
//! and the interquartile range of the ratios.
//!
//! `cargo bench --bench storage_ratio` (TURNS=n overrides the turn count).

mod support;

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::*;

/// Point gets per side and turn; multi-gets and scans cost more per call
/// and get fewer.
const BATCH: usize = 2_000;

/// The user keys of one multi-get and their physical keys.
type KeySet = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// Seconds the store batch and the raw batch of one turn took.
fn turn<I>(
    store_inputs: &[I],
    raw_inputs: &[I],
    store: impl Fn(&I),
    raw: impl Fn(&I),
    raw_first: bool,
) -> (f64, f64) {
    let time = |inputs: &[I], f: &dyn Fn(&I)| {
        let started = Instant::now();
        inputs.iter().for_each(f);
        started.elapsed().as_secs_f64()
    };
    if raw_first {
        let r = time(raw_inputs, &raw);
        (time(store_inputs, &store), r)
    } else {
        let s = time(store_inputs, &store);
        (s, time(raw_inputs, &raw))
    }
}

fn report(name: &str, mut ratios: Vec<f64>) {
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<14} store/raw throughput: median {:.2}  (quartiles {:.2}-{:.2}, {} turns)",
        at(0.5),
        at(0.25),
        at(0.75),
        ratios.len()
    );
}

fn main() {
    // `cargo test --benches` runs bench binaries with no `--bench` flag:
    // there is nothing to test here.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let turns: usize = std::env::var("TURNS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(60);
    let (_dir, store) = setup(0);
    // Warm-up: every data block into the block cache.
    for start in (0..KEYS - 1_000).step_by(1_000) {
        raw_scan(&store, start);
    }
    let mut rng = StdRng::seed_from_u64(7);
    let (mut point, mut multi, mut scan) = (Vec::new(), Vec::new(), Vec::new());
    for t in 0..turns {
        let raw_first = t % 2 == 1;
        let (store_keys, raw_keys) = (random_keys(&mut rng, BATCH), random_keys(&mut rng, BATCH));
        let (s, r) = turn(
            &store_keys,
            &raw_keys,
            |k| store_point_get(&store, k),
            |k| raw_point_get(&store, k),
            raw_first,
        );
        point.push(r / s);

        let mut key_sets = |n| -> Vec<KeySet> {
            (0..n)
                .map(|_| {
                    let keys = random_keys(&mut rng, 32);
                    let physical = physical_keys(&keys);
                    (keys, physical)
                })
                .collect()
        };
        let (store_sets, raw_sets) = (key_sets(BATCH / 20), key_sets(BATCH / 20));
        let (s, r) = turn(
            &store_sets,
            &raw_sets,
            |(keys, _)| store_multi_get(&store, keys),
            |(_, physical)| raw_multi_get(&store, physical),
            raw_first,
        );
        multi.push(r / s);

        let mut starts =
            |n| -> Vec<u64> { (0..n).map(|_| rng.random_range(0..KEYS - 1_000)).collect() };
        let (store_starts, raw_starts) = (starts(BATCH / 100), starts(BATCH / 100));
        let (s, r) = turn(
            &store_starts,
            &raw_starts,
            |&start| store_scan(&store, start),
            |&start| raw_scan(&store, start),
            raw_first,
        );
        scan.push(r / s);
    }
    report("point get", point);
    report("multi-get 32", multi);
    report("scan 1000", scan);
}
