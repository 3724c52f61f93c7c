//! Membership changes on a live cluster: a fresh `serve --join` node is
//! added as a learner (through the operator CLI), catches up, is promoted,
//! and then an original voter is removed, while a writer keeps writing the
//! whole time. Every acknowledged write must be readable at the end, and
//! writes must keep succeeding after each step.

#[path = "support/cluster.rs"]
mod cluster;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cluster::{Cluster, DEFAULT_GROUP, Deadline, KvClient, MemberOp};
use parking_lot::Mutex;
use serde_json::Value;

const OP_LIMIT: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Writer {
    stop: AtomicBool,
    acked: Mutex<Vec<(String, String)>>,
    count: AtomicU64,
}

async fn write_loop(mut kv: KvClient, writer: Arc<Writer>) {
    let mut i = 0u64;
    while !writer.stop.load(Ordering::SeqCst) {
        i += 1;
        let (key, value) = (format!("w{i:05}"), format!("value-{i}"));
        if kv.put_once(key.as_bytes(), value.as_bytes()).await.is_ok() {
            writer.acked.lock().push((key, value));
            writer.count.fetch_add(1, Ordering::SeqCst);
        } else {
            kv.rotate();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits for `more` acknowledged writes from now.
async fn wait_for_writes(writer: &Writer, more: u64, after: &str) {
    let target = writer.count.load(Ordering::SeqCst) + more;
    let deadline = Deadline::new(
        format!("{more} writes after {after}"),
        Duration::from_secs(30),
    );
    while writer.count.load(Ordering::SeqCst) < target {
        deadline.tick().await;
    }
}

fn peer(group: &Value, id: u64) -> Option<&Value> {
    group["peers"]
        .as_array()?
        .iter()
        .find(|p| p["id"].as_u64() == Some(id))
}

/// Waits until the leader's view of the group satisfies `pred`.
async fn wait_leader_view(cluster: &Cluster, what: &str, pred: impl Fn(&Value) -> bool) {
    let deadline = Deadline::new(what.to_string(), Duration::from_secs(30));
    loop {
        let leader = cluster.wait_for_leader(DEFAULT_GROUP).await;
        if let Ok(group) = cluster.group_status(leader, DEFAULT_GROUP).await
            && pred(&group)
        {
            return;
        }
        deadline.tick().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn learner_joins_catches_up_is_promoted_and_a_voter_is_removed() {
    let mut cluster = Cluster::start(3).await;
    let writer = Arc::new(Writer::default());
    let task = tokio::spawn(write_loop(cluster.kv_client(1), writer.clone()));
    wait_for_writes(&writer, 20, "start").await;

    // A fresh node that knows nothing but how to wait to be added.
    let learner = 4;
    let learner_addr = cluster.spawn_joining(learner).endpoint();
    let leader = cluster.wait_for_leader(DEFAULT_GROUP).await;
    let out = cluster.cli(&[
        "cluster",
        "add-learner",
        "--endpoint",
        &cluster.node(leader).endpoint(),
        "--node-id",
        &learner.to_string(),
        "--address",
        &learner_addr,
    ]);
    assert!(
        out.status.success(),
        "cluster add-learner: exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wait_leader_view(&cluster, "node 4 listed as a learner", |g| {
        peer(g, learner).is_some_and(|p| p["role"] == "learner")
    })
    .await;
    wait_for_writes(&writer, 20, "adding the learner").await;

    // Caught up: its applied index reaches what the leader had committed.
    cluster
        .wait_caught_up(learner, DEFAULT_GROUP, Duration::from_secs(30))
        .await;
    let learner_view = cluster.group_status(learner, DEFAULT_GROUP).await.unwrap();
    assert_ne!(learner_view["role"], "leader", "{learner_view}");
    assert!(learner_view["halted"].is_null(), "{learner_view}");
    assert!(
        peer(&learner_view, learner).is_some_and(|p| p["role"] == "learner"),
        "the caught-up learner should know its own membership: {learner_view}"
    );
    // And it serves: a write acknowledged by the leader is read through it.
    let leader = cluster.wait_for_leader(DEFAULT_GROUP).await;
    cluster
        .kv_client(leader)
        .pinned(leader)
        .put(b"seen-by-learner", b"yes", OP_LIMIT)
        .await;
    assert_eq!(
        cluster
            .kv_client(learner)
            .pinned(learner)
            .get(b"seen-by-learner", OP_LIMIT)
            .await
            .as_deref(),
        Some(&b"yes"[..]),
        "read through the caught-up learner"
    );

    cluster.membership(MemberOp::Promote, learner, "").await;
    wait_leader_view(&cluster, "node 4 promoted to voter", |g| {
        peer(g, learner).is_some_and(|p| p["role"] == "voter")
    })
    .await;
    wait_for_writes(&writer, 20, "the promotion").await;

    // Remove an original voter that is not the leader, then stop it.
    let leader = cluster.wait_for_leader(DEFAULT_GROUP).await;
    let removed = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    cluster.membership(MemberOp::Remove, removed, "").await;
    wait_leader_view(&cluster, "the removed node gone from the peers", |g| {
        peer(g, removed).is_none()
    })
    .await;
    cluster.sigterm(removed);
    wait_for_writes(&writer, 20, "the removal").await;

    writer.stop.store(true, Ordering::SeqCst);
    task.await.expect("writer task");

    // Every acknowledged write is readable through the promoted node.
    cluster
        .wait_caught_up(learner, DEFAULT_GROUP, Duration::from_secs(30))
        .await;
    let acked = writer.acked.lock().clone();
    let mut via_learner = cluster.kv_client(learner).pinned(learner);
    for (key, value) in &acked {
        assert_eq!(
            via_learner.get(key.as_bytes(), OP_LIMIT).await.as_deref(),
            Some(value.as_bytes()),
            "acknowledged write of {key}"
        );
    }
    let group = cluster.group_status(learner, DEFAULT_GROUP).await.unwrap();
    let voters = group["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .filter(|p| p["role"] == "voter")
        .count();
    assert_eq!(voters, 3, "three voters after add+promote+remove: {group}");
}
