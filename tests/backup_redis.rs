//! Cross-module tests of the Redis mapping over real trees: round trips
//! (property-based), external tools (`sha256sum -c`, `jq`), tamper
//! detection, and the emission and refusal rules of format §5.9.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use elastickv::backup::BackupError;
use elastickv::backup::checksums::write_checksums;
use elastickv::backup::filename::{encode_segment, is_sha_fallback};
use elastickv::backup::manifest::{Manifest, RedisScope};
use elastickv::backup::redis::{
    RedisError, RedisMapping, RedisRecord, RedisTreeReader, RedisTreeWriter, RedisValue,
    StreamEntry, StreamId,
};
use elastickv::backup::service::{ServiceMapping, ServiceWriter};
use elastickv::backup::tree::{TreeError, TreeReader, TreeWriter};
use proptest::prelude::*;

fn manifest() -> Manifest {
    let mut m =
        Manifest::new_snapshot_decode(UNIX_EPOCH + Duration::from_secs(1_777_000_000), "in.fsm");
    m.adapters.redis = Some(RedisScope::default());
    m
}

fn write_tree(records: &[RedisRecord]) -> (tempfile::TempDir, PathBuf) {
    write_tree_db(records, 0)
}

fn write_tree_db(records: &[RedisRecord], db: u32) -> (tempfile::TempDir, PathBuf) {
    let base = tempfile::tempdir().unwrap();
    let out = base.path().join("dump");
    let tree = TreeWriter::create(&out).unwrap();
    let mut writer = RedisMapping { db }.writer(&tree).unwrap();
    for record in records {
        writer.write_record(record).unwrap();
    }
    writer.finish().unwrap();
    tree.finish(&manifest()).unwrap();
    (base, out)
}

fn read_tree(root: &Path) -> Result<Vec<RedisRecord>, BackupError> {
    let tree = TreeReader::open(root)?;
    RedisMapping::default().reader(&tree)?.collect()
}

fn rec(key: &[u8], ttl: Option<u64>, value: RedisValue) -> RedisRecord {
    RedisRecord {
        key: key.to_vec(),
        expire_at_ms: ttl,
        value,
    }
}

