//! The state machine's apply contract, end to end over real RocksDB:
//! determinism across replicas, idempotent replay, loud halts on entries
//! that cannot be decoded, monotone commit timestamps, ownership refusals.

use std::sync::Arc;

use elastickv::clock::Hlc;
use elastickv::fsm::{ApplyOutcome, Command, FsmError, Group, GroupOptions};
use elastickv::storage::{Cf, Mutation, StoreOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn open_group(dir: &std::path::Path) -> Group {
    Group::open(
        dir,
        GroupOptions {
            group_id: 1,
            store: StoreOptions::default(),
        },
        Arc::new(Hlc::default()),
    )
    .expect("open group")
}

/// Every raw record of the state-machine column families.
fn dump(group: &Group) -> Vec<(Cf, Vec<u8>, Vec<u8>)> {
    let snap = group.store().snapshot();
    let mut out = Vec::new();
    for cf in Cf::STATE_MACHINE {
        for item in snap.iter(cf) {
            let (k, v) = item.expect("record");
            out.push((cf, k.to_vec(), v.to_vec()));
        }
    }
    out
}

fn key(i: u8) -> Vec<u8> {
    vec![b'r', b'k', i % 8]
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..6), prop_oneof![Just(0u64), 1u64..200])
            .prop_map(|(k, value, expire_at)| Mutation::Put { key: key(k), value, expire_at }),
        2 => any::<u8>().prop_map(|k| Mutation::Delete { key: key(k) }),
        1 => (0u8..8, 1u8..8).prop_map(|(a, len)| {
            let end = vec![b'r', b'k', a + len];
            Mutation::DeleteRange { start: key(a), end: Some(end) }
        }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(k, v)| Mutation::MetaPut { key: vec![b'm', k % 4], value: vec![v] }),
    ]
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        4 => (1u64..300, proptest::collection::vec(arb_mutation(), 1..5))
            .prop_map(|(commit_ts, mutations)| Command::Raw { commit_ts, mutations }),
        3 => (0u64..300, 1u64..40, proptest::collection::vec(any::<u8>(), 0..3), proptest::collection::vec(arb_mutation(), 1..4))
            .prop_map(|(start_ts, delta, reads, mutations)| Command::Txn {
                start_ts,
                commit_ts: start_ts + delta,
                read_keys: reads.into_iter().map(key).collect(),
                read_ranges: vec![],
                mutations,
                chain: Default::default(),
            }),
        1 => (1u64..1_000_000).prop_map(|ceiling_ms| Command::HlcLease { ceiling_ms }),
        1 => (0u64..4, 1u64..300, any::<bool>()).prop_map(|(id, ts, remove)| Command::Pin { id, ts, deadline_ms: 10_000, remove }),
    ]
}

#[test]
fn replicas_fed_the_same_log_end_byte_identical() {
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    runner
        .run(
            &(proptest::collection::vec(arb_command(), 1..60), 0usize..60),
            |(log, restart_at)| {
                let a_dir = tempfile::tempdir().expect("tempdir");
                let b_dir = tempfile::tempdir().expect("tempdir");
                let a = open_group(a_dir.path());
                let mut b = open_group(b_dir.path());
                let mut outcomes_a = Vec::new();
                let mut outcomes_b = Vec::new();
                for (i, cmd) in log.iter().enumerate() {
                    let index = i as u64 + 1;
                    let payload = cmd.encode();
                    outcomes_a.push(a.apply_entry(index, &payload).expect("apply a"));
                    if i == restart_at {
                        // Replica b restarts and replays the log from the start:
                        // already applied entries must be no-ops.
                        drop(b);
                        b = open_group(b_dir.path());
                        for (j, old) in log[..i].iter().enumerate() {
                            let replay =
                                b.apply_entry(j as u64 + 1, &old.encode()).expect("replay");
                            prop_assert_eq!(replay, None);
                        }
                    }
                    outcomes_b.push(b.apply_entry(index, &payload).expect("apply b"));
                }
                let outcomes_b: Vec<_> = outcomes_b.into_iter().collect();
                prop_assert_eq!(&outcomes_a, &outcomes_b);
                prop_assert_eq!(dump(&a), dump(&b));
                prop_assert_eq!(a.applied_index(), log.len() as u64);
                prop_assert_eq!(b.applied_index(), log.len() as u64);
                Ok(())
            },
        )
        .expect("determinism");
}

#[test]
fn undecodable_entry_halts_naming_its_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = open_group(dir.path());
    let ok = Command::Raw {
        commit_ts: 5,
        mutations: vec![Mutation::Put {
            key: b"rk".to_vec(),
            value: b"v".to_vec(),
            expire_at: 0,
        }],
    };
    assert!(group.apply_entry(1, &ok.encode()).expect("apply").is_some());
    let err = group
        .apply_entry(2, b"\xff\xff not a command")
        .expect_err("garbage must halt");
    assert!(matches!(err, FsmError::Undecodable { index: 2, .. }));
    assert!(err.to_string().contains("raft entry 2"), "{err}");
    // The entry was not counted as applied: the same index stays pending.
    assert_eq!(group.applied_index(), 1);
}

