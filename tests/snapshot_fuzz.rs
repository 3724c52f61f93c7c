//! Fuzzing the `.fsm` reader on stable: arbitrary bytes, arbitrary bytes
//! behind a valid preamble, and valid files damaged by random mutations
//! (with length fields aimed at the caps) go through the streaming reader.
//! The reader must never panic, a single mutation must never read cleanly,
//! and no allocation may follow a length prefix the data does not back:
//! a global allocator records the largest single allocation made on the
//! test's own thread, which must stay far below every cap.
//!
//! Longer runs with libFuzzer live in `fuzz/` (nightly, `cargo fuzz`).

#[path = "support/peak_alloc.rs"]
mod peak_alloc;

use elastickv::snapshot::{
    HEADER_CAP, KEY_CAP, MAGIC, SUPPORTED_VERSION, SnapshotError, SnapshotHeader, SnapshotReader,
    SnapshotWriter, VALUE_CAP,
};
use elastickv::storage::Cf;
use proptest::prelude::*;
use proptest::sample::Index;

/// Largest allocation tolerated while reading a small input: the reader's
/// first chunk for a length-prefixed field is 64 KiB, a long way below the
/// key (1 MiB), value (512 MiB) and header (64 MiB) caps that hostile length
/// prefixes in these inputs claim.
const ALLOCATION_BOUND: usize = 128 << 10;

/// Streams the whole input (returning records, or skipping them all) and
/// reports the outcome with the largest allocation made meanwhile.
fn read_measured(bytes: &[u8], skip_all: bool) -> (Result<u64, SnapshotError>, usize) {
    peak_alloc::reset();
    let result = (|| {
        let mut reader = SnapshotReader::new(bytes)?;
        if skip_all {
            for cf in [Cf::Data, Cf::Lock, Cf::Meta] {
                reader.skip_cf(cf);
            }
        }
        let mut records = 0u64;
        while reader.next_record()?.is_some() {
            records += 1;
        }
        Ok(records)
    })();
    (result, peak_alloc::peak())
}

fn preamble() -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&SUPPORTED_VERSION.to_le_bytes());
    out
}

fn valid_file(records: &[(u8, Vec<u8>, Vec<u8>)], ownership: Vec<u8>) -> Vec<u8> {
    let header = SnapshotHeader {
        cluster_id: "fuzz".to_string(),
        group_id: 1,
        index: 2,
        term: 3,
        ownership,
        ..SnapshotHeader::default()
    };
    let mut writer = SnapshotWriter::new(Vec::new(), &header).unwrap();
    let mut sorted: Vec<_> = records.to_vec();
    sorted.sort();
    sorted.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    for (section, key, value) in &sorted {
        let cf = [Cf::Data, Cf::Lock, Cf::Meta][usize::from(*section)];
        writer.write_record(cf, key, value).unwrap();
    }
    writer.finish().unwrap().0
}

