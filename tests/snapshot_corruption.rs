//! Exhaustive damage to a small `.fsm` file: every truncation point, every
//! byte replaced by every other value, every single byte deleted or
//! inserted. Each must be an error, never a panic and never a clean read;
//! damage inside the header must be caught before any record is read.

use elastickv::snapshot::{
    PREAMBLE_LEN, SnapshotError, SnapshotHeader, SnapshotReader, SnapshotWriter, read_header,
    verify_file,
};
use elastickv::storage::Cf;

fn small_file() -> (Vec<u8>, usize) {
    let header = SnapshotHeader {
        cluster_id: "c".to_string(),
        group_id: 3,
        index: 17,
        term: 2,
        last_commit_ts: 99,
        hlc_ceiling_ms: 1234,
        ownership: vec![0xAB, 0xCD],
        created_unix_ms: 5,
    };
    let mut writer = SnapshotWriter::new(Vec::new(), &header).unwrap();
    writer.write_record(Cf::Data, b"a", b"x").unwrap();
    writer.write_record(Cf::Data, b"bb", b"").unwrap();
    writer.write_record(Cf::Lock, b"l", b"yy").unwrap();
    writer.write_record(Cf::Meta, b"", b"z").unwrap();
    let (bytes, summary) = writer.finish().unwrap();
    assert_eq!(summary.total_len as usize, bytes.len());
    let body_len = u32::from_le_bytes(bytes[10..14].try_into().unwrap()) as usize;
    let header_end = PREAMBLE_LEN as usize + body_len + 4;
    (bytes, header_end)
}

/// Streams every record, as an install would.
fn stream_all(bytes: &[u8]) -> Result<usize, SnapshotError> {
    let mut reader = SnapshotReader::new(bytes)?;
    let mut records = 0;
    while reader.next_record()?.is_some() {
        records += 1;
    }
    Ok(records)
}

/// The skip path: verify everything without returning records.
fn verify_all(bytes: &[u8]) -> Result<u64, SnapshotError> {
    SnapshotReader::new(bytes)?
        .finish()
        .map(|s| s.counts.total())
}

fn assert_rejected(bytes: &[u8], what: &str) {
    assert!(
        stream_all(bytes).is_err(),
        "{what}: streaming read accepted it"
    );
    assert!(
        verify_all(bytes).is_err(),
        "{what}: verification accepted it"
    );
}

#[test]
fn the_intact_file_reads() {
    let (bytes, _) = small_file();
    assert_eq!(stream_all(&bytes).unwrap(), 4);
    assert_eq!(verify_all(&bytes).unwrap(), 4);
}

#[test]
fn every_truncation_is_reported_as_truncation() {
    let (bytes, _) = small_file();
    for len in 0..bytes.len() {
        let cut = &bytes[..len];
        for result in [stream_all(cut).map(|_| ()), verify_all(cut).map(|_| ())] {
            match result {
                Err(SnapshotError::Truncated { offset, .. }) => {
                    assert_eq!(offset, len as u64, "truncated at {len}: wrong offset")
                }
                other => panic!("truncated at {len}: expected Truncated, got {other:?}"),
            }
        }
    }
}

#[test]
fn every_replaced_byte_is_detected() {
    let (bytes, header_end) = small_file();
    let mut damaged = bytes.clone();
    for pos in 0..bytes.len() {
        for value in 0..=u8::MAX {
            if value == bytes[pos] {
                continue;
            }
            damaged[pos] = value;
            let what = format!("byte {pos} set to {value:#04x}");
            if pos < header_end {
                assert!(
                    SnapshotReader::new(damaged.as_slice()).is_err(),
                    "{what}: header damage not caught when opening"
                );
            } else {
                assert_rejected(&damaged, &what);
            }
        }
        damaged[pos] = bytes[pos];
    }
}

#[test]
fn flipped_bits_in_the_header_are_named_as_header_problems() {
    let (bytes, header_end) = small_file();
    for pos in PREAMBLE_LEN as usize..header_end {
        for bit in 0..8 {
            let mut damaged = bytes.clone();
            damaged[pos] ^= 1 << bit;
            assert!(
                matches!(
                    SnapshotReader::new(damaged.as_slice()),
                    Err(SnapshotError::HeaderCorrupt { .. })
                ),
                "bit {bit} of header byte {pos}"
            );
        }
    }
}

#[test]
fn flipped_bits_in_values_surface_as_checksum_mismatch() {
    let (bytes, _) = small_file();
    let at = bytes.windows(2).position(|w| w == b"yy").unwrap();
    for bit in 0..8 {
        let mut damaged = bytes.clone();
        damaged[at] ^= 1 << bit;
        assert!(matches!(
            stream_all(&damaged),
            Err(SnapshotError::ChecksumMismatch { .. })
        ));
    }
}

#[test]
fn every_deleted_or_inserted_byte_is_detected() {
    let (bytes, _) = small_file();
    for pos in 0..bytes.len() {
        let mut shorter = bytes.clone();
        shorter.remove(pos);
        assert_rejected(&shorter, &format!("byte {pos} deleted"));
    }
    for pos in 0..=bytes.len() {
        for value in [0x00, 0x01, 0x53, 0x5A, 0xFF] {
            let mut longer = bytes.clone();
            longer.insert(pos, value);
            assert_rejected(&longer, &format!("{value:#04x} inserted at {pos}"));
        }
    }
}

#[test]
fn damage_on_disk_is_reported_by_the_file_helpers() {
    let (bytes, header_end) = small_file();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.fsm");

    let mut in_records = bytes.clone();
    in_records[header_end + 4] ^= 0x40;
    std::fs::write(&path, &in_records).unwrap();
    assert!(read_header(&path).is_ok(), "the header itself is intact");
    assert!(verify_file(&path).is_err());

    let mut in_header = bytes.clone();
    in_header[PREAMBLE_LEN as usize + 3] ^= 0x01;
    std::fs::write(&path, &in_header).unwrap();
    assert!(matches!(
        read_header(&path),
        Err(SnapshotError::HeaderCorrupt { .. })
    ));
    assert!(matches!(
        verify_file(&path),
        Err(SnapshotError::HeaderCorrupt { .. })
    ));

    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    assert!(matches!(
        verify_file(&path),
        Err(SnapshotError::Truncated { .. })
    ));
}
