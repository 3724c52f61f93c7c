//! Deterministic Raft tests over a simulated network: `GroupCore`s stepped
//! by a seeded harness (message loss, partitions, crashes and restarts,
//! snapshot install, leader changes, lease reads on a controllable clock).

mod raft_support;

use std::collections::BTreeSet;
use std::time::Duration;

use elastickv::raft::{Bootstrap, Event, Membership, RaftError};
use raft_support::{Sim, TestSm};

/// Every live node's applied log must be a prefix-consistent copy of the
/// same sequence, and contain every acknowledged write.
fn check_consistent(sim: &Sim, acked: &[String]) {
    let mut longest: Vec<(u64, String)> = Vec::new();
    for node in sim.nodes.values() {
        let state = TestSm::durable_state(&node.dir.join("sm")).unwrap_or_default();
        let log = state.log;
        let common = log.len().min(longest.len());
        assert_eq!(
            log[..common],
            longest[..common],
            "node {} diverged",
            node.id
        );
        if log.len() > longest.len() {
            longest = log;
        }
    }
    let applied: BTreeSet<&str> = longest.iter().map(|(_, p)| p.as_str()).collect();
    for w in acked {
        assert!(
            applied.contains(w.as_str()),
            "acknowledged write {w:?} lost"
        );
    }
}

fn wait_all_applied(sim: &mut Sim) {
    let ok = sim.run_until(3000, |s| {
        let target = s
            .nodes
            .values()
            .filter_map(|n| n.core.as_ref())
            .map(|c| c.status(s.now).commit_index)
            .max()
            .unwrap_or(0);
        s.nodes
            .values()
            .filter_map(|n| n.core.as_ref())
            .all(|c| c.applied_index() >= target)
    });
    assert!(ok, "replicas did not converge");
}

#[test]
fn replicates_under_message_loss_for_several_seeds() {
    for seed in [1u64, 7, 42] {
        let mut sim = Sim::new(seed, &[1, 2, 3], |_| {});
        sim.drop_rate = 0.1;
        let mut acked = Vec::new();
        for i in 0..30 {
            let w = format!("set k{i} v{i}");
            sim.must_write(&w);
            acked.push(w);
        }
        sim.drop_rate = 0.0;
        wait_all_applied(&mut sim);
        check_consistent(&sim, &acked);
        let state = TestSm::durable_state(&sim.nodes[&1].dir.join("sm")).unwrap();
        assert_eq!(state.map.len(), 30, "seed {seed}");
    }
}

#[test]
fn partitioned_leader_is_replaced_and_catches_up() {
    let mut sim = Sim::new(11, &[1, 2, 3], |_| {});
    let mut acked = Vec::new();
    for i in 0..5 {
        let w = format!("set a{i} {i}");
        sim.must_write(&w);
        acked.push(w);
    }
    let old = sim.wait_leader();
    sim.isolate(old);
    // A proposal on the cut-off leader never gets acknowledged.
    let lost = sim.propose_at(old, "set lost 1", 50);
    assert!(
        !matches!(lost, Some(Ok(_))),
        "cut-off leader acknowledged a write"
    );
    let ok = sim.run_until(1000, |s| s.leader().is_some_and(|l| l != old));
    assert!(ok, "no new leader");
    for i in 0..5 {
        let w = format!("set b{i} {i}");
        sim.must_write(&w);
        acked.push(w);
    }
    sim.heal();
    wait_all_applied(&mut sim);
    check_consistent(&sim, &acked);
    let state = TestSm::durable_state(&sim.nodes[&old].dir.join("sm")).unwrap();
    assert!(state.map.contains_key("b4"));
}

#[test]
fn restarted_nodes_reopen_their_log_and_rejoin() {
    let mut sim = Sim::new(5, &[1, 2, 3], |_| {});
    let mut acked = Vec::new();
    for round in 0..3 {
        for i in 0..5 {
            let w = format!("set r{round}-{i} x");
            sim.must_write(&w);
            acked.push(w);
        }
        // Crash a follower and then the leader; both come back from disk.
        let leader = sim.wait_leader();
        let follower = *sim.live().iter().find(|id| **id != leader).unwrap();
        sim.crash(follower);
        let w = format!("set during-{round} y");
        sim.must_write(&w);
        acked.push(w);
        sim.restart(follower);
        sim.crash(leader);
        let w = format!("set after-{round} z");
        sim.must_write(&w);
        acked.push(w);
        sim.restart(leader);
    }
    wait_all_applied(&mut sim);
    check_consistent(&sim, &acked);
}

