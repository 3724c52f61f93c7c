//! Round trips of the `.fsm` snapshot file through the public API: random
//! headers and record sets written to memory and to disk read back equal,
//! and atomic creation leaves nothing at the final path unless finished.

#[path = "support/paths.rs"]
mod paths;

use std::collections::BTreeMap;
use std::fs;

use elastickv::snapshot::{
    AtomicSnapshotWriter, RecordCounts, SnapshotError, SnapshotHeader, SnapshotReader,
    SnapshotRecord, SnapshotWriter, TEMP_SUFFIX, clean_stale_temps, file_name, read_header,
    verify_file,
};
use elastickv::storage::Cf;
use proptest::prelude::*;

fn arb_header() -> impl Strategy<Value = SnapshotHeader> {
    (
        "\\PC{0,20}",
        any::<[u64; 6]>(),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_filter("cluster id within its cap", |(id, _, _)| id.len() <= 255)
        .prop_map(|(cluster_id, n, ownership)| SnapshotHeader {
            cluster_id,
            group_id: n[0],
            index: n[1],
            term: n[2],
            last_commit_ts: n[3],
            hlc_ceiling_ms: n[4],
            ownership,
            created_unix_ms: n[5],
        })
}

/// Records in file order: data, lock, meta, keys ascending and unique.
fn arb_records() -> impl Strategy<Value = Vec<SnapshotRecord>> {
    let cf_map = || {
        proptest::collection::btree_map(
            proptest::collection::vec(any::<u8>(), 0..24),
            proptest::collection::vec(any::<u8>(), 0..64),
            0..20,
        )
    };
    (cf_map(), cf_map(), cf_map()).prop_map(|(data, lock, meta)| {
        let mut out = Vec::new();
        for (cf, map) in [(Cf::Data, data), (Cf::Lock, lock), (Cf::Meta, meta)] {
            let map: BTreeMap<Vec<u8>, Vec<u8>> = map;
            out.extend(
                map.into_iter()
                    .map(|(key, value)| SnapshotRecord { cf, key, value }),
            );
        }
        out
    })
}

fn write_to_vec(header: &SnapshotHeader, records: &[SnapshotRecord]) -> Vec<u8> {
    let mut writer = SnapshotWriter::new(Vec::new(), header).unwrap();
    for r in records {
        writer.write_record(r.cf, &r.key, &r.value).unwrap();
    }
    writer.finish().unwrap().0
}

fn read_all<R: std::io::Read>(
    mut reader: SnapshotReader<R>,
) -> Result<Vec<SnapshotRecord>, SnapshotError> {
    let mut out = Vec::new();
    while let Some(record) = reader.next_record()? {
        out.push(record);
    }
    Ok(out)
}

fn counts_of(records: &[SnapshotRecord]) -> RecordCounts {
    let count = |cf| records.iter().filter(|r| r.cf == cf).count() as u64;
    RecordCounts {
        data: count(Cf::Data),
        lock: count(Cf::Lock),
        meta: count(Cf::Meta),
    }
}

proptest! {
    #[test]
    fn memory_round_trip(header in arb_header(), records in arb_records()) {
        let bytes = write_to_vec(&header, &records);
        let reader = SnapshotReader::new(bytes.as_slice()).unwrap();
        prop_assert_eq!(reader.header(), &header);
        prop_assert_eq!(read_all(reader).unwrap(), records);
    }

}

proptest! {
    // Each case fsyncs a file and its directory: fewer cases, the encoding
    // itself is covered by memory_round_trip at the full count.
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn file_round_trip(header in arb_header(), records in arb_records()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(header.index));
        let mut writer = SnapshotWriter::create_atomic(&path, &header).unwrap();
        for r in &records {
            writer.write_record(r.cf, &r.key, &r.value).unwrap();
        }
        let written = writer.finish().unwrap();
        prop_assert_eq!(written.total_len, fs::metadata(&path).unwrap().len());
        prop_assert_eq!(written.counts, counts_of(&records));

        prop_assert_eq!(read_header(&path).unwrap(), header.clone());
        let verified = verify_file(&path).unwrap();
        prop_assert_eq!(&verified, &written);
        prop_assert_eq!(read_all(SnapshotReader::open(&path).unwrap()).unwrap(), records);
    }
}

proptest! {
    #[test]
    fn skipping_a_column_family_drops_exactly_its_records(
        records in arb_records(),
        skipped in prop::sample::select(vec![Cf::Data, Cf::Lock, Cf::Meta]),
    ) {
        let bytes = write_to_vec(&SnapshotHeader::default(), &records);
        let mut reader = SnapshotReader::new(bytes.as_slice()).unwrap();
        reader.skip_cf(skipped);
        let mut seen = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            seen.push(record);
        }
        let expected: Vec<_> = records.iter().filter(|r| r.cf != skipped).cloned().collect();
        prop_assert_eq!(seen, expected);
        prop_assert_eq!(reader.summary().unwrap().counts, counts_of(&records));
    }
}

fn sample_header() -> SnapshotHeader {
    SnapshotHeader {
        cluster_id: "cluster-a".to_string(),
        group_id: 2,
        index: 41,
        term: 5,
        last_commit_ts: 1 << 20,
        hlc_ceiling_ms: 1_700_000_000_000,
        ownership: b"owned".to_vec(),
        created_unix_ms: 1_700_000_000_123,
    }
}