#[derive(Debug, Clone)]
enum Mutation {
    SetByte(Index, u8),
    FlipBit(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
    /// Overwrite four bytes with a length-like value (aimed at prefixes).
    SetLength(Index, u32),
}

fn arb_length() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(u32::MAX),
        Just(0x8000_0000),
        Just(KEY_CAP as u32),
        Just(KEY_CAP as u32 + 1),
        Just(VALUE_CAP as u32),
        Just(VALUE_CAP as u32 + 1),
        Just(HEADER_CAP as u32),
        Just(HEADER_CAP as u32 + 1),
        any::<u32>(),
    ]
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Insert(i, v)),
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), arb_length()).prop_map(|(i, v)| Mutation::SetLength(i, v)),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match mutation {
        Mutation::SetByte(i, v) => {
            let at = i.index(bytes.len());
            bytes[at] = *v;
        }
        Mutation::FlipBit(i, bit) => {
            let at = i.index(bytes.len());
            bytes[at] ^= 1 << bit;
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

fn arb_records() -> impl Strategy<Value = Vec<(u8, Vec<u8>, Vec<u8>)>> {
    proptest::collection::vec(
        (
            0u8..3,
            proptest::collection::vec(any::<u8>(), 0..12),
            proptest::collection::vec(any::<u8>(), 0..40),
        ),
        0..12,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_bytes_never_panic_or_overallocate(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        skip_all in any::<bool>(),
    ) {
        let (result, peak) = read_measured(&bytes, skip_all);
        prop_assert!(result.is_err(), "random bytes read as a snapshot");
        prop_assert!(peak <= ALLOCATION_BOUND, "allocated {peak} bytes");
    }

    #[test]
    fn bytes_behind_a_valid_preamble_never_panic_or_overallocate(
        tail in proptest::collection::vec(any::<u8>(), 0..600),
        header_len in arb_length(),
        skip_all in any::<bool>(),
    ) {
        let mut bytes = preamble();
        bytes.extend_from_slice(&header_len.to_le_bytes());
        bytes.extend_from_slice(&tail);
        let (result, peak) = read_measured(&bytes, skip_all);
        prop_assert!(result.is_err(), "random bytes read as a snapshot");
        prop_assert!(peak <= ALLOCATION_BOUND, "allocated {peak} bytes");
    }

    #[test]
    fn mutated_files_never_panic_or_overallocate(
        records in arb_records(),
        ownership in proptest::collection::vec(any::<u8>(), 0..16),
        mutations in proptest::collection::vec(arb_mutation(), 1..4),
        skip_all in any::<bool>(),
    ) {
        let original = valid_file(&records, ownership);
        let mut damaged = original.clone();
        for mutation in &mutations {
            apply(&mut damaged, mutation);
        }
        let (result, peak) = read_measured(&damaged, skip_all);
        prop_assert!(peak <= ALLOCATION_BOUND, "allocated {peak} bytes");
        // One change is always caught (CRC-32C detects every burst of up to
        // 32 bits, lengths and counts catch the rest); several changes are
        // caught except with probability ~2^-32, so only one is asserted.
        if mutations.len() == 1 && damaged != original {
            prop_assert!(result.is_err(), "{:?} went unnoticed", mutations);
        }
    }
}

#[test]
fn the_bound_is_meaningful_an_intact_read_stays_under_it_too() {
    let bytes = valid_file(&[(0, b"k".to_vec(), vec![1; 100])], vec![]);
    let (result, peak) = read_measured(&bytes, false);
    assert_eq!(result.unwrap(), 1);
    assert!(peak <= ALLOCATION_BOUND);
    // And a big genuine value does make its full allocation: the tracker sees it.
    let big = valid_file(&[(0, b"k".to_vec(), vec![1; 3 << 20])], vec![]);
    let (result, peak) = read_measured(&big, false);
    assert_eq!(result.unwrap(), 1);
    assert!(peak >= 3 << 20, "peak {peak}");
}

#[test]
fn lengths_claiming_the_caps_allocate_only_what_arrives() {
    // A header claiming its full 64 MiB cap over a 100-byte file.
    let mut bytes = preamble();
    bytes.extend_from_slice(&(HEADER_CAP as u32).to_le_bytes());
    bytes.extend_from_slice(&[0u8; 100]);
    let (result, peak) = read_measured(&bytes, false);
    assert!(
        matches!(result, Err(SnapshotError::Truncated { .. })),
        "{result:?}"
    );
    assert!(peak <= ALLOCATION_BOUND, "allocated {peak} bytes");

    // A record claiming a value of the full 512 MiB cap.
    let file = valid_file(&[(0, b"key".to_vec(), b"v".to_vec())], vec![]);
    let value_len_at = file.windows(3).position(|w| w == b"key").unwrap() + 3;
    for skip_all in [false, true] {
        let mut damaged = file.clone();
        damaged[value_len_at..value_len_at + 4].copy_from_slice(&(VALUE_CAP as u32).to_le_bytes());
        let (result, peak) = read_measured(&damaged, skip_all);
        assert!(
            matches!(result, Err(SnapshotError::Truncated { .. })),
            "{result:?}"
        );
        assert!(peak <= ALLOCATION_BOUND, "allocated {peak} bytes");

        damaged[value_len_at..value_len_at + 4]
            .copy_from_slice(&(VALUE_CAP as u32 + 1).to_le_bytes());
        let (result, _) = read_measured(&damaged, skip_all);
        match result {
            Err(SnapshotError::CapExceeded { field, offset, .. }) => {
                assert_eq!(field, "value");
                assert_eq!(offset, value_len_at as u64);
            }
            other => panic!("expected CapExceeded, got {other:?}"),
        }
    }
}
