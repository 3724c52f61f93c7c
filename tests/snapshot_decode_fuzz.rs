//! Fuzzing the snapshot decoder on stable: valid `.fsm` files holding Redis
//! rows (well-formed and garbage META and member rows, versions, tombstones,
//! lock and meta records) are damaged by random mutations and decoded, both
//! to records and to a whole tree. The decoder must never panic, never make
//! an allocation the input does not back (a global allocator records the
//! largest single allocation on the test's thread), report every mutated
//! file as an error, and leave no output behind when it fails.
//!
//! Longer runs with libFuzzer: `fuzz/fuzz_targets/snapshot_decode.rs`.

#[path = "support/peak_alloc.rs"]
mod peak_alloc;

use std::path::Path;

use elastickv::backup::decode::DecodePlan;
use elastickv::backup::tree::TreeReader;
use elastickv::model::redis::backup_decode::{RedisSnapshotDecoder, read_snapshot_records};
use elastickv::model::redis::layout::{
    TAG_HASH, TAG_LIST, TAG_SET, TAG_STREAM, TAG_ZINDEX, TAG_ZMEMBER, member_key, meta_key,
};
use elastickv::model::redis::{Body, StreamMeta};
use elastickv::snapshot::{SnapshotHeader, SnapshotWriter};
use elastickv::storage::keys::encode_data_key;
use elastickv::storage::value::{encode_put, encode_tombstone};
use elastickv::storage::{Cf, encode_lock_key};
use proptest::prelude::*;
use proptest::sample::Index;

/// The decoder's one large allocation is its 1 MiB read buffer; inputs here
/// are a few KiB, while the length prefixes mutations forge claim up to the
/// 512 MiB value cap and stream-entry counts up to four billion items.
const ALLOCATION_BOUND: usize = 1 << 20;

/// One row of a generated snapshot.
#[derive(Debug, Clone)]
enum Row {
    Meta(u8, Body, u64),
    Member(u8, u8, Vec<u8>, Vec<u8>),
    Garbage(Vec<u8>, Vec<u8>),
}

fn arb_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Body::String),
        (0u64..4).prop_map(|count| Body::Hash { count }),
        (0u64..4).prop_map(|count| Body::Set { count }),
        (0u64..4).prop_map(|count| Body::ZSet { count }),
        (-2i64..2, 0i64..3).prop_map(|(head, len)| Body::List {
            head,
            tail: head + len
        }),
        (0u64..3, 0u64..9).prop_map(|(length, ms)| Body::Stream(StreamMeta {
            length,
            last_id: (ms, 0),
            ..StreamMeta::default()
        })),
    ]
}

fn arb_row() -> impl Strategy<Value = Row> {
    let tags = prop_oneof![
        Just(TAG_HASH),
        Just(TAG_SET),
        Just(TAG_ZMEMBER),
        Just(TAG_ZINDEX),
        Just(TAG_LIST),
        Just(TAG_STREAM),
        any::<u8>()
    ];
    prop_oneof![
        (0u8..4, arb_body(), prop_oneof![Just(0u64), 1u64..100])
            .prop_map(|(k, b, e)| Row::Meta(k, b, e)),
        (
            0u8..4,
            tags,
            proptest::collection::vec(any::<u8>(), 0..17),
            proptest::collection::vec(any::<u8>(), 0..20)
        )
            .prop_map(|(k, t, s, v)| Row::Member(k, t, s, v)),
        (
            proptest::collection::vec(any::<u8>(), 0..10),
            proptest::collection::vec(any::<u8>(), 0..20)
        )
            .prop_map(|(k, v)| Row::Garbage(k, v)),
    ]
}

fn redis_key(k: u8) -> Vec<u8> {
    vec![b'k', k, 0]
}