fn s(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn sample() -> Vec<RedisRecord> {
    let long_key = vec![b'k'; 300];
    vec![
        rec(b"greeting", None, RedisValue::String(s("hello"))),
        rec(
            b"session:abc123",
            Some(1_735_689_600_000),
            RedisValue::String(vec![0, 0xFF, 1]),
        ),
        rec(&long_key, Some(42), RedisValue::String(s("long"))),
        rec(b"visitors", Some(7), RedisValue::Hll(vec![1, 2, 3])),
        rec(
            b"user:1",
            None,
            RedisValue::Hash(vec![(s("name"), s("alice")), (vec![0xFF], s("bin"))]),
        ),
        rec(
            b"queue",
            Some(9),
            RedisValue::List(vec![s("1"), s("2"), vec![0xC0]]),
        ),
        rec(b"tags", None, RedisValue::Set(vec![s("b"), s("a")])),
        rec(
            b"board",
            None,
            RedisValue::ZSet(vec![
                (s("alice"), 100.0),
                (s("bob"), f64::INFINITY),
                (s("c"), -0.25),
            ]),
        ),
        rec(
            b"events",
            Some(11),
            RedisValue::Stream {
                entries: vec![StreamEntry {
                    id: StreamId { ms: 5, seq: 1 },
                    fields: vec![(s("f"), s("v1")), (s("f"), s("v2"))],
                }],
                last_id: StreamId { ms: 6, seq: 0 },
            },
        ),
    ]
}

fn by_key(records: Vec<RedisRecord>) -> BTreeMap<Vec<u8>, RedisRecord> {
    records
        .into_iter()
        .map(|r| (r.key.clone(), r.canonical().unwrap()))
        .collect()
}

#[test]
fn sample_round_trips() {
    let records = sample();
    let (_base, out) = write_tree(&records);
    assert_eq!(by_key(read_tree(&out).unwrap()), by_key(records));
}

#[test]
fn sha256sum_accepts_the_checksums_file() {
    let (_base, out) = write_tree(&sample());
    let status = Command::new("sha256sum")
        .args(["-c", "--quiet", "--strict", "CHECKSUMS"])
        .current_dir(&out)
        .status();
    match status {
        Ok(status) => assert!(status.success(), "sha256sum -c CHECKSUMS failed"),
        Err(err) => panic!("sha256sum is part of coreutils and must be present: {err}"),
    }
}

fn all_files(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .collect();
    out.sort();
    out
}

#[test]
fn jq_parses_every_json_file() {
    let (_base, out) = write_tree(&sample());
    if Command::new("jq").arg("--version").output().is_err() {
        println!("NOTICE: jq is not installed; skipping the jq parse check");
        return;
    }
    let mut checked = 0;
    for path in all_files(&out) {
        let name = path.to_string_lossy();
        if name.ends_with(".json") || name.ends_with(".jsonl") {
            let output = Command::new("jq")
                .args(["-e", "."])
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "jq refused {name}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 8,
        "expected the manifest, collections, sidecars and KEYMAP, got {checked}"
    );
}

#[test]
fn any_flipped_byte_removed_or_added_file_is_refused() {
    let (_base, out) = write_tree(&sample());
    for path in all_files(&out) {
        let original = fs::read(&path).unwrap();
        let positions: Vec<usize> = if original.is_empty() {
            vec![]
        } else {
            vec![0, original.len() / 2, original.len() - 1]
        };
        for pos in positions {
            for mask in [0x01u8, 0x0A, 0x20, 0x80] {
                let mut tampered = original.clone();
                tampered[pos] ^= mask;
                fs::write(&path, &tampered).unwrap();
                assert!(
                    read_tree(&out).is_err(),
                    "{} byte {pos} ^ {mask:#x} accepted",
                    path.display()
                );
            }
        }
        fs::write(&path, &original).unwrap();
        fs::remove_file(&path).unwrap();
        assert!(
            read_tree(&out).is_err(),
            "removing {} went unnoticed",
            path.display()
        );
        fs::write(&path, &original).unwrap();
    }
    for dir in ["", "redis", "redis/db_0", "redis/db_0/strings"] {
        let extra = out.join(dir).join("extra.bin");
        fs::write(&extra, b"").unwrap();
        assert!(
            read_tree(&out).is_err(),
            "added {} went unnoticed",
            extra.display()
        );
        fs::remove_file(&extra).unwrap();
    }
    read_tree(&out).unwrap();
}

#[test]
fn layout_follows_the_format() {
    let (_base, out) = write_tree(&sample());
    let db = out.join("redis/db_0");
    assert_eq!(fs::read(db.join("strings/greeting.bin")).unwrap(), b"hello");
    assert!(
        db.join("strings/session%3Aabc123.bin").exists(),
        "names go through encode_segment"
    );
    assert_eq!(
        fs::read(db.join("hll/visitors.bin")).unwrap(),
        vec![1, 2, 3]
    );
    let ttl = fs::read_to_string(db.join("strings_ttl.jsonl")).unwrap();
    assert!(ttl.contains("{\"key\":\"session%3Aabc123\",\"expire_at_ms\":1735689600000}\n"));
    assert_eq!(
        fs::read_to_string(db.join("hll_ttl.jsonl")).unwrap(),
        "{\"key\":\"visitors\",\"expire_at_ms\":7}\n"
    );
    let list = fs::read_to_string(db.join("lists/queue.json")).unwrap();
    assert!(list.contains("\"expire_at_ms\": 9") && !list.ends_with('\n'));
    let stream = fs::read_to_string(db.join("streams/events.jsonl")).unwrap();
    assert!(stream.ends_with(
        "{\"_meta\":true,\"length\":1,\"last_ms\":6,\"last_seq\":0,\"expire_at_ms\":11}\n"
    ));
    let keymap = fs::read_to_string(db.join("KEYMAP.jsonl")).unwrap();
    let long_name = encode_segment(&[b'k'; 300]);
    assert!(is_sha_fallback(&long_name));
    assert!(
        keymap.starts_with(&format!("{{\"encoded\":\"{long_name}\""))
            && keymap.ends_with("\"kind\":\"sha-fallback\"}\n")
    );
    assert!(db.join(format!("strings/{long_name}.bin")).exists());
}

#[test]
fn no_keymap_or_ttl_sidecar_when_not_needed() {
    let (_base, out) = write_tree(&[rec(b"a", None, RedisValue::String(s("1")))]);
    let db = out.join("redis/db_0");
    for name in [
        "KEYMAP.jsonl",
        "strings_ttl.jsonl",
        "hll_ttl.jsonl",
        "hashes",
    ] {
        assert!(!db.join(name).exists(), "{name} should not exist");
    }
}

#[test]
fn empty_collections_still_emit_a_file() {
    let records = vec![
        rec(b"h", None, RedisValue::Hash(vec![])),
        rec(b"l", None, RedisValue::List(vec![])),
        rec(b"s", None, RedisValue::Set(vec![])),
        rec(b"z", None, RedisValue::ZSet(vec![])),
        rec(
            b"x",
            None,
            RedisValue::Stream {
                entries: vec![],
                last_id: StreamId::default(),
            },
        ),
    ];
    let (_base, out) = write_tree(&records);
    let db = out.join("redis/db_0");
    assert!(
        fs::read_to_string(db.join("hashes/h.json"))
            .unwrap()
            .contains("\"fields\": []")
    );
    assert_eq!(
        fs::read_to_string(db.join("streams/x.jsonl")).unwrap(),
        "{\"_meta\":true,\"length\":0,\"last_ms\":0,\"last_seq\":0,\"expire_at_ms\":null}\n"
    );
    assert_eq!(by_key(read_tree(&out).unwrap()), by_key(records));
}

#[test]
fn database_index_routes_into_its_own_directory() {
    let (_base, out) = write_tree_db(&[rec(b"a", None, RedisValue::String(s("1")))], 3);
    assert!(out.join("redis/db_3/strings/a.bin").exists());
    let tree = TreeReader::open(&out).unwrap();
    assert_eq!(RedisTreeReader::new(&tree, 0).unwrap().count(), 0);
    assert_eq!(RedisTreeReader::new(&tree, 3).unwrap().count(), 1);
}

#[test]
fn a_key_is_written_once_whatever_its_type() {
    let base = tempfile::tempdir().unwrap();
    let tree = TreeWriter::create(base.path().join("dump")).unwrap();
    let mut writer = RedisTreeWriter::new(&tree, 0);
    writer
        .write(&rec(b"k", None, RedisValue::String(s("1"))))
        .unwrap();
    for value in [RedisValue::String(s("2")), RedisValue::Hash(vec![])] {
        assert!(matches!(
            writer.write(&rec(b"k", None, value)),
            Err(RedisError::DuplicateKey { .. })
        ));
    }
    writer.close().unwrap();
}

#[test]
fn writer_refuses_values_redis_cannot_hold() {
    let base = tempfile::tempdir().unwrap();
    let tree = TreeWriter::create(base.path().join("dump")).unwrap();
    let mut writer = RedisTreeWriter::new(&tree, 0);
    let bad = [
        rec(b"a", None, RedisValue::ZSet(vec![(s("m"), f64::NAN)])),
        rec(
            b"b",
            None,
            RedisValue::Hash(vec![(s("f"), s("1")), (s("f"), s("2"))]),
        ),
        rec(b"c", Some(0), RedisValue::String(s("x"))),
    ];
    for record in &bad {
        assert!(matches!(
            writer.write(record),
            Err(RedisError::InvalidRecord { .. })
        ));
    }
    writer.close().unwrap();
}

#[test]
fn unfinished_writer_blocks_publication() {
    let base = tempfile::tempdir().unwrap();
    let tree = TreeWriter::create(base.path().join("dump")).unwrap();
    let writer = RedisTreeWriter::new(&tree, 0);
    drop(writer);
    assert!(matches!(
        tree.finish(&manifest()),
        Err(TreeError::UnfinishedServices { count: 1 })
    ));
    assert_eq!(
        fs::read_dir(base.path()).unwrap().count(),
        0,
        "no tree and no staging left behind"
    );
}

/// Builds a tree by hand (as a foreign producer could), with valid
/// MANIFEST and CHECKSUMS, so the Redis reader's own checks are exercised.
fn handmade(files: &[(&str, &[u8])]) -> (tempfile::TempDir, PathBuf) {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("dump");
    for (rel, body) in files {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    }
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("MANIFEST.json"), manifest().to_bytes().unwrap()).unwrap();
    write_checksums(&root).unwrap();
    (base, root)
}

fn redis_error(files: &[(&str, &[u8])]) -> String {
    let (_base, root) = handmade(files);
    match read_tree(&root) {
        Err(BackupError::Redis(err)) => err.to_string(),
        other => panic!("expected a Redis error, got {other:?}"),
    }
}

/// Files to plant in a tree (path, bytes), and the expected error fragment.
type RefusalCase<'a> = (Vec<(&'a str, &'a [u8])>, &'a str);

