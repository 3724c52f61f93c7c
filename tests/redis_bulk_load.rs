//! `redis-cli --pipe` mass insertion into a real `elastickv serve`: one
//! million SETs (override with `ELASTICKV_BULK_KEYS`), every reply OK, then
//! `DBSIZE` and a full `SCAN` iteration agree with what was loaded: every
//! key exactly once.

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::cluster::{Cluster, run_bounded};

fn key_count() -> usize {
    std::env::var("ELASTICKV_BULK_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn cli(port: u16, args: &[&str]) -> String {
    let port = port.to_string();
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &port]).args(args);
    // A hang guard, not a speed check: DBSIZE visits all 1 000 000 keys,
    // which takes about a minute in a debug build on a loaded 2-core CI box.
    let out = run_bounded(&mut cmd, Duration::from_secs(300));
    assert!(out.status.success(), "redis-cli {args:?} failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_pipe_loads_a_million_keys_and_scan_agrees_with_dbsize() {
    let cluster = Cluster::start(1).await;
    let port = cluster.node(1).redis.port();
    let n = key_count();

    let mut input = Vec::with_capacity(n * 48);
    for i in 0..n {
        let key = format!("bulk:{i:07}");
        let value = format!("value-{i}");
        write!(
            input,
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
            key.len(),
            value.len()
        )
        .expect("encode");
    }
    let port_arg = port.to_string();
    let result = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("redis-cli")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port_arg,
                "--pipe",
                "--pipe-timeout",
                "120",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("redis-cli must be installed (redis-tools)");
        let mut stdin = child.stdin.take().expect("stdin");
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().expect("redis-cli --pipe");
        writer.join().expect("writer").expect("write stdin");
        out
    })
    .await
    .expect("pipe task");
    let report = String::from_utf8_lossy(&result.stdout).into_owned();
    assert!(result.status.success(), "redis-cli --pipe failed: {report}");
    assert!(
        report.contains(&format!("errors: 0, replies: {n}")),
        "unexpected --pipe report: {report}"
    );

    let dbsize: usize = cli(port, &["DBSIZE"]).trim().parse().expect("DBSIZE");
    assert_eq!(dbsize, n);

    // `redis-cli --scan` walks the SCAN cursor to 0 itself (default COUNT
    // 10); its output
    // goes to a file so a large key list cannot fill a pipe.
    let listing = tempfile::NamedTempFile::new().expect("temp file");
    let mut scan = Command::new("redis-cli");
    scan.args(["-h", "127.0.0.1", "-p", &port.to_string(), "--scan"])
        .stdin(Stdio::null())
        .stdout(listing.reopen().expect("reopen"))
        .stderr(Stdio::null());
    let mut child = scan.spawn().expect("redis-cli --scan");
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll redis-cli") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("redis-cli --scan did not finish in time");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "redis-cli --scan failed");
    let text = std::fs::read_to_string(listing.path()).expect("read listing");
    let mut seen = HashSet::with_capacity(n);
    for key in text.lines().filter(|l| !l.is_empty()) {
        assert!(seen.insert(key.to_string()), "SCAN returned {key} twice");
    }
    assert_eq!(seen.len(), dbsize, "a full SCAN must return every key once");
    for probe in [0, n / 2, n - 1] {
        assert!(seen.contains(&format!("bulk:{probe:07}")));
    }
}
