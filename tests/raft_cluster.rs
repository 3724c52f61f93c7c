//! Three (then four) `RaftNode`s in one process over real tonic gRPC on
//! loopback ports: forwarding from a follower, leader failure, a learner
//! caught up by a streamed snapshot and promoted, a node removed, and the
//! cluster token check.

mod raft_support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use elastickv::raft::transport::pb;
use elastickv::raft::{Bootstrap, GroupHandle, NodeConfig, RaftError, RaftNode};
use raft_support::{SmProbe, TestSm, open_db, test_config};

struct TestNode {
    id: u64,
    addr: String,
    node: RaftNode,
    group: GroupHandle,
    registry: prometheus::Registry,
}

fn cfg_for(id: u64, dir: &Path) -> elastickv::raft::GroupConfig {
    let mut cfg = test_config(1, id, &dir.join("group"));
    // Generous timing: the machine running the tests may be loaded.
    cfg.heartbeat_ticks = 5;
    cfg.election_ticks = 50;
    cfg.lease_margin = Duration::from_millis(100);
    cfg.snapshot_every = 20;
    cfg.log_tail = 5;
    cfg.request_timeout = Duration::from_secs(5);
    cfg
}

async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

async fn start(
    id: u64,
    listener: tokio::net::TcpListener,
    addr: String,
    dir: &Path,
    bootstrap: Bootstrap,
    token: Option<String>,
) -> TestNode {
    let registry = prometheus::Registry::new();
    let node = RaftNode::start(
        NodeConfig {
            node_id: id,
            advertise_addr: addr.clone(),
            token,
        },
        listener,
        &registry,
    )
    .await
    .unwrap();
    let db = open_db(&dir.join("db"));
    let probe = Arc::new(Mutex::new(SmProbe::default()));
    let sm = TestSm::open(&dir.join("sm"), true, probe);
    let group = node
        .start_group(cfg_for(id, dir), db, Box::new(sm), bootstrap)
        .unwrap();
    TestNode {
        id,
        addr,
        node,
        group,
        registry,
    }
}

async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn leader_of(nodes: &[&TestNode]) -> u64 {
    wait_for("a leader", || {
        nodes
            .iter()
            .find(|n| n.group.status().role == "leader")
            .map(|n| n.id)
    })
    .await
}