#[test]
fn lagging_follower_is_caught_up_by_snapshot() {
    let mut sim = Sim::new(9, &[1, 2, 3], |cfg| {
        cfg.snapshot_every = 8;
        cfg.log_tail = 2;
    });
    let leader = sim.wait_leader();
    let lagger = *sim.live().iter().find(|id| **id != leader).unwrap();
    sim.crash(lagger);
    let mut acked = Vec::new();
    for i in 0..40 {
        let w = format!("set s{i} {i}");
        sim.must_write(&w);
        acked.push(w);
    }
    let (first, _) = sim.nodes.get_mut(&leader).unwrap().core().log_bounds();
    assert!(
        first > 2,
        "leader log was not compacted (first index {first})"
    );
    sim.restart(lagger);
    wait_all_applied(&mut sim);
    assert!(
        sim.nodes[&lagger].probe.lock().unwrap().restores >= 1,
        "no snapshot installed"
    );
    check_consistent(&sim, &acked);
    let state = TestSm::durable_state(&sim.nodes[&lagger].dir.join("sm")).unwrap();
    assert_eq!(state.map.len(), 40);
}

#[test]
fn partitioned_old_leader_refuses_reads_after_its_lease() {
    let mut sim = Sim::new(3, &[1, 2, 3], |_| {});
    sim.must_write("set k 1");
    let old = sim.wait_leader();
    // A successful ReadIndex round warms the lease; the next read is local.
    assert!(matches!(sim.read_at(old, 100), Some(Ok(_))));
    let now = sim.now;
    assert!(sim.nodes.get_mut(&old).unwrap().core().lease_valid(now));
    sim.isolate(old);
    let lease = sim.nodes[&old].cfg.lease_duration();
    // Time passes without any confirmation from the followers.
    let deadline = sim.now + lease;
    while sim.now < deadline {
        sim.tick();
    }
    let now = sim.now;
    assert!(!sim.nodes.get_mut(&old).unwrap().core().lease_valid(now));
    let r = sim.read_at(old, 300);
    assert!(
        !matches!(r, Some(Ok(_))),
        "partitioned old leader served a read: {r:?}"
    );
    // Meanwhile the majority elects a new leader that writes.
    assert!(sim.run_until(1000, |s| s.leader().is_some_and(|l| l != old)));
    sim.must_write("set k 2");
    let new = sim.leader().unwrap();
    assert!(matches!(sim.read_at(new, 200), Some(Ok(_))));
}

#[test]
fn new_leader_serves_no_read_before_applying_an_entry_of_its_term() {
    let mut sim = Sim::new(21, &[1, 2, 3], |_| {});
    sim.must_write("set k 1");
    let old = sim.wait_leader();
    sim.crash(old);
    // Step until some node has just become leader.
    let mut new = 0;
    for _ in 0..2000 {
        sim.tick();
        if let Some(l) = sim.leader() {
            new = l;
            break;
        }
    }
    assert_ne!(new, 0);
    let now = sim.now;
    let core = sim.nodes.get_mut(&new).unwrap().core();
    let st = core.status(now);
    // Whatever it has applied, its lease is not valid until an entry of its
    // term is applied; a read answers only with an applied index at or
    // beyond that entry.
    if st.applied_index < st.last_index {
        assert!(!st.lease_valid);
    }
    let term_start = st.last_index;
    let r = sim.read_at(new, 300);
    match r {
        Some(Ok(index)) => assert!(
            index >= term_start,
            "read at {index} before term start {term_start}"
        ),
        other => panic!("read did not complete: {other:?}"),
    }
}

