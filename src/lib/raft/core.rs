//! The deterministic heart of one Raft group on one node: the raft-rs
//! `RawNode`, its RocksDB log, the state machine and the apply/read/lease
//! bookkeeping. It has no threads, sockets or clocks of its own: the caller
//! passes the monotonic time, steps messages in and takes messages and
//! events out. The production driver (`node`) and the simulated-network
//! tests drive the same code.
//!
//! Invariants kept here:
//! - entries are persisted (one synced batch per Ready) before the
//!   messages that depend on them are released (a leader's appends may go
//!   first: its own log counts only once persisted), and applied in log
//!   order; a leader applies and answers what is committed before it
//!   persists the Ready's new entries, a follower persists and acknowledges
//!   before it applies;
//! - an entry at or below the durable applied index found at cold start
//!   (seed 002) goes to `apply_volatile`, never to `apply`;
//! - a snapshot is recorded in `raft_state` (and the log compacted) only
//!   after `raise_applied_index` succeeded for its index;
//! - a lease read is served only by a leader that applied an entry of its
//!   own term, within a lease begun by a confirmed round; losing leadership,
//!   a term change or a leadership transfer invalidates the lease at once;
//! - an `ApplyHalt` stops the group: nothing is applied or acknowledged
//!   afterwards.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ::raft::eraftpb::{
    ConfChange, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType, Message, MessageType,
    Snapshot, SnapshotMetadata,
};
use ::raft::{Config, RawNode, ReadOnlyOption, SnapshotStatus, StateRole, Storage};
use protobuf::Message as _;
use rocksdb::DB;

use crate::raft::config::GroupConfig;
use crate::raft::envelope::{self, RequestTag};
use crate::raft::error::RaftError;
use crate::raft::lease::Lease;
use crate::raft::log_store::LogStore;
use crate::raft::peers::AddressBook;
use crate::raft::snapfile::{self, SnapshotToken};
use crate::raft::state_machine::{SmError, SnapshotJob, StateMachine};
use crate::raft::status::{GroupStatus, Leadership, PeerStatus, RestartPath};

/// How a group starts.
#[derive(Debug, Clone)]
pub enum Bootstrap {
    /// Create a new cluster with these voters (id, address) if no state is
    /// on disk; existing state always wins (a data-loss guard).
    NewCluster { voters: Vec<(u64, String)> },
    /// Start empty and wait to be added by the leader.
    Join,
    /// Restart from existing state; an empty directory is an error.
    Restart,
}

/// The result of an applied proposal, returned to the proposer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub index: u64,
    pub response: Vec<u8>,
}

/// Something a waiting caller of this node must be told.
#[derive(Debug, Clone)]
pub enum Event {
    Proposal {
        tag: RequestTag,
        result: Result<Applied, RaftError>,
    },
    Read {
        tag: RequestTag,
        result: Result<u64, RaftError>,
    },
    ConfChange {
        tag: RequestTag,
        result: Result<u64, RaftError>,
    },
    Leadership(Leadership),
    Halted(String),
}

/// What one Ready round produced.
#[derive(Debug, Default)]
pub struct Output {
    pub messages: Vec<Message>,
    pub events: Vec<Event>,
}

/// What a Ready round hands over before it ends.
pub trait ReadySink {
    /// Messages that may leave now.
    fn send(&mut self, msgs: Vec<Message>);
    /// Results of proposals just applied (the state machine and `core`
    /// already reflect them), before the round persists new entries.
    fn applied(&mut self, core: &GroupCore, events: Vec<Event>);
    /// `step` of the round begins. The core keeps no clock: a driver that
    /// measures where a round's time goes times the steps itself.
    fn step_started(&mut self, _step: ReadyStep) {}
    /// `step` ended after handling `entries` log entries.
    fn step_ended(&mut self, _step: ReadyStep, _entries: usize) {}
}

/// The steps of a Ready round a driver may time (see [`ReadySink`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyStep {
    /// Writing new log entries and making them durable.
    LogAppend,
    /// Applying committed entries to the state machine.
    Apply,
}

/// A sink that keeps everything for the round's output.
#[derive(Debug, Default)]
struct Collect {
    messages: Vec<Message>,
    events: Vec<Event>,
}

impl ReadySink for Collect {
    fn send(&mut self, msgs: Vec<Message>) {
        self.messages.extend(msgs);
    }

    fn applied(&mut self, _core: &GroupCore, events: Vec<Event>) {
        self.events.extend(events);
    }
}

fn send_persisted(rd: &mut ::raft::Ready, sink: &mut dyn ReadySink) {
    let persisted = rd.take_persisted_messages();
    if !persisted.is_empty() {
        sink.send(persisted);
    }
}

/// A snapshot captured on the apply thread: its job is written elsewhere
/// (to `tmp_path`) and the ticket handed back to
/// [`GroupCore::finish_snapshot`].
#[derive(Debug)]
pub struct SnapshotTicket {
    pub index: u64,
    pub term: u64,
    conf_state: ConfState,
    peers: AddressBook,
    /// Where the job must write (create + fsync); renamed into place later.
    pub tmp_path: PathBuf,
    pub final_path: PathBuf,
}

