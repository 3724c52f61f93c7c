//! Seed 002: durable applied index and the cold-start snapshot skip, under
//! every crash ordering of the snapshot persist, with a file-backed test
//! state machine on a single-voter group driven through `GroupCore`.

mod raft_support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use elastickv::raft::envelope::RequestTag;
use elastickv::raft::{Bootstrap, Event, GroupCore, RestartPath, snapfile};
use raft_support::{SmProbe, TestSm, open_db, test_config};

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    probe: Arc<Mutex<SmProbe>>,
    persist_each_apply: bool,
    log_tail: u64,
    next: u64,
}

impl Fixture {
    fn new(persist_each_apply: bool) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        Fixture {
            dir: tmp.path().to_path_buf(),
            _tmp: tmp,
            probe: Arc::new(Mutex::new(SmProbe::default())),
            persist_each_apply,
            log_tail: 2,
            next: 0,
        }
    }

    fn sm_dir(&self) -> PathBuf {
        self.dir.join("sm")
    }

    fn open(&self, bootstrap: Bootstrap) -> GroupCore {
        let mut cfg = test_config(7, 1, &self.dir.join("group"));
        cfg.log_tail = self.log_tail;
        let db = open_db(&self.dir.join("db"));
        let sm = TestSm::open(&self.sm_dir(), self.persist_each_apply, self.probe.clone());
        let mut core = GroupCore::open(cfg, db, Box::new(sm), bootstrap).unwrap();
        let now = Duration::from_secs(1);
        core.campaign().unwrap();
        for _ in 0..10 {
            core.process_ready(now).unwrap();
            if core.is_leader() {
                break;
            }
        }
        assert!(core.is_leader());
        core
    }

    fn start(&self) -> GroupCore {
        self.open(Bootstrap::NewCluster {
            voters: vec![(1, "local".into())],
        })
    }

    fn restart(&self) -> GroupCore {
        self.open(Bootstrap::Restart)
    }

    fn write(&mut self, core: &mut GroupCore, payload: &str) -> u64 {
        self.next += 1;
        let tag = RequestTag {
            origin: 1,
            id: self.next,
        };
        let now = Duration::from_secs(1);
        core.propose(now, tag, payload.as_bytes()).unwrap();
        for _ in 0..10 {
            let out = core.process_ready(now).unwrap();
            for ev in out.events {
                if let Event::Proposal { tag: t, result } = ev
                    && t == tag
                {
                    return result.unwrap().index;
                }
            }
        }
        panic!("{payload} not applied");
    }

    fn write_n(&mut self, core: &mut GroupCore, from: usize, to: usize) {
        for i in from..to {
            self.write(core, &format!("set k{i} v{i}"));
        }
    }

    fn durable(&self) -> raft_support::SmState {
        TestSm::durable_state(&self.sm_dir()).unwrap()
    }

    fn applies_since(&self, mark: usize) -> Vec<u64> {
        self.probe.lock().unwrap().applies[mark..].to_vec()
    }
}

fn assert_keys(state: &raft_support::SmState, n: usize) {
    for i in 0..n {
        assert_eq!(
            state.map.get(&format!("k{i}")),
            Some(&format!("v{i}")),
            "k{i}"
        );
    }
    assert_eq!(state.map.len(), n);
    let idx: Vec<u64> = state.log.iter().map(|(i, _)| *i).collect();
    assert!(
        idx.windows(2).all(|w| w[0] < w[1]),
        "an entry was applied twice: {idx:?}"
    );
}

fn snap_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(snapfile::snap_dir(dir))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".fsm"))
        .collect();
    v.sort();
    v
}

#[test]
fn durable_index_covering_the_snapshot_skips_the_restore() {
    let mut f = Fixture::new(true);
    let mut core = f.start();
    f.write(&mut core, "vol 77");
    f.write_n(&mut core, 0, 10);
    let snap = core.snapshot_now().unwrap();
    assert!(snap.exists());
    let snap_index = core.status(Duration::ZERO).snapshot_index;
    // The snapshot persist raised the durable index first.
    assert!(f.durable().applied >= snap_index);
    f.write_n(&mut core, 10, 15);
    let durable = f.durable().applied;
    drop(core);

    let mark = f.probe.lock().unwrap().applies.len();
    let core = f.restart();
    assert_eq!(
        core.restart_path(),
        &RestartPath::SkippedRestore {
            snapshot: snap_index,
            durable
        }
    );
    assert!(core.status(Duration::ZERO).restart_path.contains("skipped"));
    let p = f.probe.lock().unwrap();
    assert_eq!(p.restores, 0, "body must not be restored");
    assert_eq!(p.header_checks, 1);
    drop(p);
    // Entries between the snapshot and the durable index were replayed as
    // volatile-only; none of them was applied again.
    let applied_again: Vec<u64> = f
        .applies_since(mark)
        .into_iter()
        .filter(|i| *i <= durable)
        .collect();
    assert!(applied_again.is_empty(), "{applied_again:?}");
    let vol = f.probe.lock().unwrap().volatile.clone();
    assert!(vol.iter().all(|i| *i > snap_index && *i <= durable));
    assert_eq!(vol.len() as u64, durable - snap_index);
    assert_keys(&f.durable(), 15);
}

