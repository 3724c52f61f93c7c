//! Crash test: a child process (this same test binary, re-executed) applies
//! numbered batches with fsync while the parent SIGKILLs it at random
//! moments, many times. After every kill the parent reopens the store and
//! checks: every acknowledged batch is present, no batch is partly present,
//! batches are present exactly from 1 to the applied index.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use elastickv::storage::{
    Direction, GroupStore, Mutation, Outcome, ScanRequest, StoreOptions, WriteIntent,
};
use rand::{Rng, SeedableRng};

const DIR_ENV: &str = "EKV_STORAGE_CRASH_DIR";
const KEYS_PER_BATCH: usize = 4;
const ROUNDS: usize = 24;

fn batch_key(batch: u64, j: usize) -> Vec<u8> {
    format!("b{batch:08}/k{j}").into_bytes()
}

fn batch_intent(batch: u64) -> WriteIntent {
    let mut mutations: Vec<Mutation> = (0..KEYS_PER_BATCH)
        .map(|j| Mutation::Put {
            key: batch_key(batch, j),
            value: batch.to_be_bytes().repeat(16),
            expire_at: 0,
        })
        .collect();
    mutations.push(Mutation::Put {
        key: b"counter".to_vec(),
        value: batch.to_be_bytes().to_vec(),
        expire_at: 0,
    });
    mutations.push(Mutation::MetaPut {
        key: b"last-batch".to_vec(),
        value: batch.to_be_bytes().to_vec(),
    });
    WriteIntent {
        start_ts: batch,
        commit_ts: batch,
        validate: true,
        mutations,
        applied_index: Some(batch),
        ..WriteIntent::default()
    }
}

/// Applies batches after the store's applied index, printing each
/// acknowledged index; stops after `limit` batches.
fn apply_batches(dir: &Path, limit: u64, print: bool) -> u64 {
    let store = GroupStore::open(dir, StoreOptions::default()).unwrap();
    let first = store.applied_index() + 1;
    for batch in first..first + limit {
        assert_eq!(
            store.apply(&batch_intent(batch)).unwrap(),
            Outcome::Committed
        );
        if print {
            println!("ACK {batch}");
        }
    }
    store.applied_index()
}

/// Checks the invariants; returns the applied index.
fn verify(dir: &Path, acked: u64) -> u64 {
    let store = GroupStore::open(dir, StoreOptions::default()).unwrap();
    let applied = store.applied_index();
    assert_eq!(
        store.read_durable_applied_index().unwrap(),
        Some(applied).filter(|&a| a > 0)
    );
    assert!(
        applied >= acked,
        "acknowledged batch {acked} lost (applied index {applied})"
    );
    let mut counts = vec![0usize; applied as usize + 2];
    let mut req = ScanRequest {
        start: b"b".to_vec(),
        end: Some(b"c".to_vec()),
        read_ts: u64::MAX,
        limit: 500,
        direction: Direction::Forward,
        resume: None,
        keys_only: false,
    };
    loop {
        let page = store.scan(&req).unwrap();
        for row in &page.rows {
            let name = std::str::from_utf8(&row.key).unwrap();
            let batch: u64 = name[1..9].parse().unwrap();
            assert!(
                batch <= applied,
                "batch {batch} present beyond applied index {applied}"
            );
            assert_eq!(row.commit_ts, batch);
            assert_eq!(row.value, batch.to_be_bytes().repeat(16));
            counts[batch as usize] += 1;
        }
        match page.resume {
            Some(r) => req.resume = Some(r),
            None => break,
        }
    }
    for batch in 1..=applied {
        assert_eq!(
            counts[batch as usize], KEYS_PER_BATCH,
            "batch {batch} partly present"
        );
    }
    if applied > 0 {
        let counter = store.get(b"counter", u64::MAX).unwrap().unwrap();
        assert_eq!(counter.value, applied.to_be_bytes());
        assert_eq!(
            store.meta_get(b"last-batch").unwrap(),
            Some(applied.to_be_bytes().to_vec())
        );
        assert_eq!(store.last_commit_ts(), applied);
    }
    applied
}

/// The child side. Run directly (no env var), it applies a few batches in a
/// temp dir and verifies them, so it is a meaningful test on its own.
#[test]
fn crash_child_apply_loop() {
    match std::env::var_os(DIR_ENV) {
        Some(dir) => {
            apply_batches(Path::new(&dir), u64::MAX / 2, true);
        }
        None => {
            let dir = tempfile::tempdir().unwrap();
            assert_eq!(apply_batches(dir.path(), 20, false), 20);
            assert_eq!(apply_batches(dir.path(), 5, false), 25);
            assert_eq!(verify(dir.path(), 25), 25);
        }
    }
}

#[test]
fn sigkill_never_loses_or_tears_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xC0FFEE);
    let started = Instant::now();
    let mut acked = 0u64;
    let mut kills = 0usize;
    for _ in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_apply_loop",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<u64>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("ACK ")
                    && tx.send(n.trim().parse().unwrap()).is_err()
                {
                    break;
                }
            }
        });
        // Kill after a random number of acknowledgements plus a random delay,
        // so the kill lands at varied points inside apply.
        let wanted_acks = rng.random_range(1..40);
        let mut seen = 0;
        while seen < wanted_acks {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(n) => {
                    acked = acked.max(n);
                    seen += 1;
                }
                Err(e) => panic!("child made no progress: {e}"),
            }
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..3000)));
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        assert_eq!(rc, 0);
        child.wait().unwrap();
        kills += 1;
        // Acks printed before the kill still count.
        reader.join().unwrap();
        while let Ok(n) = rx.try_recv() {
            acked = acked.max(n);
        }
        let applied = verify(dir.path(), acked);
        assert!(applied >= acked);
        assert!(
            started.elapsed() < Duration::from_secs(55),
            "crash test too slow"
        );
    }
    assert_eq!(kills, ROUNDS);
    assert!(acked > 0);
}
