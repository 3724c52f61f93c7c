//! The stop-replace-restart round trip of docs/operations.md, with real
//! processes: random Redis data written through the Redis front end of a
//! running `elastickv serve` (redis-py, with overwrites, deletes, type
//! changes, TTLs, HyperLogLogs and an expired key) → `snapshot create` →
//! `snapshot-decode` → tree → `snapshot-encode --self-test` → a new node
//! started with `serve --restore-from` → every key, type, value and TTL
//! equal (through redis-py and through redis-cli), deleted keys absent,
//! and the restored node accepts new writes.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::cluster::{Cluster, Deadline, StartMode, binary, run_bounded};

fn script() -> PathBuf {
    support::paths::repo_root().join("tests/redis_py/restore_roundtrip.py")
}

/// Runs the python driver; panics with its output on failure.
fn python(args: &[&str]) {
    let out = run_bounded(
        Command::new("python3").arg(script()).args(args),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "restore_roundtrip.py {args:?} failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the elastickv CLI; returns (exit code, stdout, stderr).
fn elastickv(args: &[&str]) -> (i32, String, String) {
    let out = run_bounded(Command::new(binary()).args(args), Duration::from_secs(120));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until the node's Redis front end answers PING.
async fn wait_redis(cluster: &Cluster, id: u64) -> u16 {
    let port = cluster.node(id).redis.port();
    let deadline = Deadline::new(
        format!("Redis of node {id} to answer"),
        Duration::from_secs(30),
    );
    loop {
        let out = run_bounded(
            Command::new("redis-cli").args(["-p", &port.to_string(), "PING"]),
            Duration::from_secs(10),
        );
        if String::from_utf8_lossy(&out.stdout).trim() == "PONG" {
            return port;
        }
        cluster.assert_no_crash();
        assert!(!deadline.expired(), "Redis of node {id} never answered");
        deadline.tick().await;
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

async fn round_trip(seed: u64) {
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name).display().to_string();

    // 1. Data written through the Redis front end of a running node.
    let source = Cluster::start(1).await;
    let port = wait_redis(&source, 1).await;
    python(&[
        "write",
        &port.to_string(),
        &seed.to_string(),
        &path("before.json"),
    ]);
    let before = read_json(&work.path().join("before.json"));
    assert!(before.as_object().unwrap().len() > 20, "{before}");

    // 2. snapshot create → decode → tree → encode (self-tested).
    let (code, out, err) = elastickv(&[
        "snapshot",
        "create",
        "--endpoint",
        &source.node(1).endpoint(),
    ]);
    assert_eq!(code, 0, "snapshot create: {err}");
    let fsm = out.trim().to_string();
    let (code, _, err) = elastickv(&[
        "snapshot-decode",
        "--input",
        &fsm,
        "--output",
        &path("tree"),
    ]);
    assert_eq!(code, 0, "snapshot-decode: {err}");
    let (code, out, err) = elastickv(&[
        "snapshot-encode",
        "--input",
        &path("tree"),
        "--output",
        &path("restore.fsm"),
        "--self-test",
        "--output-format",
        "json",
    ]);
    assert_eq!(code, 0, "snapshot-encode: {err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["self_test"]["matched"], true, "{summary}");
    drop(source);

    // 3. A new node bootstrapped from the file.
    let mut restored = Cluster::empty();
    restored.declare_node(1, StartMode::Defaults);
    restored.node_mut(1).extra_args = vec!["--restore-from".into(), path("restore.fsm")];
    restored.spawn(1);
    restored.wait_for_leader(1).await;
    let port = wait_redis(&restored, 1).await;

    // 4. Every key, type, value and TTL, over RESP and through redis-cli.
    python(&["dump", &port.to_string(), &path("after.json")]);
    let after = read_json(&work.path().join("after.json"));
    assert_eq!(after, before, "restored state differs from the original");
    python(&["cli", &port.to_string(), &path("before.json")]);

    // 5. The restored cluster is a working cluster: new writes commit
    // above the restored versions and are read back.
    let out = run_bounded(
        Command::new("redis-cli").args(["-p", &port.to_string(), "SET", "after-restore", "1"]),
        Duration::from_secs(20),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    let out = run_bounded(
        Command::new("redis-cli").args(["-p", &port.to_string(), "DBSIZE"]),
        Duration::from_secs(20),
    );
    let size = before.as_object().unwrap().len() + 1;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        size.to_string()
    );
    restored.assert_no_crash();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_redis_data_survives_snapshot_decode_encode_and_restore() {
    for seed in [1u64, 7] {
        round_trip(seed).await;
    }
}

/// A restore into a used data dir is refused (exit 4) without touching
/// it; a damaged file is refused (exit 3) before the data dir exists.
#[test]
fn restore_refuses_a_used_data_dir_and_a_damaged_file() {
    let work = tempfile::tempdir().unwrap();
    let tree = support::paths::repo_root().join("fixtures/backup/example-tree");
    let fsm = work.path().join("s.fsm");
    let (code, _, err) = elastickv(&[
        "snapshot-encode",
        "--input",
        tree.to_str().unwrap(),
        "--output",
        fsm.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let serve = |data_dir: &Path, file: &Path| {
        elastickv(&[
            "serve",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--restore-from",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "",
            "--redis",
            "",
        ])
    };

    let used = work.path().join("used");
    std::fs::create_dir(&used).unwrap();
    std::fs::write(used.join("keep"), b"old data").unwrap();
    let (code, _, err) = serve(&used, &fsm);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("not empty"), "{err}");
    let names: Vec<_> = std::fs::read_dir(&used).unwrap().collect();
    assert_eq!(names.len(), 1, "the used data dir was touched");
    assert_eq!(std::fs::read(used.join("keep")).unwrap(), b"old data");

    let mut bytes = std::fs::read(&fsm).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let damaged = work.path().join("damaged.fsm");
    std::fs::write(&damaged, &bytes).unwrap();
    let fresh = work.path().join("fresh");
    let (code, _, err) = serve(&fresh, &damaged);
    assert_eq!(code, 3, "{err}");
    assert!(
        !fresh.exists(),
        "the data dir was created for a damaged file"
    );

    let (code, _, err) = serve(&fresh, &work.path().join("absent.fsm"));
    assert_eq!(code, 5, "{err}");
    assert!(!fresh.exists());
}
