//! `snapshot-encode` end to end: the fixture tree and random trees encode
//! (with the self-test) into snapshots whose decoded records equal the
//! tree's; sorted runs spill and merge; every single flipped byte, removed
//! file or added file of a tree is reported (exit 3) and leaves no output;
//! an existing output is refused (exit 4); and the stream entry encoding
//! equals what XADD writes through the Redis front end.

#[path = "support/paths.rs"]
mod paths;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use elastickv::api::redis::command::lookup;
use elastickv::api::redis::commands::RedisExecutor;
use elastickv::api::redis::{ClientInfo, Command as RedisCommand, CommandExecutor, Protocol};
use elastickv::backup::encode::{EncodeOptions, ServiceEncoder, encode};
use elastickv::backup::manifest::{Manifest, RedisScope};
use elastickv::backup::redis::{RedisMapping, RedisRecord, RedisValue, StreamEntry, StreamId};
use elastickv::backup::service::{ServiceMapping, ServiceWriter};
use elastickv::backup::tree::TreeWriter;
use elastickv::clock::{Hlc, compose};
use elastickv::fsm::{Group, GroupOptions};
use elastickv::model::redis::backup_decode::read_snapshot_records;
use elastickv::model::redis::backup_encode::{Encoded, RedisEncoder, record_digest, record_rows};
use elastickv::model::redis::layout::{key_end, meta_key};
use elastickv::snapshot::verify_file;
use elastickv::storage::{Direction, StoreOptions};
use elastickv::txn::{LocalBackend, Txn};
use proptest::prelude::*;

/// (user key, value, expire_at) of each row.
type Rows = Vec<(Vec<u8>, Vec<u8>, u64)>;

/// 2096: no generated key expires during a test.
const FUTURE_MS: u64 = 4_000_000_000_000;
/// The commit time written into random trees' manifests (2024).
const COMMIT_MS: u64 = 1_714_400_000_000;