#[test]
fn raise_failure_aborts_the_snapshot_persist() {
    let mut f = Fixture::new(true);
    let mut core = f.start();
    f.write_n(&mut core, 0, 10);
    let (first_before, _) = core.log_bounds();
    f.probe.lock().unwrap().fail_raise = true;
    assert!(core.snapshot_now().is_err());
    let st = core.status(Duration::ZERO);
    assert_eq!(
        st.snapshot_index, 1,
        "snapshot recorded despite the failed raise (only the bootstrap one may exist)"
    );
    assert_eq!(
        core.log_bounds().0,
        first_before,
        "log compacted despite the failed raise"
    );
    assert_eq!(
        snap_files(&f.dir.join("group")).len(),
        1,
        "orphan snapshot file left beside the bootstrap snapshot"
    );
    // The group keeps working and a later snapshot succeeds.
    f.probe.lock().unwrap().fail_raise = false;
    f.write_n(&mut core, 10, 12);
    core.snapshot_now().unwrap();
    assert!(core.status(Duration::ZERO).snapshot_index > 0);
}

#[test]
fn crash_after_raise_before_snapshot_record_replays_without_double_apply() {
    let mut f = Fixture::new(false);
    let mut core = f.start();
    f.write_n(&mut core, 0, 10);
    // The raise is fsynced, then the process "dies" before the snapshot is
    // recorded in raft_state.
    f.probe.lock().unwrap().raise_then_fail = true;
    assert!(core.snapshot_now().is_err());
    let durable = f.durable().applied;
    assert!(durable >= 10);
    drop(core);
    f.probe.lock().unwrap().raise_then_fail = false;
    let mark = f.probe.lock().unwrap().applies.len();
    let core = f.restart();
    // Only the bootstrap snapshot (index 1) is recorded: it is covered by the
    // durable index, and the log above it is replayed without double applies.
    assert_eq!(
        core.restart_path(),
        &RestartPath::SkippedRestore {
            snapshot: 1,
            durable
        }
    );
    assert!(f.applies_since(mark).iter().all(|i| *i > durable));
    assert_eq!(f.probe.lock().unwrap().restores, 0);
    drop(core);
    assert_keys(&f.durable(), 10);
}

#[test]
fn unsynced_applies_after_the_snapshot_are_applied_again_from_the_log() {
    // The state machine only makes its state durable when raised: applies
    // after the snapshot are lost by the crash and must be re-applied.
    let mut f = Fixture::new(false);
    let mut core = f.start();
    f.write_n(&mut core, 0, 10);
    core.snapshot_now().unwrap();
    let snap_index = core.status(Duration::ZERO).snapshot_index;
    f.write_n(&mut core, 10, 15);
    drop(core);
    assert_eq!(f.durable().applied, snap_index);
    let mark = f.probe.lock().unwrap().applies.len();
    let mut core = f.restart();
    assert_eq!(
        core.restart_path(),
        &RestartPath::SkippedRestore {
            snapshot: snap_index,
            durable: snap_index
        }
    );
    let again = f.applies_since(mark);
    assert!(again.iter().all(|i| *i > snap_index));
    assert!(
        again.len() >= 5,
        "entries after the snapshot were not re-applied: {again:?}"
    );
    // Make the state durable to inspect it.
    core.snapshot_now().unwrap();
    drop(core);
    let state = f.durable();
    assert_eq!(state.map.len(), 15);
}

#[test]
fn missing_durable_index_falls_back_to_full_restore() {
    let mut f = Fixture::new(true);
    let mut core = f.start();
    f.write_n(&mut core, 0, 10);
    core.snapshot_now().unwrap();
    let snap_index = core.status(Duration::ZERO).snapshot_index;
    f.write_n(&mut core, 10, 13);
    drop(core);
    f.probe.lock().unwrap().lose_durable_index = true;
    let core = f.restart();
    match core.restart_path() {
        RestartPath::FullRestore { snapshot, reason } => {
            assert_eq!(*snapshot, snap_index);
            assert!(reason.contains("no durable"), "{reason}");
        }
        other => panic!("expected a full restore, got {other:?}"),
    }
    assert_eq!(f.probe.lock().unwrap().restores, 1);
    drop(core);
    assert_keys(&f.durable(), 13);
}