/// Membership operations.
#[derive(Debug, Clone)]
pub enum Membership {
    AddLearner { id: u64, address: String },
    Promote { id: u64, min_match: u64 },
    Remove { id: u64 },
}

pub struct GroupCore {
    cfg: GroupConfig,
    node: RawNode<LogStore>,
    sm: Box<dyn StateMachine>,
    peers: AddressBook,
    conf_state: ConfState,
    applied: u64,
    applied_term: u64,
    /// Entries at or below this index were already durable in the state
    /// machine at cold start: volatile-only re-apply.
    skip_until: u64,
    halted: Option<String>,
    lease: Lease,
    /// Proposals made while leader: index → (term, round start, lease
    /// generation); a commit in the same term extends the lease.
    lease_rounds: BTreeMap<u64, (u64, Duration, u64)>,
    /// ReadIndex rounds started here: tag → (round start, generation).
    read_rounds: HashMap<RequestTag, (Duration, u64)>,
    /// Reads a new leader holds until it committed an entry of its term
    /// (raft-rs drops ReadIndex requests before that): tag → arrival.
    deferred_reads: Vec<(RequestTag, Duration)>,
    /// Reads forwarded to the leader by this follower: tag → last sent;
    /// re-sent after an election timeout (the leader may have dropped it).
    forwarded_reads: HashMap<RequestTag, Duration>,
    /// Confirmed reads waiting for apply: (tag, read index).
    pending_reads: Vec<(RequestTag, u64)>,
    /// Local proposals' expected index → tag, to detect overwritten entries.
    expected: BTreeMap<u64, RequestTag>,
    events: Vec<Event>,
    leadership: Leadership,
    snapshot_index: u64,
    snapshot_in_flight: bool,
    snapshot_requested: bool,
    restart_path: RestartPath,
}

fn role_name(role: StateRole) -> &'static str {
    match role {
        StateRole::Leader => "leader",
        StateRole::Follower => "follower",
        StateRole::Candidate => "candidate",
        StateRole::PreCandidate => "pre_candidate",
    }
}

impl GroupCore {
    /// Opens (or bootstraps) a group, choosing the seed-002 cold-start path.
    pub fn open(
        cfg: GroupConfig,
        db: Arc<DB>,
        mut sm: Box<dyn StateMachine>,
        bootstrap: Bootstrap,
    ) -> Result<GroupCore, RaftError> {
        if cfg.node_id == 0 {
            return Err(RaftError::Invalid("node id 0 is reserved".into()));
        }
        std::fs::create_dir_all(snapfile::spool_dir(&cfg.dir))?;
        let mut store = LogStore::open(db)?;
        let fresh = store.is_empty();
        let mut peers = store.load_peers()?;
        match (&bootstrap, fresh) {
            (Bootstrap::NewCluster { voters }, true) => {
                if voters.is_empty() {
                    return Err(RaftError::Invalid("a new cluster needs voters".into()));
                }
                let cs = ConfState {
                    voters: voters.iter().map(|(id, _)| *id).collect(),
                    ..Default::default()
                };
                peers = AddressBook::from_pairs(voters.iter().cloned());
                store.save_peers(&peers)?;
                bootstrap_snapshot(&cfg, &mut store, sm.as_mut(), cs, &peers)?;
            }
            (Bootstrap::NewCluster { .. }, false) => {
                tracing::info!(
                    group = cfg.group_id,
                    "existing raft state found: bootstrap voters ignored"
                );
            }
            (Bootstrap::Restart, true) => {
                return Err(RaftError::Invalid(format!(
                    "group {} has no raft state to restart from",
                    cfg.group_id
                )));
            }
            _ => {}
        }

        let snap = store.snapshot_record().clone();
        let snap_index = snap.get_metadata().index;
        let snap_term = snap.get_metadata().term;
        let conf_state = snap.get_metadata().get_conf_state().clone();
        let durable = sm.durable_applied_index();
        let (restart_path, skip_until) = if fresh {
            // A new cluster starts from its bootstrap snapshot (the state
            // machine is empty and its applied index already covers it); a
            // joining node starts empty and is caught up by the leader.
            (RestartPath::Fresh, snap_index)
        } else if snap_index == 0 {
            match durable {
                Ok(Some(a)) if a > 0 => (RestartPath::Replay { durable: a }, a),
                _ if fresh => (RestartPath::Fresh, 0),
                _ => (RestartPath::Replay { durable: 0 }, 0),
            }
        } else {
            let path = snapfile::snapshot_path(&cfg.dir, snap_index, snap_term);
            match durable {
                Ok(Some(a)) if a >= snap_index => {
                    sm.verify_and_apply_header(&path)?;
                    (
                        RestartPath::SkippedRestore {
                            snapshot: snap_index,
                            durable: a,
                        },
                        a,
                    )
                }
                other => {
                    let reason = match other {
                        Ok(Some(a)) => format!("durable applied index {a} is behind"),
                        Ok(None) => "no durable applied index".to_string(),
                        Err(e) => format!("durable applied index unreadable: {e}"),
                    };
                    sm.restore_snapshot(&path)?;
                    (
                        RestartPath::FullRestore {
                            snapshot: snap_index,
                            reason,
                        },
                        0,
                    )
                }
            }
        };
        tracing::info!(group = cfg.group_id, node = cfg.node_id, path = %restart_path, "raft group opened");

        let raft_cfg = Config {
            id: cfg.node_id,
            election_tick: cfg.election_ticks,
            heartbeat_tick: cfg.heartbeat_ticks,
            applied: snap_index,
            max_size_per_msg: cfg.max_size_per_msg,
            max_inflight_msgs: cfg.max_inflight_msgs,
            check_quorum: true,
            pre_vote: true,
            read_only_option: ReadOnlyOption::Safe,
            ..Default::default()
        };
        raft_cfg.validate()?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let node = RawNode::new(&raft_cfg, store, &logger)?;
        let lease = Lease::new(cfg.lease_duration());
        snapfile::purge(&cfg.dir, &[snap_index])?;
        Ok(GroupCore {
            cfg,
            node,
            sm,
            peers,
            conf_state,
            applied: snap_index,
            applied_term: snap_term,
            skip_until,
            halted: None,
            lease,
            lease_rounds: BTreeMap::new(),
            read_rounds: HashMap::new(),
            pending_reads: Vec::new(),
            deferred_reads: Vec::new(),
            forwarded_reads: HashMap::new(),
            expected: BTreeMap::new(),
            events: Vec::new(),
            leadership: Leadership::default(),
            snapshot_index: snap_index,
            snapshot_in_flight: false,
            snapshot_requested: false,
            restart_path,
        })
    }