fn fixture() -> PathBuf {
    paths::repo_root().join("fixtures/backup/example-tree")
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_elastickv"))
        .args(args)
        .output()
        .expect("run elastickv");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn encode_cli(input: &Path, output: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "snapshot-encode",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// Copies a tree (regular files and directories only).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every regular file under `root`, relative.
fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let path = rel.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The output directory holds nothing but `expected` (no temp or spill
/// leftovers).
fn assert_dir_holds(dir: &Path, expected: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, expected, "leftovers in {dir:?}");
}

#[test]
fn the_fixture_tree_encodes_self_tests_and_verifies() {
    let out = tempfile::tempdir().unwrap();
    let fsm = out.path().join("restore.fsm");
    let (code, stdout, stderr) = encode_cli(
        &fixture(),
        &fsm,
        &["--self-test", "--output-format", "json"],
    );
    assert_eq!(code, 0, "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["self_test"]["matched"], true);
    assert_eq!(summary["cluster_id"], "example-cluster");
    assert_eq!(summary["index"], 1);
    assert_eq!(summary["term"], 1);
    let verified = verify_file(&fsm).unwrap();
    assert_eq!(verified.header.cluster_id, "example-cluster");
    assert_eq!(verified.header.last_commit_ts, 4_517_352_099_850_000);
    assert_eq!(verified.counts.data, summary["rows"].as_u64().unwrap());
    assert_dir_holds(out.path(), &["restore.fsm"]);

    // An existing output is never replaced.
    let before = std::fs::read(&fsm).unwrap();
    let (code, _, stderr) = encode_cli(&fixture(), &fsm, &["--cluster-id", "other"]);
    assert_eq!(code, 4, "{stderr}");
    assert_eq!(std::fs::read(&fsm).unwrap(), before);

    // --cluster-id and --group land in the header.
    let other = out.path().join("other.fsm");
    let (code, _, stderr) = encode_cli(
        &fixture(),
        &other,
        &["--cluster-id", "restored", "--group", "3"],
    );
    assert_eq!(code, 0, "{stderr}");
    let header = verify_file(&other).unwrap().header;
    assert_eq!(
        (header.cluster_id.as_str(), header.group_id),
        ("restored", 3)
    );
}

#[test]
fn every_flipped_byte_removed_or_added_file_is_reported() {
    let work = tempfile::tempdir().unwrap();
    let output_dir = work.path().join("out");
    std::fs::create_dir(&output_dir).unwrap();
    let output = output_dir.join("restore.fsm");
    let pristine = files(&fixture());
    assert!(pristine.len() >= 10);
    let mut cases = 0;
    for (index, rel) in pristine.iter().enumerate() {
        let len = std::fs::metadata(fixture().join(rel)).unwrap().len() as usize;
        for (name, damage) in [("flip", 0), ("remove", 1)] {
            let tree = work.path().join(format!("tree-{index}-{name}"));
            copy_tree(&fixture(), &tree);
            let target = tree.join(rel);
            if damage == 0 {
                let mut bytes = std::fs::read(&target).unwrap();
                let at = (index * 7919) % len.max(1);
                bytes[at] ^= 0x01;
                std::fs::write(&target, &bytes).unwrap();
            } else {
                std::fs::remove_file(&target).unwrap();
            }
            let (code, _, stderr) = encode_cli(&tree, &output, &[]);
            assert_eq!(code, 3, "{name} {rel:?}: {stderr}");
            assert!(stderr.contains("input tree"), "{name} {rel:?}: {stderr}");
            assert_dir_holds(&output_dir, &[]);
            std::fs::remove_dir_all(&tree).unwrap();
            cases += 1;
        }
    }
    let tree = work.path().join("tree-added");
    copy_tree(&fixture(), &tree);
    std::fs::write(tree.join("redis/db_0/strings/extra.bin"), b"x").unwrap();
    let (code, _, stderr) = encode_cli(&tree, &output, &[]);
    assert_eq!(code, 3, "added file: {stderr}");
    assert!(stderr.contains("not listed in CHECKSUMS"), "{stderr}");
    assert_dir_holds(&output_dir, &[]);
    assert_eq!(cases, pristine.len() * 2);
}

#[test]
fn a_missing_input_is_an_io_error_and_bad_options_are_usage_errors() {
    let work = tempfile::tempdir().unwrap();
    let (code, _, _) = encode_cli(&work.path().join("absent"), &work.path().join("o.fsm"), &[]);
    assert_eq!(code, 5);
    let (code, _, _) = encode_cli(&fixture(), &work.path().join("o.fsm"), &["--group", "0"]);
    assert_eq!(code, 2);
    let long = "x".repeat(300);
    let (code, _, _) = encode_cli(
        &fixture(),
        &work.path().join("o.fsm"),
        &["--cluster-id", &long],
    );
    assert_eq!(code, 2);
    assert_dir_holds(work.path(), &[]);
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![Just(0u8), Just(b'%'), Just(b'/'), any::<u8>()],
        1..max,
    )
}

fn value() -> impl Strategy<Value = RedisValue> {
    prop_oneof![
        bytes(40).prop_map(RedisValue::String),
        bytes(20).prop_map(|tail| RedisValue::Hll([b"HYLL".to_vec(), tail].concat())),
        prop::collection::btree_map(bytes(8), bytes(12), 0..5)
            .prop_map(|m| RedisValue::Hash(m.into_iter().collect())),
        prop::collection::vec(bytes(12), 0..6).prop_map(RedisValue::List),
        prop::collection::btree_set(bytes(8), 0..6)
            .prop_map(|s| RedisValue::Set(s.into_iter().collect())),
        prop::collection::btree_map(bytes(8), -1e6f64..1e6, 0..6)
            .prop_map(|m| RedisValue::ZSet(m.into_iter().collect())),
        (
            prop::collection::btree_set((1u64..100, 0u64..4), 0..4),
            0u64..5
        )
            .prop_map(|(ids, extra)| {
                let entries: Vec<StreamEntry> = ids
                    .into_iter()
                    .map(|(ms, seq)| StreamEntry {
                        id: StreamId { ms, seq },
                        fields: vec![(b"f".to_vec(), vec![b'v'; seq as usize])],
                    })
                    .collect();
                let newest = entries.last().map_or(StreamId::default(), |e| e.id);
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

fn records() -> impl Strategy<Value = Vec<RedisRecord>> {
    prop::collection::btree_map(
        bytes(16),
        (
            prop_oneof![
                3 => Just(None),
                1 => (1u64..1000).prop_map(|t| Some(FUTURE_MS + t)),
                1 => (1u64..1000).prop_map(|t| Some(COMMIT_MS - t)),
            ],
            value(),
        ),
        0..30,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(key, (expire_at_ms, value))| RedisRecord {
                key,
                expire_at_ms,
                value,
            })
            .collect()
    })
}

fn write_tree(root: &Path, records: &[RedisRecord]) {
    let mut manifest =
        Manifest::new_snapshot_decode(UNIX_EPOCH + Duration::from_secs(1_777_000_000), "x.fsm");
    manifest.adapters.redis = Some(RedisScope::default());
    manifest.cluster_id = "random".into();
    manifest.last_commit_ts = compose(COMMIT_MS, 3);
    let tree = TreeWriter::create(root).unwrap();
    let mut writer = RedisMapping { db: 0 }.writer(&tree).unwrap();
    for record in records {
        writer.write_record(record).unwrap();
    }
    writer.finish().unwrap();
    tree.finish(&manifest).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Random trees encode (spilling sorted runs under a tiny budget), pass
    /// the self-test, and decode back to exactly the live records.
    #[test]
    fn random_trees_round_trip_through_the_snapshot(records in records()) {
        let work = tempfile::tempdir().unwrap();
        let tree = work.path().join("tree");
        write_tree(&tree, &records);
        let out_dir = work.path().join("out");
        let mut options = EncodeOptions::new(&tree, out_dir.join("s.fsm"));
        options.self_test = true;
        options.memory_budget = 512;
        let redis = RedisEncoder;
        let services: [&dyn ServiceEncoder; 1] = [&redis];
        let summary = encode(&options, &services, &|_| {}).unwrap();
        prop_assert_eq!(summary.header.last_commit_ts, compose(COMMIT_MS, 3));
        prop_assert_eq!(summary.header.cluster_id.as_str(), "random");

        let live: Vec<&RedisRecord> = records
            .iter()
            .filter(|r| matches!(record_rows(r, COMMIT_MS), Ok(Encoded::Rows(_))))
            .collect();
        prop_assert_eq!(summary.self_test_compared, Some(live.len() as u64));
        prop_assert_eq!(
            summary.skipped_expired + summary.skipped_empty + live.len() as u64,
            records.len() as u64
        );
        let mut decoded = Vec::new();
        read_snapshot_records(&out_dir.join("s.fsm"), |record| {
            decoded.push(record_digest(&record));
            Ok(())
        })
        .unwrap();
        let expected: Vec<[u8; 32]> = live.iter().map(|r| record_digest(r)).collect();
        prop_assert_eq!(decoded, expected);
        assert_dir_holds(&out_dir, &["s.fsm"]);
        if summary.rows > 20 {
            prop_assert!(summary.spilled_runs > 1);
        }
    }
}

fn client() -> ClientInfo {
    ClientInfo {
        id: 1,
        peer_addr: "127.0.0.1:1".parse().unwrap(),
        local_addr: "127.0.0.1:2".parse().unwrap(),
        name: None,
        protocol: Protocol::Resp2,
        user: "default".to_string(),
    }
}

/// The rows the encoder produces are the rows the Redis commands write:
/// compared byte for byte (keys, values, expiry) against a store written
/// through the real executor, for every type including streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoder_rows_equal_the_rows_redis_commands_write() {
    let dir = tempfile::tempdir().unwrap();
    let options = GroupOptions {
        group_id: 1,
        store: StoreOptions {
            sync_writes: false,
            ..StoreOptions::default()
        },
    };
    let group = Group::open(dir.path(), options, Arc::new(Hlc::default())).unwrap();
    let backend = Arc::new(LocalBackend::new(Arc::new(group)));
    let exec = RedisExecutor::new(backend.clone());
    let script: &[&[&str]] = &[
        &["SET", "s", "value"],
        &["PEXPIREAT", "s", "4000000000123"],
        &["HSET", "h", "a", "1", "b", "2"],
        &["RPUSH", "l", "x", "y", "z"],
        &["SADD", "set", "m1", "m2"],
        &["ZADD", "z", "1.5", "a", "-2", "b", "inf", "c"],
        &["XADD", "x", "5-1", "f", "v", "g", "w"],
        &["XADD", "x", "7-0", "f", "v2", "f", "dup"],
        &["PEXPIREAT", "x", "4000000000999"],
    ];
    for argv in script {
        let spec = lookup(argv[0].as_bytes()).unwrap();
        let command = RedisCommand {
            spec,
            subcommand: None,
            args: argv[1..]
                .iter()
                .map(|a| bytes::Bytes::from(a.to_string()))
                .collect(),
        };
        let reply = exec.execute(&client(), command).await;
        assert!(
            !format!("{reply:?}").contains("Error"),
            "{argv:?}: {reply:?}"
        );
    }
    let entry = |ms, seq, fields: &[(&str, &str)]| StreamEntry {
        id: StreamId { ms, seq },
        fields: fields
            .iter()
            .map(|(f, v)| (f.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
    };
    let record = |key: &str, expire_at_ms, value| RedisRecord {
        key: key.as_bytes().to_vec(),
        expire_at_ms,
        value,
    };
    let s = |t: &str| t.as_bytes().to_vec();
    let records = [
        record("s", Some(4_000_000_000_123), RedisValue::String(s("value"))),
        record(
            "h",
            None,
            RedisValue::Hash(vec![(s("a"), s("1")), (s("b"), s("2"))]),
        ),
        record("l", None, RedisValue::List(vec![s("x"), s("y"), s("z")])),
        record("set", None, RedisValue::Set(vec![s("m1"), s("m2")])),
        record(
            "z",
            None,
            RedisValue::ZSet(vec![(s("a"), 1.5), (s("b"), -2.0), (s("c"), f64::INFINITY)]),
        ),
        record(
            "x",
            Some(4_000_000_000_999),
            RedisValue::Stream {
                entries: vec![
                    entry(5, 1, &[("f", "v"), ("g", "w")]),
                    entry(7, 0, &[("f", "v2"), ("f", "dup")]),
                ],
                last_id: StreamId { ms: 7, seq: 0 },
            },
        ),
    ];
    let mut txn = Txn::begin(backend.as_ref()).await.unwrap();
    for record in &records {
        let Ok(Encoded::Rows(mut rows)) = record_rows(record, COMMIT_MS) else {
            panic!("{record:?} produced no rows");
        };
        rows.sort_by(|a, b| a.user_key.cmp(&b.user_key));
        let encoded: Rows = rows
            .into_iter()
            .map(|row| (row.user_key, row.body, row.expire_at))
            .collect();
        let written: Rows = txn
            .scan(
                &meta_key(&record.key),
                Some(&key_end(&record.key)),
                usize::MAX,
                Direction::Forward,
            )
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.value, v.expire_at))
            .collect();
        assert_eq!(encoded, written, "rows of {:?}", record.key);
    }
}