#[test]
fn commit_timestamps_only_rise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = open_group(dir.path());
    let put = |ts: u64, v: &[u8]| Command::Raw {
        commit_ts: ts,
        mutations: vec![Mutation::Put {
            key: b"rk".to_vec(),
            value: v.to_vec(),
            expire_at: 0,
        }],
    };
    let first = group
        .apply_entry(1, &put(100, b"new").encode())
        .expect("apply");
    assert_eq!(first, Some(ApplyOutcome::Committed { commit_ts: 100 }));
    // A proposal stamped in the past lands just above the last commit.
    let second = group
        .apply_entry(2, &put(50, b"newer").encode())
        .expect("apply");
    assert_eq!(second, Some(ApplyOutcome::Committed { commit_ts: 101 }));
    let read = group.get(b"rk", 101).expect("read").expect("present");
    assert_eq!(read.value, b"newer");
    assert!(group.hlc().current() >= 101, "apply informs the clock");
}

#[test]
fn conflicting_txn_writes_nothing_but_consumes_the_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = open_group(dir.path());
    let w = Command::Raw {
        commit_ts: 20,
        mutations: vec![Mutation::Put {
            key: b"ra".to_vec(),
            value: b"1".to_vec(),
            expire_at: 0,
        }],
    };
    group.apply_entry(1, &w.encode()).expect("apply");
    let stale = Command::Txn {
        start_ts: 10,
        commit_ts: 30,
        read_keys: vec![b"ra".to_vec()],
        read_ranges: vec![],
        mutations: vec![Mutation::Put {
            key: b"rb".to_vec(),
            value: b"2".to_vec(),
            expire_at: 0,
        }],
        chain: Default::default(),
    };
    let outcome = group.apply_entry(2, &stale.encode()).expect("apply");
    assert_eq!(
        outcome,
        Some(ApplyOutcome::Conflict {
            key: b"ra".to_vec()
        })
    );
    assert_eq!(group.applied_index(), 2);
    assert!(group.get(b"rb", u64::MAX >> 1).expect("read").is_none());
}

#[test]
fn writes_outside_ownership_are_refused_and_reads_say_not_owned() {
    use elastickv::fsm::{OwnedRange, OwnershipTable};
    let dir = tempfile::tempdir().expect("tempdir");
    let group = open_group(dir.path());
    let table = OwnershipTable::new(vec![OwnedRange {
        start: b"m".to_vec(),
        end: None,
    }])
    .expect("table");
    let set_table = Command::Raw {
        commit_ts: 1,
        mutations: vec![Mutation::MetaPut {
            key: elastickv::fsm::ownership::OWNERSHIP_META_KEY.to_vec(),
            value: table.encode(),
        }],
    };
    group.apply_entry(1, &set_table.encode()).expect("apply");
    let outside = Command::Raw {
        commit_ts: 5,
        mutations: vec![Mutation::Put {
            key: b"a".to_vec(),
            value: b"x".to_vec(),
            expire_at: 0,
        }],
    };
    let outcome = group.apply_entry(2, &outside.encode()).expect("apply");
    assert!(matches!(outcome, Some(ApplyOutcome::Refused { .. })));
    assert!(matches!(
        group.get(b"a", 10),
        Err(FsmError::NotOwned { .. })
    ));
    assert!(group.get(b"z", 10).expect("owned read").is_none());
    // Survives a restart: the table is part of the replicated state.
    drop(group);
    let group = open_group(dir.path());
    assert!(matches!(
        group.get(b"a", 10),
        Err(FsmError::NotOwned { .. })
    ));
    // Given every key back, the group takes the write it refused.
    let everything = Command::Raw {
        commit_ts: 20,
        mutations: vec![Mutation::MetaPut {
            key: elastickv::fsm::ownership::OWNERSHIP_META_KEY.to_vec(),
            value: OwnershipTable::everything().encode(),
        }],
    };
    group.apply_entry(3, &everything.encode()).expect("apply");
    let outcome = group.apply_entry(4, &outside.encode()).expect("apply");
    assert!(matches!(outcome, Some(ApplyOutcome::Committed { .. })));
    assert!(
        group
            .get(b"a", u64::MAX >> 1)
            .expect("owned read")
            .is_some()
    );
}

#[test]
fn hlc_ceiling_is_replicated_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = open_group(dir.path());
    group
        .apply_entry(
            1,
            &Command::HlcLease {
                ceiling_ms: 9_000_000,
            }
            .encode(),
        )
        .expect("apply");
    assert_eq!(group.hlc().ceiling_ms(), 9_000_000);
    // A lower ceiling never lowers it.
    group
        .apply_entry(2, &Command::HlcLease { ceiling_ms: 5 }.encode())
        .expect("apply");
    drop(group);
    let reopened = open_group(dir.path());
    assert_eq!(reopened.hlc().ceiling_ms(), 9_000_000);
    assert_eq!(
        reopened.stored_hlc_ceiling().expect("meta"),
        Some(9_000_000)
    );
}