/// A valid file holding `rows` at `versions` commit timestamps.
fn valid_file(rows: &[(Row, u64, bool)], last_commit_ts: u64) -> Vec<u8> {
    let mut data: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (row, ts, tombstone) in rows {
        let (user_key, body, expire_at) = match row {
            Row::Meta(k, body, expire_at) => (meta_key(&redis_key(*k)), body.encode(), *expire_at),
            Row::Member(k, tag, suffix, value) => {
                (member_key(&redis_key(*k), *tag, suffix), value.clone(), 0)
            }
            Row::Garbage(key, value) => {
                // Raw bytes as a physical key: most do not decode.
                data.push((key.clone(), value.clone()));
                continue;
            }
        };
        let value = if *tombstone {
            encode_tombstone(ts.saturating_sub(1))
        } else {
            encode_put(&body, expire_at, ts.saturating_sub(1))
        };
        data.push((encode_data_key(&user_key, *ts), value));
    }
    data.sort();
    data.dedup_by(|a, b| a.0 == b.0);
    let header = SnapshotHeader {
        cluster_id: "fuzz".to_string(),
        group_id: 1,
        index: 7,
        term: 1,
        last_commit_ts,
        ..SnapshotHeader::default()
    };
    let mut writer = SnapshotWriter::new(Vec::new(), &header).unwrap();
    for (key, value) in &data {
        writer.write_record(Cf::Data, key, value).unwrap();
    }
    writer
        .write_record(Cf::Lock, &encode_lock_key(&meta_key(b"locked")), b"lock")
        .unwrap();
    writer.write_record(Cf::Meta, b"m", b"meta").unwrap();
    writer.finish().unwrap().0
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
    SetLength(Index, u32),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Insert(i, v)),
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Truncate),
        (
            any::<Index>(),
            prop_oneof![Just(u32::MAX), Just(512 << 20), Just(1 << 20), any::<u32>()]
        )
            .prop_map(|(i, v)| Mutation::SetLength(i, v)),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match mutation {
        Mutation::FlipBit(i, bit) => {
            let at = i.index(bytes.len());
            bytes[at] ^= 1 << bit;
        }
        Mutation::SetByte(i, v) => {
            let at = i.index(bytes.len());
            bytes[at] = *v;
        }
        Mutation::Insert(i, v) => {
            let at = i.index(bytes.len() + 1);
            bytes.insert(at, *v);
        }
        Mutation::Delete(i) => {
            let at = i.index(bytes.len());
            bytes.remove(at);
        }
        Mutation::Truncate(i) => {
            let at = i.index(bytes.len());
            bytes.truncate(at);
        }
        Mutation::SetLength(i, v) => {
            let at = i.index(bytes.len());
            let end = (at + 4).min(bytes.len());
            bytes[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
        }
    }
}

fn arb_rows() -> impl Strategy<Value = Vec<(Row, u64, bool)>> {
    proptest::collection::vec((arb_row(), 1u64..60, proptest::bool::weighted(0.2)), 0..24)
}

/// Decodes `path` to records, measuring the largest allocation.
fn records_measured(path: &Path) -> (Result<usize, String>, usize) {
    peak_alloc::reset();
    let mut count = 0;
    let result = read_snapshot_records(path, |_| {
        count += 1;
        Ok(())
    })
    .map(|_| count)
    .map_err(|e| e.to_string());
    (result, peak_alloc::peak())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn mutated_snapshots_never_panic_overallocate_or_read_cleanly(
        rows in arb_rows(),
        last_commit_ts in 0u64..70,
        mutations in proptest::collection::vec(arb_mutation(), 1..3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let original = valid_file(&rows, last_commit_ts);
        let path = dir.path().join("in.fsm");
        std::fs::write(&path, &original).unwrap();
        // The intact file decodes or fails on a corrupt row, never panics.
        let (_, peak) = records_measured(&path);
        prop_assert!(peak <= ALLOCATION_BOUND, "allocated {peak} bytes");

        let mut damaged = original.clone();
        for mutation in &mutations {
            apply(&mut damaged, mutation);
        }
        std::fs::write(&path, &damaged).unwrap();
        let (result, peak) = records_measured(&path);
        prop_assert!(peak <= ALLOCATION_BOUND, "allocated {peak} bytes");
        // One change is always caught (CRC-32C, lengths, counts).
        if mutations.len() == 1 && damaged != original {
            prop_assert!(result.is_err(), "{:?} went unnoticed", mutations);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Through the whole pipeline into a tree: a damaged file leaves no
    /// output; an intact one that decodes publishes a tree that verifies.
    #[test]
    fn decoding_into_a_tree_is_all_or_nothing(
        rows in arb_rows(),
        last_commit_ts in 0u64..70,
        mutation in proptest::option::of(arb_mutation()),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let original = valid_file(&rows, last_commit_ts);
        let mut bytes = original.clone();
        if let Some(mutation) = &mutation {
            apply(&mut bytes, mutation);
        }
        let path = dir.path().join("in.fsm");
        std::fs::write(&path, &bytes).unwrap();
        let output = dir.path().join("tree");
        let result = DecodePlan::open(std::slice::from_ref(&path), None).and_then(|plan| {
            plan.decode(&output, &[&RedisSnapshotDecoder], std::time::SystemTime::now(), &mut |_| {})
        });
        match result {
            Ok(summary) => {
                prop_assert!(bytes == original, "damaged input decoded");
                let tree = TreeReader::open(&output).unwrap();
                prop_assert_eq!(tree.checksums().files, summary.files);
            }
            Err(_) => {
                prop_assert!(!output.exists(), "output left behind");
                let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect();
                prop_assert_eq!(names.len(), 1, "staging left behind: {:?}", names);
            }
        }
    }
}

#[test]
fn the_bound_is_meaningful_a_large_genuine_value_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.fsm");
    let big = vec![b'x'; 3 << 20];
    let rows = vec![(Row::Meta(1, Body::String(big), 0), 5, false)];
    std::fs::write(&path, valid_file(&rows, 10)).unwrap();
    let (result, peak) = records_measured(&path);
    assert_eq!(result.unwrap(), 1);
    assert!(peak >= 3 << 20, "peak {peak}");
}
