//! Process-level tests of `elastickv serve` and the operator CLI against
//! real processes: reads and writes across nodes, the `kv` subcommands'
//! exit codes, single-node bootstrap with every default, restart after a
//! snapshot (the snapshot body is skipped), refusal of changed `--peers`,
//! and the Prometheus metrics.

#[path = "support/cluster.rs"]
mod cluster;

use std::time::Duration;

use cluster::{Cluster, DEFAULT_GROUP, StartMode, fetch_metrics, group_entry};

const OP_LIMIT: Duration = Duration::from_secs(20);

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn describe(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

/// A node other than `not`, among `ids`.
fn other_than(ids: &[u64], not: &[u64]) -> u64 {
    *ids.iter()
        .find(|id| !not.contains(id))
        .expect("enough nodes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_serve_reads_and_writes_through_any_node() {
    let cluster = Cluster::start(3).await;
    let ids = cluster.ids();
    let leader = cluster.wait_for_leader(DEFAULT_GROUP).await;
    let writer = other_than(&ids, &[leader]);
    let reader = other_than(&ids, &[leader, writer]);

    // Written through a follower, read through the other follower: a
    // linearizable read sees it on the first answer, no retry for freshness.
    let mut via_writer = cluster.kv_client(writer).pinned(writer);
    via_writer.put(b"alpha", b"one", OP_LIMIT).await;
    let mut via_reader = cluster.kv_client(reader).pinned(reader);
    assert_eq!(
        via_reader.get(b"alpha", OP_LIMIT).await.as_deref(),
        Some(&b"one"[..])
    );
    assert_eq!(via_reader.get(b"never-written", OP_LIMIT).await, None);

    // The same through the CLI binary.
    let put = cluster.cli(&[
        "kv",
        "put",
        "--endpoint",
        &cluster.node(reader).endpoint(),
        "beta",
        "two words",
    ]);
    assert!(put.status.success(), "kv put: {}", describe(&put));
    let get = cluster.cli(&[
        "kv",
        "get",
        "--endpoint",
        &cluster.node(writer).endpoint(),
        "beta",
    ]);
    assert!(get.status.success(), "kv get: {}", describe(&get));
    assert_eq!(stdout(&get).trim_end_matches('\n'), "two words");
    let via_leader = cluster.cli(&[
        "kv",
        "get",
        "--endpoint",
        &cluster.node(leader).endpoint(),
        "alpha",
    ]);
    assert!(via_leader.status.success(), "{}", describe(&via_leader));
    assert_eq!(stdout(&via_leader).trim_end_matches('\n'), "one");

    // A missing key: exit 1, nothing on stdout, a message on stderr.
    let missing = cluster.cli(&[
        "kv",
        "get",
        "--endpoint",
        &cluster.node(reader).endpoint(),
        "no-such-key",
    ]);
    assert_eq!(missing.status.code(), Some(1), "{}", describe(&missing));
    assert!(stdout(&missing).is_empty(), "{}", describe(&missing));
    assert!(
        !stderr(&missing).trim().is_empty(),
        "{}",
        describe(&missing)
    );

    // Delete through one node; gone through another; a scan lists the rest.
    let delete = cluster.cli(&[
        "kv",
        "delete",
        "--endpoint",
        &cluster.node(writer).endpoint(),
        "beta",
    ]);
    assert!(delete.status.success(), "kv delete: {}", describe(&delete));
    let gone = cluster.cli(&[
        "kv",
        "get",
        "--endpoint",
        &cluster.node(reader).endpoint(),
        "beta",
    ]);
    assert_eq!(gone.status.code(), Some(1), "{}", describe(&gone));
    let scan = cluster.cli(&["kv", "scan", "--endpoint", &cluster.node(reader).endpoint()]);
    assert!(scan.status.success(), "kv scan: {}", describe(&scan));
    assert_eq!(stdout(&scan), "alpha\tone\n", "{}", describe(&scan));

    // Every node reports the same leader.
    for id in &ids {
        let group = cluster.group_status(*id, DEFAULT_GROUP).await.unwrap();
        assert_eq!(group["leader"].as_u64(), Some(leader), "node {id}: {group}");
    }

    // `status --output json`: one JSON object with the documented fields.
    let out = cluster.cli(&[
        "status",
        "--endpoint",
        &cluster.node(leader).endpoint(),
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "status: {}", describe(&out));
    let status: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap_or_else(|e| {
        panic!(
            "status --output json is not one JSON object ({e}): {}",
            describe(&out)
        )
    });
    assert_eq!(status["node_id"].as_u64(), Some(leader), "{status}");
    let group = &status["groups"][0];
    assert_eq!(group["id"].as_u64(), Some(DEFAULT_GROUP), "{status}");
    assert_eq!(group["role"], "leader", "{status}");
    assert_eq!(group["leader"].as_u64(), Some(leader), "{status}");
    for field in [
        "term",
        "commit_index",
        "applied_index",
        "last_index",
        "snapshot_index",
    ] {
        assert!(group[field].is_u64(), "field {field}: {status}");
    }
    assert!(group["term"].as_u64() >= Some(1), "{status}");
    assert!(
        group["applied_index"].as_u64() <= group["last_index"].as_u64(),
        "{status}"
    );
    let peers = group["peers"].as_array().expect("peers");
    assert_eq!(peers.len(), 3, "{status}");
    for peer in peers {
        let id = peer["id"].as_u64().expect("peer id");
        assert!(ids.contains(&id), "{status}");
        assert_eq!(
            peer["address"].as_str(),
            Some(cluster.node(id).endpoint().as_str()),
            "{status}"
        );
        assert_eq!(peer["role"], "voter", "{status}");
        // The leader knows how far each peer's log matches its own.
        assert!(peer["match_index"].as_u64() >= Some(1), "{status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_with_defaults_bootstraps_and_restart_reuses_data() {
    let mut cluster = Cluster::empty();
    cluster.declare_node(1, StartMode::Defaults);
    cluster.spawn(1);
    assert_eq!(cluster.wait_for_leader(DEFAULT_GROUP).await, 1);
    let status = cluster.status(1).await.unwrap();
    assert_eq!(status["node_id"].as_u64(), Some(1), "{status}");

    let mut kv = cluster.kv_client(1);
    for i in 0..20 {
        kv.put(
            format!("k{i}").as_bytes(),
            format!("v{i}").as_bytes(),
            OP_LIMIT,
        )
        .await;
    }
    let exit = cluster.sigterm(1);
    assert!(exit.success(), "SIGTERM exit: {exit}");
    assert!(
        cluster.log_text(1).lines().count() > 1,
        "serve logged nothing"
    );

    cluster.restart(1);
    assert_eq!(cluster.wait_for_leader(DEFAULT_GROUP).await, 1);
    for i in 0..20 {
        assert_eq!(
            kv.get(format!("k{i}").as_bytes(), OP_LIMIT).await,
            Some(format!("v{i}").into_bytes()),
            "key k{i} after restart"
        );
    }
    // The restart reused the state on disk instead of starting afresh.
    let group = cluster.group_status(1, DEFAULT_GROUP).await.unwrap();
    assert_ne!(group["restart_path"].as_str(), Some("fresh"), "{group}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_snapshot_skips_the_snapshot_body_and_keeps_data() {
    let mut cluster = Cluster::start(1).await;
    let mut kv = cluster.kv_client(1);
    for i in 0..50 {
        kv.put(format!("s{i:02}").as_bytes(), &[b'x'; 100], OP_LIMIT)
            .await;
    }
    let out = cluster.cli(&[
        "snapshot",
        "create",
        "--endpoint",
        &cluster.node(1).endpoint(),
    ]);
    assert!(out.status.success(), "snapshot create: {}", describe(&out));
    let path = stdout(&out).trim().to_string();
    let meta = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("snapshot create printed {path:?}, which is not a file: {e}"));
    assert!(meta.is_file() && meta.len() > 0, "{path}");
    assert!(path.ends_with(".fsm"), "{path}");
    // Writes after the snapshot are in the log only.
    kv.put(b"after-snapshot", b"yes", OP_LIMIT).await;
    let before = cluster.group_status(1, DEFAULT_GROUP).await.unwrap();
    assert!(
        before["snapshot_index"].as_u64().unwrap_or(0) > 0,
        "{before}"
    );

    let exit = cluster.sigterm(1);
    assert!(exit.success(), "SIGTERM exit: {exit}");
    cluster.restart(1);
    cluster.wait_for_leader(DEFAULT_GROUP).await;

    let status = cluster.status(1).await.unwrap();
    let group = group_entry(&status, DEFAULT_GROUP).expect("group 1");
    assert_eq!(
        status["groups"][0]["restart_path"], "skipped",
        "restart should skip the snapshot body: {status}"
    );
    assert!(
        group["applied_index"].as_u64() >= before["applied_index"].as_u64(),
        "before {before}\nafter {group}"
    );
    for i in 0..50 {
        assert_eq!(
            kv.get(format!("s{i:02}").as_bytes(), OP_LIMIT).await,
            Some(vec![b'x'; 100]),
            "key s{i:02}"
        );
    }
    assert_eq!(
        kv.get(b"after-snapshot", OP_LIMIT).await.as_deref(),
        Some(&b"yes"[..])
    );
}

/// A snapshot that cannot be taken (here: its scratch directory is a file)
/// is retried with a growing delay, not on every Raft tick (each attempt
/// flushes the memtables and logs a warning); an explicit request still
/// tries at once and succeeds once the cause is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_snapshot_backs_off_and_recovers() {
    let cluster = Cluster::start(1).await;
    let mut kv = cluster.kv_client(1);
    kv.put(b"k", b"v", OP_LIMIT).await;
    let scratch = cluster
        .node(1)
        .data_dir
        .join("groups")
        .join(DEFAULT_GROUP.to_string())
        .join("checkpoints");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::write(&scratch, b"not a directory").unwrap();
    let endpoint = cluster.node(1).endpoint();
    let out = cluster.cli(&["snapshot", "create", "--endpoint", &endpoint]);
    assert!(!out.status.success(), "snapshot create: {}", describe(&out));

    // The request stays pending: measure how often it is retried while the
    // group keeps working over a two-second window.
    let window = std::time::Instant::now();
    let mut i = 0u32;
    while window.elapsed() < Duration::from_secs(2) {
        kv.put(format!("w{i}").as_bytes(), b"x", OP_LIMIT).await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let attempts = cluster.log_text(1).matches("snapshot not started").count();
    assert!(
        (1..=4).contains(&attempts),
        "{attempts} snapshot attempts in ~2 s (expected a backoff)"
    );

    std::fs::remove_file(&scratch).unwrap();
    let out = cluster.cli(&["snapshot", "create", "--endpoint", &endpoint]);
    assert!(out.status.success(), "snapshot create: {}", describe(&out));
    assert_eq!(kv.get(b"k", OP_LIMIT).await.as_deref(), Some(&b"v"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_different_peers_is_refused() {
    let mut cluster = Cluster::start(1).await;
    cluster.kv_client(1).put(b"keep", b"me", OP_LIMIT).await;
    assert!(cluster.sigterm(1).success());

    let original = cluster.node(1).mode.clone();
    let StartMode::Peers(peers) = &original else {
        panic!("node 1 was started with {original:?}")
    };
    let stranger = cluster::free_addrs(1)[0];
    cluster.node_mut(1).mode = StartMode::Peers(format!("{peers},2={stranger}"));
    let mut changed = cluster.serve_command(1);
    let out = cluster::run_bounded(&mut changed, Duration::from_secs(30));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        !out.status.success(),
        "changed --peers accepted: {}",
        describe(&out)
    );
    // Refused by the node's own check, not by the argument parser.
    assert!(!text.contains("Usage:"), "{}", describe(&out));
    assert!(out.status.code().is_some(), "crashed: {}", describe(&out));
    assert!(
        text.to_lowercase().contains("peers"),
        "the refusal should name --peers: {}",
        describe(&out)
    );

    // The original flags still work, and nothing was lost.
    cluster.node_mut(1).mode = original;
    cluster.restart(1);
    cluster.wait_for_leader(DEFAULT_GROUP).await;
    assert_eq!(
        cluster.kv_client(1).get(b"keep", OP_LIMIT).await.as_deref(),
        Some(&b"me"[..])
    );
}

/// One sample of a Prometheus text exposition.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: String,
    value: f64,
}

fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            Some(Sample {
                name: name.to_string(),
                labels: labels.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// The group-1 sample of the family whose name contains every fragment.
fn group_sample<'a>(samples: &'a [Sample], fragments: &[&str]) -> Option<&'a Sample> {
    samples
        .iter()
        .find(|s| fragments.iter().all(|f| s.name.contains(f)) && s.labels.contains("group=\"1\""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_per_group_raft_state() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(DEFAULT_GROUP).await;
    let mut kv = cluster.kv_client(leader);
    kv.put(b"m", b"1", OP_LIMIT).await;
    // Two reads of one key: the first fills the newest-version cache.
    for _ in 0..2 {
        assert_eq!(kv.get(b"m", OP_LIMIT).await.as_deref(), Some(&b"1"[..]));
    }
    let group = cluster.group_status(leader, DEFAULT_GROUP).await.unwrap();
    let term = group["term"].as_u64().expect("term") as f64;

    for id in cluster.ids() {
        let text = fetch_metrics(cluster.node(id).metrics)
            .await
            .unwrap_or_else(|e| panic!("metrics of node {id}: {e}"));
        let samples = parse_metrics(&text);
        let get = |fragments: &[&str]| {
            group_sample(&samples, fragments).unwrap_or_else(|| {
                panic!("node {id}: no group-1 sample named like {fragments:?} in:\n{text}")
            })
        };
        assert!(get(&["raft", "term"]).value >= term, "node {id} term");
        assert!(
            get(&["raft", "commit_index"]).value >= 1.0,
            "node {id} commit"
        );
        assert!(
            get(&["raft", "applied_index"]).value >= 1.0,
            "node {id} applied"
        );
        assert_eq!(
            get(&["raft", "leader"]).value,
            leader as f64,
            "node {id} leader"
        );
        let role = get(&["raft", "role"]).value;
        if id == leader {
            assert_ne!(role, 0.0, "the leader's role gauge says follower");
        }
        assert_eq!(
            get(&["row_cache_budget_bytes"]).value,
            (64u64 << 20) as f64,
            "node {id} row cache budget"
        );
        let hits = get(&["row_cache_hits"]).value;
        let misses = get(&["row_cache_misses"]).value;
        if id == leader {
            assert!(
                hits >= 1.0 && misses >= 1.0,
                "node {id}: {hits} hits, {misses} misses after two reads"
            );
        }
        assert!(get(&["row_cache_entries"]).value >= 0.0);
        assert!(get(&["row_cache_bytes"]).value >= 0.0);
        for figure in [
            "rocksdb_table_readers_bytes",
            "rocksdb_memtable_bytes",
            "rocksdb_block_cache_bytes",
            "rocksdb_live_sst_bytes",
            "rocksdb_l0_files",
            "rocksdb_pending_compaction_bytes",
        ] {
            assert!(get(&[figure]).value >= 0.0, "node {id} {figure}");
        }
        assert!(
            get(&["rocksdb_memtable_bytes"]).value > 0.0,
            "node {id}: the applied writes sit in memtables"
        );
    }
}
