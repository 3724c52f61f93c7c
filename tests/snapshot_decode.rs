//! `elastickv snapshot-decode` end to end: a real group store filled through
//! the Redis front end's executor, `.fsm` files written by the production
//! snapshot path (`GroupStateMachine`), and the real binary decoding them.
//! Checks the tree (read back through the verifying tree reader),
//! `sha256sum -c CHECKSUMS`, `jq` on every JSON file, the JSON summary, exit
//! codes for damaged, foreign and conflicting inputs (with no output left
//! behind), multi-group merging and `--data-dir` discovery, also on the
//! data dir of a running `elastickv serve` process.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Output};
use std::sync::Arc;
use std::time::Duration;

use elastickv::api::redis::command::lookup;
use elastickv::api::redis::commands::RedisExecutor;
use elastickv::api::redis::{ClientInfo, Command, CommandExecutor, Protocol, Reply};
use elastickv::backup::redis::{RedisMapping, RedisRecord, RedisValue, StreamEntry, StreamId};
use elastickv::backup::service::ServiceMapping;
use elastickv::backup::tree::TreeReader;
use elastickv::clock::{Hlc, SystemWallClock};
use elastickv::fsm::{Group, GroupOptions};
use elastickv::raft::StateMachine;
use elastickv::raft::snapfile;
use elastickv::server::GroupStateMachine;
use elastickv::storage::StoreOptions;
use elastickv::txn::LocalBackend;

/// One group's store with the Redis executor over it.
struct Node {
    dir: tempfile::TempDir,
    group: Arc<Group>,
    exec: Arc<RedisExecutor<LocalBackend>>,
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

impl Node {
    fn open(group_id: u64) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let options = GroupOptions {
            group_id,
            store: StoreOptions {
                sync_writes: false,
                ..StoreOptions::default()
            },
        };
        let hlc = Arc::new(Hlc::new(SystemWallClock));
        let group = Arc::new(Group::open(&dir.path().join("db"), options, hlc).unwrap());
        let exec = RedisExecutor::new(Arc::new(LocalBackend::new(Arc::clone(&group))));
        Node { dir, group, exec }
    }

    async fn call(&self, argv: &[&[u8]]) -> Reply {
        let spec = lookup(argv[0]).unwrap();
        let command = Command {
            spec,
            subcommand: argv.get(1).and_then(|s| spec.subcommand(s)),
            args: argv[1..]
                .iter()
                .map(|a| bytes::Bytes::copy_from_slice(a))
                .collect(),
        };
        let reply = self.exec.execute(&client(), command).await;
        assert!(
            !matches!(reply, Reply::Error(_)),
            "{:?} failed: {reply:?}",
            String::from_utf8_lossy(argv[0])
        );
        reply
    }

    async fn cmd(&self, argv: &[&str]) -> Reply {
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        self.call(&argv).await
    }

    /// Writes a snapshot of the group through the production path.
    fn snapshot(&self, cluster: &str, path: &Path) {
        let sm = GroupStateMachine::new(
            Arc::clone(&self.group),
            cluster.to_string(),
            self.dir.path().join("checkpoints"),
        );
        let job = sm.begin_snapshot(self.group.applied_index(), 1).unwrap();
        job.write_to(path).unwrap();
    }
}

fn decode(args: &[&str]) -> Output {
    Process::new(env!("CARGO_BIN_EXE_elastickv"))
        .arg("snapshot-decode")
        .args(args)
        .output()
        .unwrap()
}