#[test]
fn reader_refuses_invalid_files_naming_file_and_line() {
    let cases: Vec<RefusalCase> = vec![
        (vec![("redis/db_0/strings/%61.bin", b"x")], "canonical"),
        (vec![("redis/db_0/strings/a.bin", b"x"), ("redis/db_0/hashes/a.json", br#"{"format_version":1,"fields":[],"expire_at_ms":null}"#)], "same key"),
        (vec![("redis/db_0/strings/a.bin", b"x"), ("redis/db_0/strings_ttl.jsonl", b"{\"key\":\"a\",\"expire_at_ms\":1}\n{\"key\":\"b\",\"expire_at_ms\":1}\n")], "strings_ttl.jsonl line 2"),
        (vec![("redis/db_0/strings/a.bin", b"x"), ("redis/db_0/strings_ttl.jsonl", b"{\"key\":\"a\",\"expire_at_ms\":0}\n")], "line 1"),
        (vec![("redis/db_0/notes.txt", b"x")], "unexpected entry"),
        (vec![("redis/db_0/sets/s.json", br#"{"format_version":2,"members":[]}"#)], "format_version"),
        (vec![("redis/db_0/sets/s.json", br#"{"format_version":1,"members":["b","a"],"expire_at_ms":null}"#)], "not sorted"),
        (vec![("redis/db_0/streams/x.jsonl", b"{\"id\":\"1-0\",\"fields\":[]}\n")], "missing _meta"),
        (vec![("redis/db_0/streams/x.jsonl", b"{\"id\":\"1-0\",\"fields\":[]}\n{\"id\":\"1-0\",\"fields\":[]}\n")], "x.jsonl line 2"),
        (vec![("redis/db_0/hashes/h.json", br#"{"format_version":1,"fields":[{"name":{"base64":"*"},"value":"v"}],"expire_at_ms":null}"#)], "hashes/h.json"),
        (vec![("redis/db_0/strings/3f3e35e0a775d9b1d5ec2eccca06381c__aaaa.bin", b"x")], "KEYMAP"),
        (vec![("redis/db_0/KEYMAP.jsonl", b"{\"encoded\":\"abc\",\"original\":\"YWJj\",\"kind\":\"sha-fallback\"}\n")], "KEYMAP.jsonl line 1"),
    ];
    for (files, needle) in cases {
        let message = redis_error(&files);
        assert!(message.contains(needle), "{files:?}: {message}");
    }
}

#[test]
fn reader_accepts_go_style_sidecars_and_envelopes() {
    let (_base, root) = handmade(&[
        ("redis/db_0/hashes/h.json", br#"{"format_version":1,"fields":[{"name":{"base64":"_w"},"value":"v"}],"expire_at_ms":0}"#),
        ("redis/db_0/zsets/z.json", br#"{"format_version":1,"members":[{"member":"m","score":"-inf"},{"member":"n","score":1e+21}],"expire_at_ms":5}"#),
    ]);
    let records = by_key(read_tree(&root).unwrap());
    assert_eq!(
        records[&s("h")].value,
        RedisValue::Hash(vec![(vec![0xFF], s("v"))])
    );
    assert_eq!(records[&s("h")].expire_at_ms, None);
    assert_eq!(
        records[&s("z")].value,
        RedisValue::ZSet(vec![(s("m"), f64::NEG_INFINITY), (s("n"), 1e21)])
    );
}

#[test]
fn reader_requires_redis_in_the_manifest() {
    let base = tempfile::tempdir().unwrap();
    let out = base.path().join("dump");
    TreeWriter::create(&out)
        .unwrap()
        .finish(&Manifest::new_live(UNIX_EPOCH, 1))
        .unwrap();
    let tree = TreeReader::open(&out).unwrap();
    assert!(matches!(
        RedisTreeReader::new(&tree, 0),
        Err(RedisError::NotInManifest)
    ));
}

#[test]
fn symlinks_inside_a_tree_are_refused() {
    let (_base, out) = write_tree(&sample());
    std::os::unix::fs::symlink("/etc/passwd", out.join("redis/db_0/strings/evil.bin")).unwrap();
    assert!(read_tree(&out).is_err());
}

fn bytes_strategy(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..max),
        "[a-z:]{0,12}".prop_map(String::into_bytes),
    ]
}

fn pairs_strategy() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    proptest::collection::btree_map(bytes_strategy(8), bytes_strategy(16), 0..5)
        .prop_map(|m| m.into_iter().collect())
}

fn value_strategy() -> impl Strategy<Value = RedisValue> {
    let score = prop_oneof![
        any::<f64>().prop_filter("not NaN", |f| !f.is_nan()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY)
    ];
    prop_oneof![
        bytes_strategy(64).prop_map(RedisValue::String),
        bytes_strategy(64).prop_map(RedisValue::Hll),
        pairs_strategy().prop_map(RedisValue::Hash),
        proptest::collection::vec(bytes_strategy(16), 0..6).prop_map(RedisValue::List),
        proptest::collection::btree_set(bytes_strategy(16), 0..6)
            .prop_map(|s| RedisValue::Set(s.into_iter().collect())),
        proptest::collection::btree_map(bytes_strategy(16), score, 0..6)
            .prop_map(|m| RedisValue::ZSet(m.into_iter().collect())),
        (
            proptest::collection::btree_map(
                (0u64..1000, 0u64..3),
                proptest::collection::vec((bytes_strategy(8), bytes_strategy(8)), 0..3),
                0..5
            ),
            0u64..5
        )
            .prop_map(|(entries, extra)| {
                let entries: Vec<StreamEntry> = entries
                    .into_iter()
                    .map(|((ms, seq), fields)| StreamEntry {
                        id: StreamId { ms, seq },
                        fields,
                    })
                    .collect();
                let newest = entries.last().map(|e| e.id).unwrap_or_default();
                RedisValue::Stream {
                    entries,
                    last_id: StreamId {
                        ms: newest.ms + extra,
                        seq: newest.seq,
                    },
                }
            }),
    ]
}

fn key_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => bytes_strategy(24),
        1 => proptest::collection::vec(any::<u8>(), 81..400),
        1 => Just(b"b64.looks-binary".to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_records_round_trip(records in proptest::collection::btree_map(key_strategy(), (proptest::option::of(1u64..u64::MAX), value_strategy()), 0..12)) {
        let records: Vec<RedisRecord> = records
            .into_iter()
            .map(|(key, (expire_at_ms, value))| RedisRecord { key, expire_at_ms, value })
            .collect();
        let (_base, out) = write_tree(&records);
        let back = read_tree(&out).unwrap();
        prop_assert_eq!(back.len(), records.len());
        prop_assert_eq!(by_key(back), by_key(records));
    }
}
