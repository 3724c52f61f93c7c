//! Fuzz-style property tests, on stable, for the three parsers that read
//! operator-supplied files first: MANIFEST.json, KEYMAP.jsonl, CHECKSUMS.
//! Arbitrary and near-valid bytes must give a result or an error, never a
//! panic; every reader bounds its per-line buffer, so allocation stays
//! proportional to the input (checked here with inputs far beyond a line).

use elastickv::backup::checksums::{self, VerifyOptions};
use elastickv::backup::keymap::{self, KeymapReader};
use elastickv::backup::manifest::Manifest;
use proptest::prelude::*;

fn mutate(seed: &[u8], edits: &[(usize, u8)]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for &(pos, byte) in edits {
        if !out.is_empty() {
            let index = pos % out.len();
            out[index] = byte;
        }
    }
    out
}

fn valid_manifest() -> Vec<u8> {
    Manifest::new_live(std::time::UNIX_EPOCH, 7)
        .to_bytes()
        .unwrap()
}

const KEYMAP_SEED: &[u8] = b"{\"encoded\":\"e\",\"original\":\"YWJj\",\"kind\":\"sha-fallback\"}\n{\"encoded\":\"f\",\"original\":\"\",\"kind\":\"k\"}\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn manifest_parser_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Manifest::from_bytes(&bytes);
    }

    #[test]
    fn manifest_parser_survives_mutations(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let bytes = mutate(&valid_manifest(), &edits);
        if let Ok(manifest) = Manifest::from_bytes(&bytes) {
            // Whatever is accepted must also be writable again.
            prop_assert!(manifest.to_bytes().is_ok());
        }
    }

    #[test]
    fn keymap_reader_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let count = KeymapReader::new(&bytes[..]).take(10_000).count();
        prop_assert!(count <= bytes.len() + 1);
    }

    #[test]
    fn keymap_reader_survives_mutations(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let bytes = mutate(KEYMAP_SEED, &edits);
        for record in KeymapReader::new(&bytes[..]).flatten() {
            prop_assert!(!record.encoded.is_empty() && !record.kind.is_empty());
        }
    }

    #[test]
    fn checksums_parser_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let dir = tempfile::tempdir().unwrap();
        let _ = checksums::verify_from_reader(dir.path(), &bytes[..], VerifyOptions::default());
        for line in bytes.split(|b| *b == b'\n') {
            if let Ok(parsed) = checksums::parse_line(line, 1) {
                prop_assert_eq!(parsed.digest_hex.len(), 64);
            }
        }
    }
}

#[test]
fn oversized_lines_are_refused_without_buffering_them() {
    let huge = vec![b'a'; 64 << 20];
    assert!(KeymapReader::new(&huge[..]).next().unwrap().is_err());
    let dir = tempfile::tempdir().unwrap();
    assert!(
        checksums::verify_from_reader(dir.path(), &huge[..], VerifyOptions::default()).is_err()
    );
    let mut manifest = valid_manifest();
    manifest.resize(elastickv::backup::manifest::MAX_MANIFEST_BYTES + 1, b' ');
    assert!(Manifest::from_bytes(&manifest).is_err());
    assert!(keymap::MAX_LINE_BYTES < huge.len());
}