#[test]
fn unreadable_durable_index_falls_back_to_full_restore() {
    let mut f = Fixture::new(true);
    let mut core = f.start();
    f.write_n(&mut core, 0, 6);
    core.snapshot_now().unwrap();
    drop(core);
    f.probe.lock().unwrap().fail_durable_read = true;
    let core = f.restart();
    assert!(
        matches!(core.restart_path(), RestartPath::FullRestore { reason, .. } if reason.contains("unreadable")),
        "{:?}",
        core.restart_path()
    );
    assert_eq!(f.probe.lock().unwrap().restores, 1);
    drop(core);
    assert_keys(&f.durable(), 6);
}

#[test]
fn durable_index_behind_the_snapshot_falls_back_to_full_restore() {
    let mut f = Fixture::new(true);
    let mut core = f.start();
    f.write_n(&mut core, 0, 8);
    core.snapshot_now().unwrap();
    let snap_index = core.status(Duration::ZERO).snapshot_index;
    drop(core);
    // The state machine's files went back in time (an old copy).
    let mut old = f.durable();
    old.applied = 2;
    old.map.clear();
    old.log.clear();
    std::fs::write(
        f.sm_dir().join("state.json"),
        serde_json::to_vec(&old).unwrap(),
    )
    .unwrap();
    let core = f.restart();
    assert!(
        matches!(core.restart_path(), RestartPath::FullRestore { snapshot, reason } if *snapshot == snap_index && reason.contains("behind")),
        "{:?}",
        core.restart_path()
    );
    drop(core);
    assert_keys(&f.durable(), 8);
}

#[test]
fn crash_after_record_before_compaction_restarts_cleanly() {
    // A huge tail means the persist never compacts: the on-disk state is
    // exactly "snapshot recorded, log not yet compacted".
    let mut f = Fixture::new(true);
    f.log_tail = 1_000_000;
    let mut core = f.start();
    f.write_n(&mut core, 0, 9);
    core.snapshot_now().unwrap();
    // The log starts after the bootstrap snapshot at index 1.
    assert_eq!(core.log_bounds().0, 2);
    f.write_n(&mut core, 9, 12);
    let durable = f.durable().applied;
    let snap_index = core.status(Duration::ZERO).snapshot_index;
    drop(core);
    let core = f.restart();
    assert_eq!(
        core.restart_path(),
        &RestartPath::SkippedRestore {
            snapshot: snap_index,
            durable
        }
    );
    drop(core);
    assert_keys(&f.durable(), 12);
}

#[test]
fn orphan_snapshot_file_from_a_crash_before_the_raise_is_ignored_and_purged() {
    let mut f = Fixture::new(true);
    let mut core = f.start();
    f.write_n(&mut core, 0, 5);
    core.snapshot_now().unwrap();
    let snap_index = core.status(Duration::ZERO).snapshot_index;
    f.write_n(&mut core, 5, 8);
    drop(core);
    // A newer file was written but nothing else happened before the crash.
    let group = f.dir.join("group");
    let orphan = snapfile::snapshot_path(&group, snap_index + 3, 99);
    std::fs::write(&orphan, b"half-written").unwrap();
    std::fs::write(orphan.with_extension("fsm.tmp"), b"tmp").unwrap();
    let core = f.restart();
    assert!(
        matches!(core.restart_path(), RestartPath::SkippedRestore { snapshot, .. } if *snapshot == snap_index)
    );
    assert!(!orphan.exists(), "orphan snapshot not purged");
    assert_eq!(snap_files(&group).len(), 1);
    drop(core);
    assert_keys(&f.durable(), 8);
}

#[test]
fn durable_index_without_any_snapshot_skips_replayed_entries() {
    let mut f = Fixture::new(true);
    let mut core = f.start();
    f.write(&mut core, "vol 5");
    f.write_n(&mut core, 0, 6);
    drop(core);
    let durable = f.durable().applied;
    let mark = f.probe.lock().unwrap().applies.len();
    let core = f.restart();
    // Only the bootstrap snapshot (index 1) is recorded: it is covered by the
    // durable index, and the log above it is replayed without double applies.
    assert_eq!(
        core.restart_path(),
        &RestartPath::SkippedRestore {
            snapshot: 1,
            durable
        }
    );
    assert!(f.applies_since(mark).iter().all(|i| *i > durable));
    assert!(!f.probe.lock().unwrap().volatile.is_empty());
    drop(core);
    assert_keys(&f.durable(), 6);
}