fn decode_paths(inputs: &[&Path], output: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<String> = Vec::new();
    for input in inputs {
        args.push("--input".into());
        args.push(input.display().to_string());
    }
    args.push("--output".into());
    args.push(output.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    decode(&refs)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read_tree(root: &Path) -> BTreeMap<Vec<u8>, RedisRecord> {
    let tree = TreeReader::open(root).unwrap();
    RedisMapping { db: 0 }
        .reader(&tree)
        .unwrap()
        .map(|record| {
            let record = record.unwrap();
            (record.key.clone(), record)
        })
        .collect()
}

fn rec(key: &[u8], ttl: Option<u64>, value: RedisValue) -> (Vec<u8>, RedisRecord) {
    (
        key.to_vec(),
        RedisRecord {
            key: key.to_vec(),
            expire_at_ms: ttl,
            value,
        },
    )
}

fn b(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

/// A dense HyperLogLog with every register zero, as Redis lays it out.
fn dense_hll() -> Vec<u8> {
    let mut sketch = b"HYLL".to_vec();
    sketch.resize(16 + 12288, 0);
    sketch
}

/// The empty sparse HyperLogLog real Redis 7 stores after `PFADD k`.
fn sparse_hll() -> Vec<u8> {
    vec![
        b'H', b'Y', b'L', b'L', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x7f, 0xff,
    ]
}

/// Fills `node` with every type, a history of overwrites, deletes, a type
/// change and an expired key; returns what a reader at the end sees.
async fn populate(node: &Node) -> BTreeMap<Vec<u8>, RedisRecord> {
    // First a key that expires, so every later write commits after its deadline.
    node.cmd(&["SET", "expired", "soon", "PX", "1"]).await;
    node.cmd(&["RPUSH", "expired-list", "a", "b"]).await;
    node.cmd(&["PEXPIRE", "expired-list", "1"]).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while node.cmd(&["EXISTS", "expired", "expired-list"]).await != Reply::Integer(0) {
        assert!(std::time::Instant::now() < deadline, "keys never expired");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.cmd(&["SET", "str", "hello-value"]).await;
    node.cmd(&["SET", "str-ttl", "v", "PX", "3600000"]).await;
    let Reply::Integer(str_ttl) = node.cmd(&["PEXPIRETIME", "str-ttl"]).await else {
        panic!("PEXPIRETIME")
    };
    node.cmd(&["SET", "over", "v1"]).await;
    node.cmd(&["SET", "over", "v2"]).await;
    node.cmd(&["HSET", "deleted", "f", "v"]).await;
    node.cmd(&["DEL", "deleted"]).await;
    node.cmd(&["RPUSH", "morph", "a", "b"]).await;
    node.cmd(&["SET", "morph", "now a string"]).await;
    node.cmd(&["SADD", "again", "old1", "old2"]).await;
    node.cmd(&["DEL", "again"]).await;
    node.cmd(&["SADD", "again", "new"]).await;
    node.cmd(&["HSET", "hash", "f1", "v1", "f2", "v2"]).await;
    node.cmd(&["HDEL", "hash", "f1"]).await;
    node.cmd(&["PEXPIRE", "hash", "7200000"]).await;
    let Reply::Integer(hash_ttl) = node.cmd(&["PEXPIRETIME", "hash"]).await else {
        panic!("PEXPIRETIME")
    };
    node.cmd(&["RPUSH", "list", "a", "b", "c"]).await;
    node.cmd(&["LPUSH", "list", "z"]).await;
    node.cmd(&["SADD", "set", "m1", "m2", "m3"]).await;
    node.cmd(&["SREM", "set", "m2"]).await;
    node.cmd(&["ZADD", "zset", "1", "a", "2", "b", "+inf", "c"])
        .await;
    node.cmd(&["ZINCRBY", "zset", "5", "a"]).await;
    node.cmd(&["XADD", "stream", "1-1", "f", "v"]).await;
    node.cmd(&["XADD", "stream", "2-1", "g", "w", "g", "w2"])
        .await;
    node.cmd(&["XADD", "stream", "3-0", "h", "x"]).await;
    node.cmd(&["XDEL", "stream", "1-1", "3-0"]).await;
    node.call(&[b"SET", b"hll-dense", &dense_hll()]).await;
    node.call(&[b"SET", b"hll-sparse", &sparse_hll()]).await;
    node.call(&[b"SET", b"bin\x00\xff", b"\x00\x01"]).await;
    let long = "k".repeat(300);
    node.cmd(&["SADD", &long, "<&>"]).await;
    [
        rec(b"str", None, RedisValue::String(b("hello-value"))),
        rec(b"str-ttl", Some(str_ttl as u64), RedisValue::String(b("v"))),
        rec(b"over", None, RedisValue::String(b("v2"))),
        rec(b"morph", None, RedisValue::String(b("now a string"))),
        rec(b"again", None, RedisValue::Set(vec![b("new")])),
        rec(
            b"hash",
            Some(hash_ttl as u64),
            RedisValue::Hash(vec![(b("f2"), b("v2"))]),
        ),
        rec(
            b"list",
            None,
            RedisValue::List(vec![b("z"), b("a"), b("b"), b("c")]),
        ),
        rec(b"set", None, RedisValue::Set(vec![b("m1"), b("m3")])),
        rec(
            b"zset",
            None,
            RedisValue::ZSet(vec![(b("a"), 6.0), (b("b"), 2.0), (b("c"), f64::INFINITY)]),
        ),
        rec(
            b"stream",
            None,
            RedisValue::Stream {
                entries: vec![StreamEntry {
                    id: StreamId { ms: 2, seq: 1 },
                    fields: vec![(b("g"), b("w")), (b("g"), b("w2"))],
                }],
                last_id: StreamId { ms: 3, seq: 0 },
            },
        ),
        rec(b"hll-dense", None, RedisValue::Hll(dense_hll())),
        rec(b"hll-sparse", None, RedisValue::Hll(sparse_hll())),
        rec(b"bin\x00\xff", None, RedisValue::String(vec![0, 1])),
        rec(long.as_bytes(), None, RedisValue::Set(vec![b("<&>")])),
    ]
    .into_iter()
    .collect()
}

fn all_files(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

fn manifest(root: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(root.join("MANIFEST.json")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_store_decodes_to_its_newest_visible_state() {
    let node = Node::open(1);
    let expected = populate(&node).await;
    let work = tempfile::tempdir().unwrap();
    let fsm = work.path().join("snap.fsm");
    node.snapshot("cluster-a", &fsm);
    let out = work.path().join("tree");
    let run = decode_paths(&[&fsm], &out, &["--output-format", "json"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(
        stderr(&run),
        "",
        "no progress bar or log when not on a terminal"
    );

    assert_eq!(read_tree(&out), expected);

    // The summary is JSON and counts what was written and skipped.
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let redis = &summary["services"]["redis"];
    assert_eq!(redis["total_keys"], expected.len() as u64);
    assert_eq!(redis["keys"]["strings"], 5);
    assert_eq!(redis["keys"]["hll"], 2);
    assert_eq!(redis["keys"]["sets"], 3);
    assert_eq!(redis["skipped"]["derived_index_rows"], 3);
    assert_eq!(
        redis["skipped"]["orphan_member_rows"], 2,
        "expired list's items"
    );
    assert!(summary["versions"]["tombstones"].as_u64().unwrap() > 0);
    assert!(summary["versions"]["superseded"].as_u64().unwrap() > 0);
    assert_eq!(summary["versions"]["expired"], 2);
    assert_eq!(summary["groups"][0]["group_id"], 1);
    assert_eq!(summary["cluster_id"], "cluster-a");

    // Header facts, not file names, fill the manifest.
    let manifest = manifest(&out);
    assert_eq!(manifest["phase"], "phase0-snapshot-decode");
    assert_eq!(manifest["cluster_id"], "cluster-a");
    assert_eq!(manifest["snapshot_index"], node.group.applied_index());
    assert_eq!(manifest["last_commit_ts"], node.group.last_commit_ts());
    assert_eq!(manifest["source"]["fsm_path"], fsm.display().to_string());
    assert_eq!(manifest["adapters"], serde_json::json!({"redis": {}}));
    assert_eq!(manifest["source_groups"][0]["group_id"], 1);

    // Standard tools read the tree.
    let check = Process::new("sha256sum")
        .args(["-c", "--quiet", "CHECKSUMS"])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut json_files = 0;
    for file in all_files(&out) {
        let name = file.to_string_lossy().into_owned();
        if name.ends_with(".json") || name.ends_with(".jsonl") {
            json_files += 1;
            let jq = Process::new("jq")
                .args(["-e", "."])
                .arg(&file)
                .output()
                .unwrap();
            assert!(jq.status.success(), "jq rejects {name}: {}", stderr(&jq));
        }
    }
    // MANIFEST, KEYMAP (the 300-byte key), strings_ttl, and one per collection.
    assert_eq!(json_files, 3 + 7);

    // The text summary names the counts too.
    let text_out = work.path().join("tree-text");
    let run = decode_paths(&[&fsm], &text_out, &[]);
    assert!(run.status.success(), "{}", stderr(&run));
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        text.contains(&format!("redis: {} keys", expected.len())),
        "{text}"
    );
    // Same input, same tree (modulo the manifest's wall time).
    let listing = |root: &Path| {
        let mut files: Vec<(PathBuf, Vec<u8>)> = all_files(root)
            .into_iter()
            .filter(|f| !f.ends_with("MANIFEST.json") && !f.ends_with("CHECKSUMS"))
            .map(|f| {
                (
                    f.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&f).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };
    assert_eq!(listing(&out), listing(&text_out));
}

fn no_leftovers(parent: &Path, name: &str) {
    let leftovers: Vec<String> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(name))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_or_foreign_inputs_exit_3_and_leave_no_output() {
    let node = Node::open(1);
    populate(&node).await;
    let work = tempfile::tempdir().unwrap();
    let fsm = work.path().join("good.fsm");
    node.snapshot("cluster-a", &fsm);
    let bytes = std::fs::read(&fsm).unwrap();

    let mut truncated = bytes.clone();
    truncated.truncate(bytes.len() * 2 / 3);
    let mut flipped = bytes.clone();
    let at = bytes
        .windows(11)
        .position(|w| w == b"hello-value")
        .expect("value in the file");
    flipped[at] ^= 0x20;
    let mut version = bytes.clone();
    version[8] = 9;
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("truncated", truncated, "truncated"),
        ("flipped", flipped, "checksum mismatch"),
        (
            "foreign",
            b"{\"not\": \"a snapshot\"}\n".to_vec(),
            "not an elastickv snapshot",
        ),
        ("version", version, "unsupported snapshot format version 9"),
        ("empty", Vec::new(), "truncated"),
    ];
    for (name, content, message) in cases {
        let input = work.path().join(format!("{name}.fsm"));
        std::fs::write(&input, &content).unwrap();
        let output = work.path().join(format!("out-{name}"));
        let run = decode_paths(&[&input], &output, &[]);
        assert_eq!(run.status.code(), Some(3), "{name}: {}", stderr(&run));
        let err = stderr(&run);
        assert!(err.contains(message), "{name}: {message:?} not in {err}");
        assert!(
            err.contains(&input.display().to_string()),
            "{name}: file not named: {err}"
        );
        assert!(!output.exists(), "{name}: output created");
        no_leftovers(work.path(), &format!("out-{name}"));
    }

    // A damaged second group's file: nothing of the good first group stays,
    // and a pre-created empty output directory stays empty.
    let other = Node::open(2);
    other.cmd(&["SET", "only-in-2", "v"]).await;
    let second = work.path().join("second.fsm");
    other.snapshot("cluster-a", &second);
    let mut damaged = std::fs::read(&second).unwrap();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    std::fs::write(&second, &damaged).unwrap();
    let output = work.path().join("out-empty");
    std::fs::create_dir(&output).unwrap();
    let run = decode_paths(&[&fsm, &second], &output, &[]);
    assert_eq!(run.status.code(), Some(3), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("checksum mismatch"),
        "{}",
        stderr(&run)
    );
    assert_eq!(std::fs::read_dir(&output).unwrap().count(), 0);
    no_leftovers(work.path(), ".out-empty.staging");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_output_errors_have_their_exit_codes() {
    let node = Node::open(1);
    node.cmd(&["SET", "k", "v"]).await;
    let work = tempfile::tempdir().unwrap();
    let fsm = work.path().join("snap.fsm");
    node.snapshot("cluster-a", &fsm);

    let output = work.path().join("full");
    std::fs::create_dir(&output).unwrap();
    std::fs::write(output.join("precious"), b"keep me").unwrap();
    let run = decode_paths(&[&fsm], &output, &[]);
    assert_eq!(run.status.code(), Some(4), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("not an empty directory"),
        "{}",
        stderr(&run)
    );
    assert_eq!(std::fs::read(output.join("precious")).unwrap(), b"keep me");
    assert_eq!(std::fs::read_dir(&output).unwrap().count(), 1);

    let fresh = work.path().join("fresh");
    let missing_input = decode(&["--output", fresh.to_str().unwrap()]);
    assert_eq!(missing_input.status.code(), Some(2));
    let bad_service = decode_paths(&[&fsm], &fresh, &["--service", "memcached"]);
    assert_eq!(bad_service.status.code(), Some(2));
    let twice = decode_paths(&[&fsm, &fsm], &fresh, &[]);
    assert_eq!(twice.status.code(), Some(2), "{}", stderr(&twice));
    assert!(
        stderr(&twice).contains("are both snapshots of group 1"),
        "{}",
        stderr(&twice)
    );
    let missing_file = decode_paths(&[&work.path().join("absent.fsm")], &fresh, &[]);
    assert_eq!(
        missing_file.status.code(),
        Some(5),
        "{}",
        stderr(&missing_file)
    );
    let wrong_cluster = decode_paths(&[&fsm], &fresh, &["--cluster-id", "cluster-b"]);
    assert_eq!(
        wrong_cluster.status.code(),
        Some(3),
        "{}",
        stderr(&wrong_cluster)
    );
    assert!(stderr(&wrong_cluster).contains("cluster-b"));
    assert!(!fresh.exists());

    let ok = decode_paths(
        &[&fsm],
        &fresh,
        &["--cluster-id", "cluster-a", "--service", "redis"],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_merge_into_one_tree() {
    let (one, two) = (Node::open(1), Node::open(2));
    one.cmd(&["SET", "a", "1"]).await;
    one.cmd(&["HSET", "h", "f", "v"]).await;
    two.cmd(&["SET", "b", "2"]).await;
    two.cmd(&["RPUSH", "l", "x"]).await;
    let work = tempfile::tempdir().unwrap();
    let (f1, f2) = (work.path().join("g1.fsm"), work.path().join("g2.fsm"));
    one.snapshot("cluster-a", &f1);
    two.snapshot("cluster-a", &f2);
    let out = work.path().join("tree");
    // Given in reverse order: the tree is built in group order anyway.
    let run = decode_paths(&[&f2, &f1], &out, &[]);
    assert!(run.status.success(), "{}", stderr(&run));
    let tree = read_tree(&out);
    let keys: Vec<&[u8]> = tree.keys().map(Vec::as_slice).collect();
    assert_eq!(keys, vec![&b"a"[..], b"b", b"h", b"l"]);
    let manifest = manifest(&out);
    assert_eq!(manifest["source_groups"].as_array().unwrap().len(), 2);
    assert_eq!(manifest["source_groups"][0]["group_id"], 1);
    assert!(
        manifest.get("snapshot_index").is_none(),
        "only for one group"
    );
    let newest = one.group.last_commit_ts().max(two.group.last_commit_ts());
    assert_eq!(manifest["last_commit_ts"], newest);

    // The same key in two groups is an inconsistency, not a choice to make.
    let three = Node::open(3);
    three.cmd(&["SET", "a", "other"]).await;
    let f3 = work.path().join("g3.fsm");
    three.snapshot("cluster-a", &f3);
    let clash = work.path().join("clash");
    let run = decode_paths(&[&f1, &f3], &clash, &[]);
    assert_eq!(run.status.code(), Some(3), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("more than one group"),
        "{}",
        stderr(&run)
    );
    assert!(!clash.exists());

    // Snapshots of another cluster are foreign.
    let four = Node::open(4);
    four.cmd(&["SET", "d", "1"]).await;
    let f4 = work.path().join("g4.fsm");
    four.snapshot("cluster-z", &f4);
    let run = decode_paths(&[&f1, &f4], &clash, &[]);
    assert_eq!(run.status.code(), Some(3), "{}", stderr(&run));
    assert!(stderr(&run).contains("cluster-z"), "{}", stderr(&run));
    assert!(!clash.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dir_decodes_the_newest_snapshot_of_every_group() {
    let (one, two) = (Node::open(1), Node::open(2));
    let data = tempfile::tempdir().unwrap();
    let group_dir = |id: u64| data.path().join("groups").join(id.to_string());
    for id in [1, 2] {
        std::fs::create_dir_all(snapfile::spool_dir(&group_dir(id))).unwrap();
    }
    one.cmd(&["SET", "k", "old"]).await;
    one.snapshot(
        "cluster-a",
        &snapfile::snapshot_path(&group_dir(1), one.group.applied_index(), 1),
    );
    one.cmd(&["SET", "k", "new"]).await;
    one.snapshot(
        "cluster-a",
        &snapfile::snapshot_path(&group_dir(1), one.group.applied_index(), 1),
    );
    two.cmd(&["SADD", "s", "m"]).await;
    two.snapshot(
        "cluster-a",
        &snapfile::snapshot_path(&group_dir(2), two.group.applied_index(), 1),
    );
    // Files a running node may hold: an unfinished temporary and a spool.
    let snap1 = snapfile::snap_dir(&group_dir(1));
    std::fs::write(
        snap1.join("ffffffffffffffff-0000000000000001.fsm.tmp"),
        b"half",
    )
    .unwrap();
    std::fs::write(
        snapfile::spool_path(&group_dir(1), u64::MAX, 1),
        b"incoming",
    )
    .unwrap();
    // A group directory without snapshots yet.
    std::fs::create_dir_all(group_dir(3)).unwrap();

    let out = data.path().join("tree");
    let run = decode(&[
        "--data-dir",
        data.path().to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--output-format",
        "json",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let tree = read_tree(&out);
    assert_eq!(tree[&b"k".to_vec()].value, RedisValue::String(b("new")));
    assert_eq!(tree[&b"s".to_vec()].value, RedisValue::Set(vec![b("m")]));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["groups"].as_array().unwrap().len(), 2);
    assert_eq!(
        summary["groups"][0]["snapshot_index"],
        one.group.applied_index()
    );

    // A file under the wrong group's directory is refused.
    std::fs::create_dir_all(snapfile::snap_dir(&group_dir(3))).unwrap();
    std::fs::copy(
        snapfile::snapshot_path(&group_dir(2), two.group.applied_index(), 1),
        snapfile::snapshot_path(&group_dir(3), 1, 1),
    )
    .unwrap();
    let misplaced = data.path().join("misplaced");
    let run = decode(&[
        "--data-dir",
        data.path().to_str().unwrap(),
        "--output",
        misplaced.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(3), "{}", stderr(&run));
    assert!(stderr(&run).contains("group 2"), "{}", stderr(&run));

    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(empty.path().join("groups/1/snap")).unwrap();
    let run = decode(&[
        "--data-dir",
        empty.path().to_str().unwrap(),
        "--output",
        misplaced.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("no finished snapshot"),
        "{}",
        stderr(&run)
    );
}

/// `redis-cli` against a running node, retried until it answers (bounded).
fn redis_cli(port: u16, args: &[&str]) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = Process::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success()
            && !text.starts_with("ERR")
            && !text.contains("refused")
            && !text.is_empty()
        {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "redis-cli {args:?}: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_dir_of_a_running_node_decodes() {
    let cluster = support::cluster::Cluster::start(1).await;
    let node = cluster.node(1);
    let port = node.redis.port();
    assert_eq!(redis_cli(port, &["SET", "live-a", "1"]), "OK");
    assert_eq!(redis_cli(port, &["HSET", "live-h", "f", "v"]), "1");
    assert_eq!(redis_cli(port, &["RPUSH", "live-l", "x", "y"]), "2");
    let written = cluster.snapshot_create(1).await.unwrap();
    assert!(written.starts_with(&node.data_dir), "{}", written.display());
    // Written after the snapshot: not in it.
    assert_eq!(redis_cli(port, &["SET", "later", "2"]), "OK");

    let out = tempfile::tempdir().unwrap();
    let tree_dir = out.path().join("tree");
    let run = decode(&[
        "--data-dir",
        node.data_dir.to_str().unwrap(),
        "--output",
        tree_dir.to_str().unwrap(),
        "--output-format",
        "json",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(node.is_running());
    let tree = read_tree(&tree_dir);
    assert_eq!(tree[&b"live-a".to_vec()].value, RedisValue::String(b("1")));
    assert_eq!(
        tree[&b"live-h".to_vec()].value,
        RedisValue::Hash(vec![(b("f"), b("v"))])
    );
    assert_eq!(
        tree[&b"live-l".to_vec()].value,
        RedisValue::List(vec![b("x"), b("y")])
    );
    assert!(!tree.contains_key(b"later".as_slice()));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["groups"][0]["path"], written.display().to_string());
    assert_eq!(manifest(&tree_dir)["cluster_id"], summary["cluster_id"]);
    assert_ne!(summary["cluster_id"], "", "a real node names its cluster");
}