/// Retries a write through `via` until it is acknowledged.
async fn write(via: &GroupHandle, payload: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match via.propose(payload.as_bytes().to_vec()).await {
            Ok(applied) => return applied.index,
            Err(e) => {
                assert!(Instant::now() < deadline, "write {payload} failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn retry<T>(what: &str, mut f: impl AsyncFnMut() -> Result<T, RaftError>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) => {
                assert!(Instant::now() < deadline, "{what} failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_forwarding_failover_learner_snapshot_and_removal() {
    let tmp = tempfile::tempdir().unwrap();
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(bind().await);
    }
    let voters: Vec<(u64, String)> = listeners
        .iter()
        .enumerate()
        .map(|(i, (_, a))| (i as u64 + 1, a.clone()))
        .collect();
    let mut nodes = Vec::new();
    for (i, (listener, addr)) in listeners.into_iter().enumerate() {
        let id = i as u64 + 1;
        let dir = tmp.path().join(format!("n{id}"));
        nodes.push(
            start(
                id,
                listener,
                addr,
                &dir,
                Bootstrap::NewCluster {
                    voters: voters.clone(),
                },
                None,
            )
            .await,
        );
    }
    let refs: Vec<&TestNode> = nodes.iter().collect();
    let leader = leader_of(&refs).await;
    let follower = nodes.iter().find(|n| n.id != leader).unwrap();

    // A proposal accepted by a follower is applied there before it answers.
    let applied = retry("forwarded write", async || {
        follower.group.propose(b"set via-follower 1".to_vec()).await
    })
    .await;
    assert_eq!(applied.response, b"new");
    assert!(follower.group.status().applied_index >= applied.index);
    // A follower read fence covers the write.
    let fence = retry("follower read", async || follower.group.read_fence().await).await;
    assert!(fence >= applied.index);

    let leader_handle = nodes.iter().find(|n| n.id == leader).unwrap().group.clone();
    for i in 0..30 {
        write(&leader_handle, &format!("set k{i} {i}")).await;
    }
    // The periodic snapshot is written off the group thread: wait for it.
    wait_for("a periodic snapshot", || {
        (leader_handle.status().snapshot_index > 0).then_some(())
    })
    .await;
    let before = leader_handle.status().commit_index;
    let lease_read = leader_handle.read_fence().await.unwrap();
    assert!(lease_read >= before);

    // Kill the leader: the other two elect a new one and writes continue.
    let dead = nodes.iter().position(|n| n.id == leader).unwrap();
    let dead = nodes.remove(dead);
    dead.node.shutdown().await;
    let survivors: Vec<&TestNode> = nodes.iter().collect();
    let new_leader = wait_for("a new leader", || {
        survivors
            .iter()
            .find(|n| n.group.status().role == "leader" && n.id != leader)
            .map(|n| n.id)
    })
    .await;
    let lh = nodes
        .iter()
        .find(|n| n.id == new_leader)
        .unwrap()
        .group
        .clone();
    for i in 30..40 {
        write(&lh, &format!("set k{i} {i}")).await;
    }

    // A learner joins, is caught up by a streamed snapshot, is promoted.
    let (l4, a4) = bind().await;
    let dir4 = tmp.path().join("n4");
    let n4 = start(4, l4, a4.clone(), &dir4, Bootstrap::Join, None).await;
    retry("add learner", async || lh.add_learner(4, a4.clone()).await).await;
    let target = lh.status().commit_index;
    wait_for("learner catch-up", || {
        (n4.group.status().applied_index >= target).then_some(())
    })
    .await;
    let st4 = n4.group.status();
    assert!(
        st4.snapshot_index > 0,
        "learner was not caught up by a snapshot: {st4:?}"
    );
    let spool = elastickv::raft::snapfile::spool_dir(&dir4.join("group"));
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "spool not cleaned up"
    );
    let err = lh.promote(4, target + 1_000_000).await.unwrap_err();
    assert!(matches!(err, RaftError::NotCaughtUp { .. }), "{err:?}");
    retry("promote", async || lh.promote(4, target).await).await;
    wait_for("promotion visible", || {
        lh.status()
            .peers
            .iter()
            .any(|p| p.id == 4 && p.role == "voter")
            .then_some(())
    })
    .await;

    // Remove the dead node; the group of three keeps working.
    retry("remove", async || lh.remove(leader).await).await;
    let idx = write(&lh, "set after-remove 1").await;
    assert!(!lh.status().peers.iter().any(|p| p.id == leader));
    wait_for("new voter applies", || {
        (n4.group.status().applied_index >= idx).then_some(())
    })
    .await;
    let state = TestSm::durable_state(&dir4.join("sm")).unwrap();
    assert_eq!(state.map.get("k39").map(String::as_str), Some("39"));
    assert_eq!(state.map.get("via-follower").map(String::as_str), Some("1"));
    let fence = retry("read on new voter", async || n4.group.read_fence().await).await;
    assert!(fence >= idx);

    // Snapshot on demand returns the file under <group>/snap/.
    let path = retry("snapshot", async || lh.create_snapshot().await).await;
    assert!(path.exists());
    assert_eq!(path.extension().and_then(|e| e.to_str()), Some("fsm"));

    n4.node.shutdown().await;
    for n in &nodes {
        n.node.shutdown().await;
    }
    let _ = n4.addr;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_refuses_calls_without_the_cluster_token() {
    let tmp = tempfile::tempdir().unwrap();
    let (listener, addr) = bind().await;
    let node = start(
        1,
        listener,
        addr.clone(),
        tmp.path(),
        Bootstrap::NewCluster {
            voters: vec![(1, addr.clone())],
        },
        Some("s3cret".into()),
    )
    .await;
    let mut client =
        pb::raft_transport_client::RaftTransportClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
    let batch = pb::MessageBatch {
        from_node: 9,
        from_addr: String::new(),
        messages: vec![],
    };
    let err = client.send(batch.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let mut bad = tonic::Request::new(batch.clone());
    elastickv::raft::auth::attach_token(&mut bad, Some("wrong")).unwrap();
    assert_eq!(
        client.send(bad).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    let mut good = tonic::Request::new(batch);
    elastickv::raft::auth::attach_token(&mut good, Some("s3cret")).unwrap();
    client.send(good).await.unwrap();
    // The single-voter group elects itself and serves writes and reads.
    let idx = write(&node.group, "set solo 1").await;
    assert!(node.group.read_fence().await.unwrap() >= idx);
    // Per-group metrics are exported.
    let families = node.registry.gather();
    let applied = families
        .iter()
        .find(|f| f.name() == "elastickv_raft_group_applied_index")
        .expect("applied index metric");
    let value = applied.get_metric()[0].get_gauge().get_value();
    assert!(value >= 1.0, "applied index gauge {value}");
    assert!(
        families
            .iter()
            .any(|f| f.name() == "elastickv_raft_group_starts_total")
    );
    // So is where the Ready rounds' time went: the write was appended and
    // applied, each step timed and its entries counted.
    let family = |name: &str| {
        families
            .iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("no metric {name}"))
    };
    for name in [
        "elastickv_raft_log_append_duration_seconds",
        "elastickv_raft_apply_duration_seconds",
    ] {
        let timed = family(name).get_metric()[0]
            .get_histogram()
            .get_sample_count();
        assert!(timed >= 1, "{name}: {timed} samples");
    }
    for family_name in [
        "elastickv_raft_step_entries_total",
        "elastickv_raft_thread_cpu_seconds_total",
    ] {
        let steps: Vec<String> = family(family_name)
            .get_metric()
            .iter()
            .flat_map(|m| m.get_label().iter())
            .filter(|l| l.name() == "step")
            .map(|l| l.value().to_string())
            .collect();
        assert!(
            steps.contains(&"log_append".to_string()) && steps.contains(&"apply".to_string()),
            "{family_name} steps {steps:?}"
        );
    }
    let entries: f64 = family("elastickv_raft_step_entries_total")
        .get_metric()
        .iter()
        .map(|m| m.get_counter().get_value())
        .sum();
    assert!(entries >= 2.0, "entries appended and applied: {entries}");
    assert!(node.group.leadership().borrow().is_leader);
    node.node.shutdown().await;
}