    pub fn config(&self) -> &GroupConfig {
        &self.cfg
    }

    pub fn node_id(&self) -> u64 {
        self.cfg.node_id
    }

    pub fn restart_path(&self) -> &RestartPath {
        &self.restart_path
    }

    pub fn applied_index(&self) -> u64 {
        self.applied
    }

    pub fn peers(&self) -> &AddressBook {
        &self.peers
    }

    pub fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    pub fn leader_id(&self) -> u64 {
        self.node.raft.leader_id
    }

    pub fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    pub fn state_machine(&self) -> &dyn StateMachine {
        self.sm.as_ref()
    }

    fn check_running(&self) -> Result<(), RaftError> {
        match &self.halted {
            Some(reason) => Err(RaftError::Halted {
                group: self.cfg.group_id,
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn not_leader(&self) -> RaftError {
        let leader = self.node.raft.leader_id;
        RaftError::NotLeader {
            leader: (leader != 0)
                .then(|| (leader, self.peers.get(leader).cloned().unwrap_or_default())),
        }
    }

    pub fn tick(&mut self) {
        if self.halted.is_none() {
            self.node.tick();
        }
    }

    /// Campaigns immediately (tests, and a single-voter group's first start).
    pub fn campaign(&mut self) -> Result<(), RaftError> {
        self.check_running()?;
        Ok(self.node.campaign()?)
    }

    /// Feeds a message from a peer. A snapshot message must have its file
    /// already in place at [`GroupCore::incoming_snapshot_path`].
    pub fn step(&mut self, msg: Message) -> Result<(), RaftError> {
        self.check_running()?;
        match self.node.step(msg) {
            Ok(()) | Err(::raft::Error::StepPeerNotFound) | Err(::raft::Error::StepLocalMsg) => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn report_unreachable(&mut self, peer: u64) {
        self.node.report_unreachable(peer);
    }

    pub fn report_snapshot(&mut self, peer: u64, ok: bool) {
        let status = if ok {
            SnapshotStatus::Finish
        } else {
            SnapshotStatus::Failure
        };
        self.node.report_snapshot(peer, status);
    }

    /// The file a snapshot message refers to, on this node.
    pub fn incoming_snapshot_path(&self, snap: &Snapshot) -> PathBuf {
        let meta = snap.get_metadata();
        snapfile::snapshot_path(&self.cfg.dir, meta.index, meta.term)
    }

    /// Proposes a payload. On the leader the entry's index is tracked; a
    /// follower forwards the proposal to the leader it knows.
    pub fn propose(
        &mut self,
        now: Duration,
        tag: RequestTag,
        payload: &[u8],
    ) -> Result<(), RaftError> {
        self.check_running()?;
        let raft = &self.node.raft;
        if raft.leader_id == 0 {
            return Err(self.not_leader());
        }
        if raft.lead_transferee.is_some() {
            return Err(RaftError::TransferInProgress);
        }
        let was_leader = self.is_leader();
        let before = self.node.raft.raft_log.last_index();
        self.node
            .propose(Vec::new(), envelope::encode_proposal(tag, payload))
            .map_err(|e| match e {
                ::raft::Error::ProposalDropped => self.not_leader(),
                other => other.into(),
            })?;
        if was_leader {
            let index = self.node.raft.raft_log.last_index();
            if index > before {
                self.expected.insert(index, tag);
                self.lease_rounds
                    .insert(index, (self.node.raft.term, now, self.lease.generation()));
            }
        }
        Ok(())
    }

    /// True when a read may be served from the lease right now.
    pub fn lease_valid(&self, now: Duration) -> bool {
        let raft = &self.node.raft;
        raft.state == StateRole::Leader
            && raft.lead_transferee.is_none()
            && self.applied_term == raft.term
            && self.lease.valid(now)
    }

    /// The lease expiry callers may read under without asking this thread:
    /// `Some` only while [`GroupCore::lease_valid`] holds its conditions
    /// (leader, no transfer, an entry of this term applied, not halted).
    pub fn lease_until(&self) -> Option<Duration> {
        let raft = &self.node.raft;
        if self.halted.is_none()
            && raft.state == StateRole::Leader
            && raft.lead_transferee.is_none()
            && self.applied_term == raft.term
        {
            self.lease.expiry()
        } else {
            None
        }
    }

    /// Starts a linearizable read; the answer comes as an `Event::Read`
    /// carrying the applied index the caller may read at.
    pub fn read(&mut self, now: Duration, tag: RequestTag) -> Result<(), RaftError> {
        self.check_running()?;
        if self.lease_valid(now) {
            let index = self.node.raft.raft_log.committed;
            self.pending_reads.push((tag, index));
            self.resolve_reads();
            return Ok(());
        }
        let raft = &self.node.raft;
        if raft.leader_id == 0 {
            return Err(self.not_leader());
        }
        if raft.lead_transferee.is_some() {
            return Err(RaftError::TransferInProgress);
        }
        if self.is_leader() {
            if !self.node.raft.commit_to_current_term() {
                self.deferred_reads.push((tag, now));
                return Ok(());
            }
            self.read_rounds.insert(tag, (now, self.lease.generation()));
        } else {
            self.forwarded_reads.insert(tag, now);
        }
        self.node.read_index(envelope::encode_read(tag));
        Ok(())
    }

    fn reissue_reads(&mut self, now: Duration) {
        if self.is_leader() && self.node.raft.commit_to_current_term() {
            for (tag, start) in std::mem::take(&mut self.deferred_reads) {
                self.read_rounds
                    .insert(tag, (start, self.lease.generation()));
                self.node.read_index(envelope::encode_read(tag));
            }
        }
        if self.node.raft.leader_id == 0 || self.is_leader() {
            return;
        }
        let timeout = self.cfg.election_timeout();
        let due: Vec<RequestTag> = self
            .forwarded_reads
            .iter()
            .filter(|(_, sent)| now.saturating_sub(**sent) >= timeout)
            .map(|(tag, _)| *tag)
            .collect();
        for tag in due {
            self.forwarded_reads.insert(tag, now);
            self.node.read_index(envelope::encode_read(tag));
        }
    }

    /// Forgets a read or proposal the caller stopped waiting for.
    pub fn forget(&mut self, tag: RequestTag) {
        self.read_rounds.remove(&tag);
        self.deferred_reads.retain(|(t, _)| *t != tag);
        self.forwarded_reads.remove(&tag);
        self.pending_reads.retain(|(t, _)| *t != tag);
        self.expected.retain(|_, t| *t != tag);
    }

    /// Proposes a membership change (leader only).
    pub fn change_membership(
        &mut self,
        tag: RequestTag,
        change: Membership,
    ) -> Result<(), RaftError> {
        self.check_running()?;
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        let mut cc = ConfChange::default();
        let mut address = String::new();
        match change {
            Membership::AddLearner { id, address: addr } => {
                cc.set_change_type(ConfChangeType::AddLearnerNode);
                cc.node_id = id;
                address = addr;
            }
            Membership::Promote { id, min_match } => {
                if !self.conf_state.learners.contains(&id) {
                    return Err(RaftError::Invalid(format!("node {id} is not a learner")));
                }
                let matched = self.node.raft.prs().get(id).map(|p| p.matched).unwrap_or(0);
                if matched < min_match {
                    return Err(RaftError::NotCaughtUp {
                        id,
                        matched,
                        required: min_match,
                    });
                }
                cc.set_change_type(ConfChangeType::AddNode);
                cc.node_id = id;
                address = self.peers.get(id).cloned().unwrap_or_default();
            }
            Membership::Remove { id } => {
                if !self.conf_state.voters.contains(&id) && !self.conf_state.learners.contains(&id)
                {
                    return Err(RaftError::Invalid(format!("node {id} is not a member")));
                }
                cc.set_change_type(ConfChangeType::RemoveNode);
                cc.node_id = id;
            }
        }
        if self.node.raft.has_pending_conf() {
            return Err(RaftError::MembershipChangePending);
        }
        let before = self.node.raft.raft_log.last_index();
        self.node
            .propose_conf_change(envelope::encode_conf(tag, &address), cc)
            .map_err(|e| match e {
                ::raft::Error::ProposalDropped => RaftError::MembershipChangePending,
                other => other.into(),
            })?;
        if self.node.raft.raft_log.last_index() == before {
            return Err(RaftError::MembershipChangePending);
        }
        Ok(())
    }

    /// Asks the leader to hand leadership to `to`; the lease ends now.
    pub fn transfer_leader(&mut self, to: u64) -> Result<(), RaftError> {
        self.check_running()?;
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        if !self.conf_state.voters.contains(&to) {
            return Err(RaftError::Invalid(format!("node {to} is not a voter")));
        }
        self.lease.invalidate();
        self.node.transfer_leader(to);
        Ok(())
    }

    /// Requests a snapshot at the next opportunity.
    pub fn request_snapshot(&mut self) {
        self.snapshot_requested = true;
    }

    /// True when a snapshot should be taken now (periodic, on demand, or a
    /// peer needs one our newest snapshot cannot serve).
    pub fn snapshot_due(&mut self) -> bool {
        if self.node.store().take_snapshot_wanted() {
            self.snapshot_requested = true;
        }
        if self.halted.is_some() || self.snapshot_in_flight || self.applied == 0 {
            return false;
        }
        let periodic = self.cfg.snapshot_every > 0
            && self.applied.saturating_sub(self.snapshot_index) >= self.cfg.snapshot_every;
        let requested = self.snapshot_requested && self.applied > self.snapshot_index;
        periodic || requested
    }

    /// Captures the state machine at the applied index.
    pub fn begin_snapshot(&mut self) -> Result<(SnapshotTicket, Box<dyn SnapshotJob>), RaftError> {
        self.check_running()?;
        if self.snapshot_in_flight {
            return Err(RaftError::Invalid(
                "a snapshot is already in progress".into(),
            ));
        }
        let index = self.applied;
        let term = self.applied_term;
        let job = self.sm.begin_snapshot(index, term)?;
        self.snapshot_in_flight = true;
        self.snapshot_requested = false;
        let final_path = snapfile::snapshot_path(&self.cfg.dir, index, term);
        let mut tmp_name = final_path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let ticket = SnapshotTicket {
            index,
            term,
            conf_state: self.conf_state.clone(),
            peers: self.peers.clone(),
            tmp_path: PathBuf::from(tmp_name),
            final_path,
        };
        Ok((ticket, job))
    }

    /// Takes a snapshot synchronously (job written on this thread).
    pub fn snapshot_now(&mut self) -> Result<PathBuf, RaftError> {
        let (ticket, job) = self.begin_snapshot()?;
        let written = job.write_to(&ticket.tmp_path);
        self.finish_snapshot(ticket, written)
    }

    /// Completes a snapshot whose job ran: renames the file into place,
    /// raises the durable applied index, records the snapshot, compacts the
    /// log and purges older files. Any failure leaves the previous snapshot
    /// as the newest.
    pub fn finish_snapshot(
        &mut self,
        ticket: SnapshotTicket,
        written: Result<u64, SmError>,
    ) -> Result<PathBuf, RaftError> {
        self.snapshot_in_flight = false;
        let SnapshotTicket {
            index,
            term,
            conf_state,
            peers,
            tmp_path,
            final_path,
        } = ticket;
        let abort = |e: RaftError, path: &std::path::Path| {
            let _ = std::fs::remove_file(path);
            e
        };
        if let Err(e) = written {
            return Err(abort(e.into(), &tmp_path));
        }
        if index <= self.snapshot_index {
            let _ = std::fs::remove_file(&tmp_path);
            return Ok(snapfile::snapshot_path(
                &self.cfg.dir,
                self.snapshot_index,
                self.node.store().snapshot_record().get_metadata().term,
            ));
        }
        std::fs::rename(&tmp_path, &final_path).map_err(|e| abort(e.into(), &tmp_path))?;
        snapfile::fsync_dir(&snapfile::snap_dir(&self.cfg.dir))?;
        let (len, crc) = snapfile::checksum_file(&final_path).map_err(|e| abort(e, &final_path))?;
        self.sm
            .raise_applied_index(index)
            .map_err(|e| abort(e.into(), &final_path))?;
        let token = SnapshotToken {
            index,
            term,
            len,
            crc,
            peers,
        };
        let mut snap = Snapshot::default();
        let meta = SnapshotMetadata {
            index,
            term,
            conf_state: protobuf::SingularPtrField::some(conf_state),
            ..Default::default()
        };
        snap.set_metadata(meta);
        snap.data = token.encode().into();
        let previous = self.snapshot_index;
        self.node
            .mut_store()
            .put_snapshot_record(snap)
            .map_err(|e| abort(e, &final_path))?;
        self.snapshot_index = index;
        let compact_to = index.saturating_sub(self.cfg.log_tail) + 1;
        self.node
            .mut_store()
            .compact(compact_to.min(self.applied + 1))?;
        snapfile::purge(&self.cfg.dir, &[index, previous])?;
        tracing::info!(
            group = self.cfg.group_id,
            index,
            term,
            len,
            "snapshot persisted"
        );
        Ok(final_path)
    }

    /// Processes everything raft-rs has ready: persist, apply, collect
    /// messages and events.
    pub fn process_ready(&mut self, now: Duration) -> Result<Output, RaftError> {
        let mut sink = Collect::default();
        let mut out = self.process_ready_with(now, &mut sink)?;
        sink.messages.append(&mut out.messages);
        out.messages = sink.messages;
        sink.events.append(&mut out.events);
        out.events = sink.events;
        Ok(out)
    }

    /// [`GroupCore::process_ready`], handing the leader's replication
    /// messages to `send_now` as soon as raft-rs produces them — BEFORE the
    /// entries they carry are persisted here — so followers write and fsync
    /// in parallel with the leader instead of after it (raft-rs allows
    /// this: a leader counts its own log only once persisted). Messages
    /// that must wait for persistence stay in the returned output.
    ///
    /// Proposals applied during the round are handed to
    /// [`ReadySink::applied`] at once, before the round writes and fsyncs
    /// the log entries it is persisting (they are committed and applied:
    /// their callers need not wait for the next entries' fsync). A
    /// follower's replies to the leader go out as soon as its log write is
    /// done, before it applies what is committed.
    pub fn process_ready_with(
        &mut self,
        now: Duration,
        send_now: &mut dyn ReadySink,
    ) -> Result<Output, RaftError> {
        let mut out = Output::default();
        if self.halted.is_none() {
            self.reissue_reads(now);
        }
        // A Ready round can make more work ready (e.g. a first commit in the
        // term releases deferred reads); a few rounds settle it.
        for _ in 0..4 {
            if self.halted.is_some() || !self.node.has_ready() {
                break;
            }
            self.handle_ready(now, &mut out, send_now)?;
            self.reissue_reads(now);
        }
        self.resolve_reads();
        out.events.append(&mut self.events);
        Ok(out)
    }

    fn handle_ready(
        &mut self,
        now: Duration,
        out: &mut Output,
        sink: &mut dyn ReadySink,
    ) -> Result<(), RaftError> {
        let mut rd = self.node.ready();
        let immediate = rd.take_messages();
        if !immediate.is_empty() {
            sink.send(immediate);
        }
        if rd.snapshot().get_metadata().index > 0 {
            let snap = rd.snapshot().clone();
            self.install_snapshot(&snap)?;
        }
        let committed = rd.take_committed_entries();
        if self.is_leader() {
            // Answer what is committed before this round's log fsync.
            if !self.apply_timed(committed, now, sink)? {
                return Ok(());
            }
            self.answer_applied(sink);
            self.append_timed(&rd, sink)?;
            send_persisted(&mut rd, sink);
        } else {
            // The leader waits for this node's acknowledgement: it leaves
            // as soon as the entries are durable, before the apply.
            self.append_timed(&rd, sink)?;
            send_persisted(&mut rd, sink);
            if !self.apply_timed(committed, now, sink)? {
                return Ok(());
            }
        }
        if let Some(hs) = rd.hs() {
            self.on_commit(hs.commit, now);
        }
        let read_states = rd.take_read_states();
        self.on_read_states(read_states, now);
        if let Some(ss) = rd.ss() {
            self.on_role_change(ss.raft_state, ss.leader_id);
        }
        let mut light = self.node.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.node.mut_store().set_commit(commit)?;
            self.on_commit(commit, now);
        }
        out.messages.extend(light.take_messages());
        let committed = light.take_committed_entries();
        if !self.apply_timed(committed, now, sink)? {
            return Ok(());
        }
        self.node.advance_apply();
        self.publish_leadership();
        Ok(())
    }

    /// Persists the Ready's new entries and hard state, telling `sink` when
    /// entries are written.
    fn append_timed(
        &mut self,
        rd: &::raft::Ready,
        sink: &mut dyn ReadySink,
    ) -> Result<(), RaftError> {
        let entries = rd.entries().len();
        if entries > 0 {
            sink.step_started(ReadyStep::LogAppend);
        }
        let appended = self.node.mut_store().append(rd.entries(), rd.hs());
        if entries > 0 {
            sink.step_ended(ReadyStep::LogAppend, entries);
        }
        appended
    }

    /// [`GroupCore::apply_entries`], telling `sink` when there are entries.
    fn apply_timed(
        &mut self,
        entries: Vec<Entry>,
        now: Duration,
        sink: &mut dyn ReadySink,
    ) -> Result<bool, RaftError> {
        if entries.is_empty() {
            return self.apply_entries(entries, now);
        }
        let count = entries.len();
        sink.step_started(ReadyStep::Apply);
        let applied = self.apply_entries(entries, now);
        sink.step_ended(ReadyStep::Apply, count);
        applied
    }

    /// Hands the proposal results gathered so far to the sink.
    fn answer_applied(&mut self, sink: &mut dyn ReadySink) {
        let (answered, rest): (Vec<Event>, Vec<Event>) = std::mem::take(&mut self.events)
            .into_iter()
            .partition(|ev| matches!(ev, Event::Proposal { .. }));
        self.events = rest;
        if !answered.is_empty() {
            sink.applied(self, answered);
        }
    }

    fn publish_leadership(&mut self) {
        let raft = &self.node.raft;
        let now = Leadership {
            term: raft.term,
            leader: raft.leader_id,
            is_leader: raft.state == StateRole::Leader,
        };
        if now != self.leadership {
            if now.term != self.leadership.term || !now.is_leader {
                self.lease.invalidate();
            }
            self.leadership = now;
            self.events.push(Event::Leadership(now));
        }
    }

    fn on_role_change(&mut self, role: StateRole, _leader: u64) {
        if role != StateRole::Leader {
            self.lease.invalidate();
            self.lease_rounds.clear();
            let deferred: Vec<RequestTag> = self.deferred_reads.drain(..).map(|(t, _)| t).collect();
            let rounds: Vec<RequestTag> = self.read_rounds.drain().map(|(t, _)| t).collect();
            for tag in deferred.into_iter().chain(rounds) {
                self.events.push(Event::Read {
                    tag,
                    result: Err(RaftError::LeadershipLost),
                });
            }
        }
        self.publish_leadership();
    }

    fn on_commit(&mut self, commit: u64, _now: Duration) {
        let term = self.node.raft.term;
        let leader = self.is_leader();
        let confirmed: Vec<u64> = self
            .lease_rounds
            .range(..=commit)
            .map(|(i, _)| *i)
            .collect();
        for index in confirmed {
            if let Some((t, start, generation)) = self.lease_rounds.remove(&index)
                && leader
                && t == term
            {
                self.lease.extend(start, generation);
            }
        }
    }

    fn on_read_states(&mut self, states: Vec<::raft::ReadState>, _now: Duration) {
        for rs in states {
            let tag = match envelope::decode_read(&rs.request_ctx) {
                Ok(tag) => tag,
                Err(e) => {
                    tracing::warn!(group = self.cfg.group_id, "ignoring read state: {e}");
                    continue;
                }
            };
            if let Some((start, generation)) = self.read_rounds.remove(&tag)
                && self.is_leader()
            {
                self.lease.extend(start, generation);
            }
            self.forwarded_reads.remove(&tag);
            if tag.origin == self.cfg.node_id {
                self.pending_reads.push((tag, rs.index));
            }
        }
    }

    fn resolve_reads(&mut self) {
        let applied = self.applied;
        let mut i = 0;
        while i < self.pending_reads.len() {
            if self.pending_reads[i].1 <= applied {
                let (tag, _) = self.pending_reads.swap_remove(i);
                self.events.push(Event::Read {
                    tag,
                    result: Ok(applied),
                });
            } else {
                i += 1;
            }
        }
    }

    fn install_snapshot(&mut self, snap: &Snapshot) -> Result<(), RaftError> {
        let meta = snap.get_metadata();
        let token = SnapshotToken::decode(&snap.data)?;
        let path = self.incoming_snapshot_path(snap);
        if let Err(e) = self.sm.restore_snapshot(&path) {
            let reason = format!("restoring snapshot {} failed: {e}", meta.index);
            self.halt(reason.clone());
            return Err(RaftError::StateMachine(e));
        }
        self.node.mut_store().install_snapshot(snap)?;
        self.peers = token.peers;
        self.node.store().save_peers(&self.peers)?;
        self.conf_state = meta.get_conf_state().clone();
        self.applied = meta.index;
        self.applied_term = meta.term;
        self.skip_until = 0;
        let previous = self.snapshot_index;
        self.snapshot_index = meta.index;
        snapfile::purge(&self.cfg.dir, &[meta.index, previous])?;
        tracing::info!(
            group = self.cfg.group_id,
            index = meta.index,
            "installed snapshot from leader"
        );
        Ok(())
    }

    fn halt(&mut self, reason: String) {
        tracing::error!(
            group = self.cfg.group_id,
            node = self.cfg.node_id,
            "GROUP HALTED: {reason}"
        );
        self.halted = Some(reason.clone());
        self.events.push(Event::Halted(reason));
    }

    /// Applies committed entries in order; false when the group halted.
    fn apply_entries(&mut self, entries: Vec<Entry>, _now: Duration) -> Result<bool, RaftError> {
        for entry in entries {
            let index = entry.index;
            if index <= self.applied {
                continue;
            }
            match entry.get_entry_type() {
                EntryType::EntryNormal => {
                    if !self.apply_normal(&entry) {
                        return Ok(false);
                    }
                }
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    self.apply_conf_change(&entry)?;
                }
            }
            self.applied = index;
            self.applied_term = entry.term;
        }
        self.resolve_reads();
        Ok(true)
    }

    fn check_expected(&mut self, index: u64, actual: Option<RequestTag>) {
        // Anything we proposed at or below this index that is not this entry
        // was overwritten by another leader's log.
        let stale: Vec<u64> = self.expected.range(..=index).map(|(i, _)| *i).collect();
        for i in stale {
            if let Some(tag) = self.expected.remove(&i)
                && (Some(tag) != actual || i != index)
            {
                self.events.push(Event::Proposal {
                    tag,
                    result: Err(RaftError::LeadershipLost),
                });
            }
        }
    }

    fn apply_normal(&mut self, entry: &Entry) -> bool {
        let index = entry.index;
        if entry.data.is_empty() {
            self.check_expected(index, None);
            return true;
        }
        let (tag, payload) = match envelope::decode_proposal(&entry.data) {
            Ok(v) => v,
            Err(e) => {
                self.halt(format!("entry {index}: {e}"));
                return false;
            }
        };
        self.check_expected(index, Some(tag));
        if index <= self.skip_until {
            self.sm.apply_volatile(index, payload);
            return true;
        }
        match self.sm.apply(index, entry.term, payload) {
            Ok(response) => {
                if tag.origin == self.cfg.node_id {
                    self.events.push(Event::Proposal {
                        tag,
                        result: Ok(Applied { index, response }),
                    });
                }
                true
            }
            Err(halt) => {
                self.halt(format!("entry {index}: {halt}"));
                false
            }
        }
    }

    fn apply_conf_change(&mut self, entry: &Entry) -> Result<(), RaftError> {
        let index = entry.index;
        let corrupt = |e: protobuf::ProtobufError| {
            RaftError::Storage(format!("corrupt conf change at {index}: {e}"))
        };
        let (changes, context, cs) = if entry.get_entry_type() == EntryType::EntryConfChange {
            let cc = ConfChange::parse_from_bytes(&entry.data).map_err(corrupt)?;
            self.check_expected(index, None);
            let cs = self.node.apply_conf_change(&cc)?;
            (
                vec![(cc.get_change_type(), cc.node_id)],
                entry.context.to_vec(),
                cs,
            )
        } else {
            let cc = ConfChangeV2::parse_from_bytes(&entry.data).map_err(corrupt)?;
            self.check_expected(index, None);
            let cs = self.node.apply_conf_change(&cc)?;
            let changes = cc
                .get_changes()
                .iter()
                .map(|c| (c.get_change_type(), c.node_id))
                .collect();
            let ctx = if cc.context.is_empty() {
                entry.context.to_vec()
            } else {
                cc.context.to_vec()
            };
            (changes, ctx, cs)
        };
        self.conf_state = cs;
        let decoded = envelope::decode_conf(&context).ok();
        for (change_type, node_id) in changes {
            match change_type {
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                    if let Some((_, addr)) = &decoded
                        && !addr.is_empty()
                    {
                        self.peers.peers.insert(node_id, addr.clone());
                    }
                }
                ConfChangeType::RemoveNode => {
                    self.peers.peers.remove(&node_id);
                }
            }
        }
        self.node.store().save_peers(&self.peers)?;
        if let Some((tag, _)) = decoded
            && tag.origin == self.cfg.node_id
        {
            self.events.push(Event::ConfChange {
                tag,
                result: Ok(index),
            });
        }
        Ok(())
    }

    pub fn status(&self, now: Duration) -> GroupStatus {
        let raft = &self.node.raft;
        let is_leader = raft.state == StateRole::Leader;
        let mut peers = Vec::new();
        for (role, ids) in [
            ("voter", &self.conf_state.voters),
            ("learner", &self.conf_state.learners),
        ] {
            for id in ids {
                peers.push(PeerStatus {
                    id: *id,
                    address: self.peers.get(*id).cloned(),
                    role: role.to_string(),
                    match_index: if is_leader {
                        raft.prs().get(*id).map(|p| p.matched)
                    } else {
                        None
                    },
                });
            }
        }
        GroupStatus {
            group_id: self.cfg.group_id,
            node_id: self.cfg.node_id,
            role: if self.halted.is_some() {
                "halted".into()
            } else {
                role_name(raft.state).into()
            },
            term: raft.term,
            leader: raft.leader_id,
            commit_index: raft.raft_log.committed,
            applied_index: self.applied,
            last_index: raft.raft_log.last_index(),
            snapshot_index: self.snapshot_index,
            lease_valid: self.lease_valid(now),
            peers,
            restart_path: self.restart_path.to_string(),
            halted: self.halted.clone(),
        }
    }

    /// Whether a message carries a snapshot (the transport streams its file).
    pub fn is_snapshot_message(msg: &Message) -> bool {
        msg.get_msg_type() == MessageType::MsgSnapshot
    }

    /// First and last index currently in the log (tests, status).
    pub fn log_bounds(&self) -> (u64, u64) {
        let store = self.node.store();
        (
            store.first_index().unwrap_or(0),
            store.last_index().unwrap_or(0),
        )
    }
}

/// Index and term of the snapshot every new cluster starts from.
const BOOTSTRAP_INDEX: u64 = 1;
const BOOTSTRAP_TERM: u64 = 1;

/// Creates a new cluster's first snapshot: the (empty) state machine and the
/// initial voters at index 1, written as a real snapshot file. The log then
/// starts at index 2, so a node that joins later can only be caught up by a
/// snapshot, which carries the membership it needs (the initial voters exist
/// in no log entry).
fn bootstrap_snapshot(
    cfg: &GroupConfig,
    store: &mut LogStore,
    sm: &mut dyn StateMachine,
    conf_state: ConfState,
    peers: &AddressBook,
) -> Result<(), RaftError> {
    let (index, term) = (BOOTSTRAP_INDEX, BOOTSTRAP_TERM);
    std::fs::create_dir_all(snapfile::snap_dir(&cfg.dir))?;
    let final_path = snapfile::snapshot_path(&cfg.dir, index, term);
    let tmp_path = final_path.with_extension("fsm.tmp");
    sm.begin_snapshot(index, term)?.write_to(&tmp_path)?;
    std::fs::rename(&tmp_path, &final_path)?;
    snapfile::fsync_dir(&snapfile::snap_dir(&cfg.dir))?;
    let (len, crc) = snapfile::checksum_file(&final_path)?;
    sm.raise_applied_index(index)?;
    let token = SnapshotToken {
        index,
        term,
        len,
        crc,
        peers: peers.clone(),
    };
    let mut snap = Snapshot::default();
    snap.set_metadata(SnapshotMetadata {
        index,
        term,
        conf_state: protobuf::SingularPtrField::some(conf_state),
        ..Default::default()
    });
    snap.data = token.encode().into();
    store.install_snapshot(&snap)
}
