//! Keeps `fixtures/backup/example-tree/` honest: the tree is regenerated
//! by the writer from fixed records and compared file by file with the
//! committed copy. After a deliberate format change, refresh it with
//! `BLESS=1 cargo test --test backup_example_tree`.

#[path = "support/paths.rs"]
mod paths;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use elastickv::backup::manifest::{Manifest, RedisScope, SourceGroup};
use elastickv::backup::redis::{RedisRecord, RedisTreeWriter, RedisValue, StreamEntry, StreamId};
use elastickv::backup::tree::{TreeReader, TreeWriter};

fn records() -> Vec<RedisRecord> {
    let s = |t: &str| t.as_bytes().to_vec();
    let mut long_key = b"user:profile:".to_vec();
    long_key.extend(std::iter::repeat_n(b'x', 250));
    vec![
        RedisRecord {
            key: s("greeting"),
            expire_at_ms: None,
            value: RedisValue::String(s("hello")),
        },
        RedisRecord {
            key: s("session:abc123"),
            expire_at_ms: Some(1_735_689_600_000),
            value: RedisValue::String(s("token")),
        },
        RedisRecord {
            key: long_key,
            expire_at_ms: None,
            value: RedisValue::String(s("a key too long for a file name")),
        },
        RedisRecord {
            key: s("visitors"),
            expire_at_ms: Some(1_735_689_600_000),
            value: RedisValue::Hll(vec![0x48, 0x59, 0x4C, 0x4C]),
        },
        RedisRecord {
            key: s("user:1"),
            expire_at_ms: None,
            value: RedisValue::Hash(vec![
                (s("name"), s("alice")),
                (vec![0xFF], s("binary-name")),
                (s("html"), s("<b>&</b>")),
            ]),
        },
        RedisRecord {
            key: s("jobs"),
            expire_at_ms: Some(1_735_689_600_000),
            value: RedisValue::List(vec![s("1"), s("2"), s("3")]),
        },
        RedisRecord {
            key: s("tags"),
            expire_at_ms: None,
            value: RedisValue::Set(vec![s("red"), s("blue"), vec![0x00, 0xFE]]),
        },
        RedisRecord {
            key: s("leaderboard"),
            expire_at_ms: None,
            value: RedisValue::ZSet(vec![
                (s("alice"), 100.0),
                (s("bob"), f64::INFINITY),
                (s("carol"), 1.5e-8),
                (s("dave"), -0.25),
            ]),
        },
        RedisRecord {
            key: s("events"),
            expire_at_ms: None,
            value: RedisValue::Stream {
                entries: vec![
                    StreamEntry {
                        id: StreamId {
                            ms: 1_714_400_000_000,
                            seq: 0,
                        },
                        fields: vec![(s("event"), s("login")), (s("user"), s("alice"))],
                    },
                    StreamEntry {
                        id: StreamId {
                            ms: 1_714_400_000_001,
                            seq: 0,
                        },
                        fields: vec![(s("f"), s("v1")), (s("f"), s("v2"))],
                    },
                ],
                last_id: StreamId {
                    ms: 1_714_400_000_001,
                    seq: 0,
                },
            },
        },
    ]
}

fn manifest() -> Manifest {
    let mut m = Manifest::new_snapshot_decode(
        UNIX_EPOCH + Duration::from_millis(1_777_477_331_094),
        "groups/1/snap/0000000000000040.fsm",
    );
    m.elastickv_version = "example".into();
    m.cluster_id = "example-cluster".into();
    m.adapters.redis = Some(RedisScope::default());
    m.set_source_groups(vec![
        SourceGroup {
            group_id: 1,
            fsm_path: "groups/1/snap/0000000000000040.fsm".into(),
            snapshot_index: 64,
            snapshot_term: 2,
            last_commit_ts: 4_517_352_099_840_000,
        },
        SourceGroup {
            group_id: 2,
            fsm_path: "groups/2/snap/0000000000000031.fsm".into(),
            snapshot_index: 49,
            snapshot_term: 3,
            last_commit_ts: 4_517_352_099_850_000,
        },
    ]);
    m
}

fn generate(out: &Path) {
    let tree = TreeWriter::create(out).unwrap();
    let mut writer = RedisTreeWriter::new(&tree, 0);
    for record in records() {
        writer.write(&record).unwrap();
    }
    writer.close().unwrap();
    tree.finish(&manifest()).unwrap();
}

fn files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(root).unwrap().to_path_buf(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn committed_example_tree_matches_the_writer() {
    let fixture = paths::repo_root().join("fixtures/backup/example-tree");
    let base = tempfile::tempdir().unwrap();
    let fresh = base.path().join("example-tree");
    generate(&fresh);
    if std::env::var_os("BLESS").is_some() {
        if fixture.exists() {
            fs::remove_dir_all(&fixture).unwrap();
        }
        fs::create_dir_all(fixture.parent().unwrap()).unwrap();
        for (rel, body) in files(&fresh) {
            let path = fixture.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, body).unwrap();
        }
    }
    let expected = files(&fixture);
    let actual = files(&fresh);
    let names = |v: &[(PathBuf, Vec<u8>)]| v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&actual),
        names(&expected),
        "file list differs; BLESS=1 regenerates after a deliberate change"
    );
    for ((path, got), (_, want)) in actual.iter().zip(&expected) {
        assert_eq!(
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(want),
            "{} differs",
            path.display()
        );
        assert_eq!(got, want, "{} differs", path.display());
    }
}

#[test]
fn committed_example_tree_verifies_and_reads_back() {
    let fixture = paths::repo_root().join("fixtures/backup/example-tree");
    // Git does not keep file modes beyond the executable bit or hard-link
    // counts, so the committed copy is read in place.
    let tree = TreeReader::open(&fixture).unwrap();
    assert_eq!(tree.manifest().source_groups.len(), 2);
    let back: Vec<RedisRecord> = elastickv::backup::redis::RedisTreeReader::new(&tree, 0)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(back.len(), records().len());
}