#[test]
fn membership_add_learner_promote_remove() {
    let mut sim = Sim::new(33, &[1, 2, 3], |cfg| {
        cfg.snapshot_every = 5;
        cfg.log_tail = 1;
    });
    for i in 0..12 {
        sim.must_write(&format!("set m{i} {i}"));
    }
    sim.add_node(
        4,
        Bootstrap::Join,
        &|cfg: &mut elastickv::raft::GroupConfig| {
            cfg.snapshot_every = 5;
            cfg.log_tail = 1;
        },
    );
    let leader = sim.wait_leader();
    let tag = sim.tag(leader);
    sim.nodes
        .get_mut(&leader)
        .unwrap()
        .core()
        .change_membership(
            tag,
            Membership::AddLearner {
                id: 4,
                address: "sim-4".into(),
            },
        )
        .unwrap();
    assert!(sim.run_until(500, |s| s.nodes[&leader].events.iter().any(
        |e| matches!(e, Event::ConfChange { tag: t, result: Ok(_) } if *t == tag)
    )));
    // Promotion is refused while the learner is behind.
    let commit = sim
        .nodes
        .get_mut(&leader)
        .unwrap()
        .core()
        .status(sim.now)
        .commit_index;
    let too_far = commit + 100;
    let tag2 = sim.tag(leader);
    let err = sim
        .nodes
        .get_mut(&leader)
        .unwrap()
        .core()
        .change_membership(
            tag2,
            Membership::Promote {
                id: 4,
                min_match: too_far,
            },
        )
        .unwrap_err();
    assert!(matches!(err, RaftError::NotCaughtUp { .. }), "{err:?}");
    wait_all_applied(&mut sim);
    assert!(
        sim.nodes[&4].probe.lock().unwrap().restores >= 1,
        "learner was not caught up by snapshot"
    );
    let tag3 = sim.tag(leader);
    sim.nodes
        .get_mut(&leader)
        .unwrap()
        .core()
        .change_membership(
            tag3,
            Membership::Promote {
                id: 4,
                min_match: commit,
            },
        )
        .unwrap();
    assert!(sim.run_until(500, |s| s.nodes[&leader].events.iter().any(
        |e| matches!(e, Event::ConfChange { tag: t, result: Ok(_) } if *t == tag3)
    )));
    let st = sim.nodes.get_mut(&leader).unwrap().core().status(sim.now);
    assert!(st.peers.iter().any(|p| p.id == 4 && p.role == "voter"));
    assert_eq!(
        sim.nodes
            .get_mut(&4)
            .unwrap()
            .core()
            .peers()
            .get(1)
            .map(String::as_str),
        Some("sim-1")
    );
    // Remove a voter other than the leader; writes continue with 3 voters.
    let victim = *sim
        .live()
        .iter()
        .find(|id| **id != leader && **id != 4)
        .unwrap();
    let tag4 = sim.tag(leader);
    sim.nodes
        .get_mut(&leader)
        .unwrap()
        .core()
        .change_membership(tag4, Membership::Remove { id: victim })
        .unwrap();
    assert!(sim.run_until(500, |s| s.nodes[&leader].events.iter().any(
        |e| matches!(e, Event::ConfChange { tag: t, result: Ok(_) } if *t == tag4)
    )));
    sim.crash(victim);
    sim.must_write("set after-remove 1");
    let st = sim.nodes.get_mut(&leader).unwrap().core().status(sim.now);
    assert!(!st.peers.iter().any(|p| p.id == victim));
    assert_eq!(st.peers.len(), 3);
}

#[test]
fn apply_halt_stops_the_group_loudly() {
    let mut sim = Sim::new(2, &[1, 2, 3], |_| {});
    sim.must_write("set ok 1");
    for node in sim.nodes.values() {
        node.probe.lock().unwrap().halt_on = Some("poison".into());
    }
    let leader = sim.wait_leader();
    let r = sim.propose_at(leader, "poison", 200);
    assert!(!matches!(r, Some(Ok(_))));
    for node in sim.nodes.values_mut() {
        let core = node.core.as_mut().unwrap();
        assert!(core.halted().is_some(), "node {} did not halt", node.id);
        let idx = core.applied_index();
        let st = TestSm::durable_state(&node.dir.join("sm")).unwrap();
        assert_eq!(st.applied, idx, "halted entry must not count as applied");
        assert!(matches!(
            core.propose(
                Duration::ZERO,
                elastickv::raft::envelope::RequestTag { origin: 1, id: 999 },
                b"x"
            ),
            Err(RaftError::Halted { .. })
        ));
    }
}

#[test]
fn leadership_transfer_ends_the_lease_at_once() {
    let mut sim = Sim::new(17, &[1, 2, 3], |_| {});
    sim.must_write("set k 1");
    let old = sim.wait_leader();
    assert!(matches!(sim.read_at(old, 100), Some(Ok(_))));
    let now = sim.now;
    assert!(sim.nodes.get_mut(&old).unwrap().core().lease_valid(now));
    let target = *sim.live().iter().find(|id| **id != old).unwrap();
    sim.nodes
        .get_mut(&old)
        .unwrap()
        .core()
        .transfer_leader(target)
        .unwrap();
    assert!(
        !sim.nodes.get_mut(&old).unwrap().core().lease_valid(now),
        "lease survived the start of a transfer"
    );
    assert!(sim.run_until(500, |s| s.leader() == Some(target)));
    let idx = sim.must_write("set k 2");
    let r = sim.read_at(target, 200);
    assert!(matches!(r, Some(Ok(i)) if i >= idx), "{r:?}");
}
