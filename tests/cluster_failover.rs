//! The leader of a three-node cluster is killed with SIGKILL while several
//! clients (each starting on a different node, moving to the next one on
//! errors and now and then) write and read a small set of keys; writes
//! continue under the new leader; the killed node restarts and catches up.
//! The whole recorded history, final reads through every node included,
//! must be linearizable: no stale read, no lost acknowledged write, no
//! value from nowhere.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::cluster::{Cluster, DEFAULT_GROUP, Deadline, KvClient, KvError};
use support::linearizability::{OpKind, Operation, Recorder, check};

const KEYS: [&str; 3] = ["reg-a", "reg-b", "reg-c"];

/// Counters the test polls to move from one phase to the next.
#[derive(Default)]
struct Progress {
    stop: AtomicBool,
    acked: AtomicU64,
    acked_writes: AtomicU64,
    failed: AtomicU64,
    /// Failure messages and how often each was seen, for the report.
    errors: parking_lot::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Progress {
    fn note_error(&self, error: &KvError) {
        let mut text = error.to_string();
        text.truncate(90);
        *self.errors.lock().entry(text).or_default() += 1;
    }
}

async fn client_loop(client: usize, mut kv: KvClient, recorder: Recorder, progress: Arc<Progress>) {
    let mut rng = StdRng::seed_from_u64(0xC0FFEE + client as u64);
    let mut seq = 0u64;
    while !progress.stop.load(Ordering::SeqCst) {
        let key = KEYS[rng.random_range(0..KEYS.len())];
        let invoked = Instant::now();
        let ok = if rng.random_bool(0.5) {
            seq += 1;
            let value = format!("c{client}-{seq}").into_bytes();
            let result = kv.put_once(key.as_bytes(), &value).await;
            if let Err(e) = &result {
                progress.note_error(e);
            }
            let ok = result.is_ok();
            recorder.record(Operation {
                client,
                key: key.to_string(),
                kind: OpKind::Write(Some(value)),
                invoked,
                // Any failure may still have taken effect: unknown outcome.
                returned: ok.then(Instant::now),
            });
            if ok {
                progress.acked_writes.fetch_add(1, Ordering::SeqCst);
            }
            ok
        } else {
            match kv.get_once(key.as_bytes()).await {
                Ok(value) => {
                    recorder.record(Operation {
                        client,
                        key: key.to_string(),
                        kind: OpKind::Read(value),
                        invoked,
                        returned: Some(Instant::now()),
                    });
                    true
                }
                Err(e) => {
                    progress.note_error(&e);
                    false
                }
            }
        };
        if ok {
            progress.acked.fetch_add(1, Ordering::SeqCst);
            // Wander between nodes now and then, so every node (the
            // restarted one while it catches up included) serves reads.
            if rng.random_ratio(1, 8) {
                kv.rotate();
            }
        } else {
            progress.failed.fetch_add(1, Ordering::SeqCst);
            kv.rotate();
            // Back off a little so a dead node is not hammered.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn wait_for_acks(progress: &Progress, more: u64, what: &str) {
    let target = progress.acked_writes.load(Ordering::SeqCst) + more;
    let deadline = Deadline::new(
        format!("{more} acknowledged writes {what}"),
        Duration::from_secs(30),
    );
    while progress.acked_writes.load(Ordering::SeqCst) < target {
        deadline.tick().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_sigkill_under_concurrent_writes_stays_linearizable() {
    let mut cluster = Cluster::start(3).await;
    let recorder = Recorder::new();
    let progress = Arc::new(Progress::default());

    let mut clients = Vec::new();
    for (client, node) in cluster.ids().into_iter().enumerate() {
        clients.push(tokio::spawn(client_loop(
            client,
            cluster.kv_client(node),
            recorder.clone(),
            progress.clone(),
        )));
    }

    wait_for_acks(&progress, 50, "before the kill").await;
    let victim = cluster.wait_for_leader(DEFAULT_GROUP).await;
    cluster.kill9(victim);
    let writes_at_kill = progress.acked_writes.load(Ordering::SeqCst);

    // A new leader takes over and writes go on.
    let successor = cluster.wait_for_leader(DEFAULT_GROUP).await;
    assert_ne!(successor, victim);
    wait_for_acks(&progress, 50, "after the leader was killed").await;

    cluster.restart(victim);
    wait_for_acks(&progress, 40, "after the old leader restarted").await;
    progress.stop.store(true, Ordering::SeqCst);
    for handle in clients {
        handle.await.expect("client task");
    }
    let writes_after_kill = progress.acked_writes.load(Ordering::SeqCst) - writes_at_kill;

    // The restarted node catches up with everything committed.
    cluster
        .wait_caught_up(victim, DEFAULT_GROUP, Duration::from_secs(30))
        .await;

    // Final reads of every key through every node join the history: they
    // are what makes a lost acknowledged write a violation.
    for node in cluster.ids() {
        let kv = cluster.kv_client(node).pinned(node);
        for key in KEYS {
            let deadline = Deadline::new(
                format!("a final read of {key} via node {node}"),
                Duration::from_secs(20),
            );
            loop {
                let invoked = Instant::now();
                match kv.get_once(key.as_bytes()).await {
                    Ok(value) => {
                        recorder.record(Operation {
                            client: 100 + node as usize,
                            key: key.to_string(),
                            kind: OpKind::Read(value),
                            invoked,
                            returned: Some(Instant::now()),
                        });
                        break;
                    }
                    Err(_) => deadline.tick().await,
                }
            }
        }
    }

    let history = recorder.snapshot();
    let started = Instant::now();
    let report = check(&history);
    eprintln!(
        "history: {} operations ({} acknowledged writes, {} after the kill, {} failed calls); \
         checked in {:?}: {report}",
        history.len(),
        progress.acked_writes.load(Ordering::SeqCst),
        writes_after_kill,
        progress.failed.load(Ordering::SeqCst),
        started.elapsed()
    );
    eprintln!("failed calls by message: {:#?}", progress.errors.lock());
    assert!(report.violations.is_empty(), "violations: {report}");
    assert!(report.inconclusive.is_empty(), "inconclusive: {report}");
    assert_eq!(report.keys_checked, KEYS.len());
    assert!(writes_after_kill >= 50);
}