#[test]
fn an_empty_snapshot_round_trips() {
    let bytes = write_to_vec(&sample_header(), &[]);
    let reader = SnapshotReader::new(bytes.as_slice()).unwrap();
    assert_eq!(reader.header(), &sample_header());
    assert!(read_all(reader).unwrap().is_empty());
    // The smallest valid file, as docs/snapshot-format.md derives it.
    assert_eq!(write_to_vec(&SnapshotHeader::default(), &[]).len(), 119);
}

#[test]
fn a_writer_dropped_before_finish_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file_name(41));
    let mut writer = AtomicSnapshotWriter::create(&path, &sample_header()).unwrap();
    writer.write_record(Cf::Data, b"k", b"v").unwrap();
    let temp = writer.temp_path().to_path_buf();
    assert!(temp.exists());
    drop(writer);
    assert!(!path.exists());
    assert!(!temp.exists());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_failed_record_then_drop_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file_name(41));
    let mut writer = AtomicSnapshotWriter::create(&path, &sample_header()).unwrap();
    writer.write_record(Cf::Data, b"b", b"").unwrap();
    assert!(writer.write_record(Cf::Data, b"a", b"").is_err());
    drop(writer);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_killed_writers_temp_is_ignored_then_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file_name(41));
    // What a process killed mid-write leaves behind: a partial temp file.
    let leftover = dir
        .path()
        .join(format!("{}.999.0{TEMP_SUFFIX}", file_name(41)));
    fs::write(&leftover, b"\x89EKVSNAP half a snapshot").unwrap();

    let mut writer = AtomicSnapshotWriter::create(&path, &sample_header()).unwrap();
    writer.write_record(Cf::Meta, b"applied", b"41").unwrap();
    writer.finish().unwrap();
    assert_eq!(verify_file(&path).unwrap().counts.meta, 1);
    assert!(
        leftover.exists(),
        "finishing one snapshot must not touch other files"
    );

    let unrelated = dir.path().join("notes.txt");
    fs::write(&unrelated, b"keep me").unwrap();
    let removed = clean_stale_temps(dir.path()).unwrap();
    assert_eq!(removed, vec![leftover.clone()]);
    assert!(!leftover.exists());
    assert!(path.exists());
    assert!(unrelated.exists());
    assert!(clean_stale_temps(dir.path()).unwrap().is_empty());
}

#[test]
fn finishing_replaces_an_older_file_at_the_same_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file_name(41));
    for value in [&b"old"[..], &b"new"[..]] {
        let mut writer = AtomicSnapshotWriter::create(&path, &sample_header()).unwrap();
        writer.write_record(Cf::Data, b"k", value).unwrap();
        writer.finish().unwrap();
    }
    let records = read_all(SnapshotReader::open(&path).unwrap()).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value, b"new");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn missing_files_are_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.fsm");
    for err in [
        verify_file(&path).unwrap_err(),
        read_header(&path).unwrap_err(),
    ] {
        assert!(matches!(err, SnapshotError::File { .. }), "{err}");
        assert!(err.to_string().contains("absent.fsm"), "{err}");
    }
}

/// The snapshot committed as `fixtures/snapshot/example.fsm` and dissected
/// byte by byte in `docs/snapshot-format.md`.
fn example_snapshot() -> Vec<u8> {
    let header = SnapshotHeader {
        cluster_id: "demo".to_string(),
        group_id: 1,
        index: 42,
        term: 3,
        last_commit_ts: 0x0190_0000_0005,
        hlc_ceiling_ms: 0x0191,
        ownership: vec![0xAA, 0xBB],
        created_unix_ms: 0x0102_0304,
    };
    let records = [
        (Cf::Data, &b"k1"[..], &b"v1"[..]),
        (Cf::Meta, &b"ai"[..], &42u64.to_le_bytes()[..]),
    ];
    let mut writer = SnapshotWriter::new(Vec::new(), &header).unwrap();
    for (cf, key, value) in records {
        writer.write_record(cf, key, value).unwrap();
    }
    writer.finish().unwrap().0
}

/// The committed example must stay byte-identical to what the writer
/// produces: a change here is a format change and needs a version bump.
/// `ELASTICKV_BLESS=1` rewrites the fixture after a deliberate change.
#[test]
fn the_committed_example_matches_the_writer_byte_for_byte() {
    let path = paths::repo_root().join("fixtures/snapshot/example.fsm");
    let written = example_snapshot();
    if std::env::var_os("ELASTICKV_BLESS").is_some() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &written).unwrap();
    }
    let committed = fs::read(&path).unwrap();
    assert_eq!(hex_lines(&committed), hex_lines(&written));

    let summary = verify_file(&path).unwrap();
    assert_eq!(summary.header.cluster_id, "demo");
    assert_eq!(
        summary.counts,
        RecordCounts {
            data: 1,
            lock: 0,
            meta: 1
        }
    );
    let records = read_all(SnapshotReader::open(&path).unwrap()).unwrap();
    assert_eq!(records[0].key, b"k1");
    assert_eq!(records[1].value, 42u64.to_le_bytes());
}

fn hex_lines(bytes: &[u8]) -> Vec<String> {
    bytes.chunks(16).map(hex::encode).collect()
}
