//! Shared test doubles for the Raft tests: a file-backed state machine
//! (a BTreeMap, persisted atomically with its applied index), RocksDB
//! opening, and a deterministic simulated network driving `GroupCore`s.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::raft::eraftpb::{Message, MessageType};
use elastickv::raft::envelope::RequestTag;
use elastickv::raft::{
    ApplyHalt, Bootstrap, Event, GroupConfig, GroupCore, SmError, SnapshotJob, StateMachine,
};
use elastickv::storage::Cf;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Opens a RocksDB with the Raft column families.
pub fn open_db(path: &Path) -> Arc<rocksdb::DB> {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    let cfs = [Cf::RaftLog.name(), Cf::RaftState.name()];
    Arc::new(rocksdb::DB::open_cf(&opts, path, cfs).unwrap())
}

/// Injected failures and observations, shared between a test and the
/// state machine instances it creates.
#[derive(Debug, Default)]
pub struct SmProbe {
    pub fail_durable_read: bool,
    pub lose_durable_index: bool,
    pub fail_raise: bool,
    /// Persist the raised index, then report failure (a crash right after
    /// the fsync, as far as the snapshot persist is concerned).
    pub raise_then_fail: bool,
    /// Halt when applying this payload.
    pub halt_on: Option<String>,
    pub restores: u64,
    pub header_checks: u64,
    pub volatile: Vec<u64>,
    pub applies: Vec<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SmState {
    pub applied: u64,
    pub map: BTreeMap<String, String>,
    /// Applied (index, payload) history, to compare replicas.
    pub log: Vec<(u64, String)>,
    /// An in-memory-only effect (like an HLC ceiling): max "vol N" seen.
    pub ceiling: u64,
}

/// A file-backed state machine: `state.json` holds the map and the applied
/// index, written atomically (temp + fsync + rename) after every apply when
/// `persist_each_apply`, otherwise only on `raise_applied_index`.
pub struct TestSm {
    dir: PathBuf,
    pub state: SmState,
    persist_each_apply: bool,
    pub probe: Arc<Mutex<SmProbe>>,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

impl TestSm {
    pub fn open(dir: &Path, persist_each_apply: bool, probe: Arc<Mutex<SmProbe>>) -> TestSm {
        std::fs::create_dir_all(dir).unwrap();
        let mut state: SmState = match std::fs::read(dir.join("state.json")) {
            Ok(b) => serde_json::from_slice(&b).unwrap(),
            Err(_) => SmState::default(),
        };
        // The ceiling is volatile: it is rebuilt from headers and replays.
        state.ceiling = 0;
        TestSm {
            dir: dir.to_path_buf(),
            state,
            persist_each_apply,
            probe,
        }
    }

    fn persist(&self, applied: u64) -> Result<(), SmError> {
        let mut s = self.state.clone();
        s.applied = applied;
        write_atomic(
            &self.dir.join("state.json"),
            &serde_json::to_vec(&s).unwrap(),
        )?;
        Ok(())
    }

    pub fn durable_state(dir: &Path) -> Option<SmState> {
        std::fs::read(dir.join("state.json"))
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap())
    }
}

#[derive(Serialize, Deserialize)]
struct SnapFile {
    index: u64,
    term: u64,
    ceiling: u64,
    map: BTreeMap<String, String>,
    log: Vec<(u64, String)>,
}

struct TestJob(SnapFile);

impl SnapshotJob for TestJob {
    fn write_to(self: Box<Self>, path: &Path) -> Result<u64, SmError> {
        let bytes = serde_json::to_vec(&self.0).unwrap();
        let mut f = std::fs::File::create(path)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        Ok(bytes.len() as u64)
    }
}

fn read_snap(path: &Path) -> Result<SnapFile, SmError> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| SmError::new(format!("bad snapshot file: {e}")))
}

impl StateMachine for TestSm {
    fn apply(&mut self, index: u64, _term: u64, payload: &[u8]) -> Result<Vec<u8>, ApplyHalt> {
        let text = String::from_utf8_lossy(payload).to_string();
        if self.probe.lock().unwrap().halt_on.as_deref() == Some(text.as_str()) {
            return Err(ApplyHalt {
                index,
                message: format!("cannot apply {text:?}"),
            });
        }
        let mut parts = text.splitn(3, ' ');
        let response = match (parts.next(), parts.next(), parts.next()) {
            (Some("set"), Some(k), Some(v)) => self
                .state
                .map
                .insert(k.to_string(), v.to_string())
                .unwrap_or_else(|| "new".into()),
            (Some("vol"), Some(n), None) => {
                self.state.ceiling = self.state.ceiling.max(n.parse().unwrap_or(0));
                "vol".into()
            }
            _ => "unknown".into(),
        };
        self.state.applied = index;
        self.state.log.push((index, text));
        self.probe.lock().unwrap().applies.push(index);
        if self.persist_each_apply {
            self.persist(index).map_err(|e| ApplyHalt {
                index,
                message: e.to_string(),
            })?;
        }
        Ok(response.into_bytes())
    }

    fn apply_volatile(&mut self, index: u64, payload: &[u8]) {
        let text = String::from_utf8_lossy(payload).to_string();
        if let Some(n) = text.strip_prefix("vol ") {
            self.state.ceiling = self.state.ceiling.max(n.parse().unwrap_or(0));
        }
        self.probe.lock().unwrap().volatile.push(index);
    }

    fn applied_index(&self) -> u64 {
        self.state.applied
    }

    fn durable_applied_index(&self) -> Result<Option<u64>, SmError> {
        let probe = self.probe.lock().unwrap();
        if probe.fail_durable_read {
            return Err(SmError::new("injected read failure"));
        }
        if probe.lose_durable_index {
            return Ok(None);
        }
        Ok(TestSm::durable_state(&self.dir).map(|s| s.applied))
    }

    fn raise_applied_index(&mut self, index: u64) -> Result<(), SmError> {
        let (fail, then_fail) = {
            let p = self.probe.lock().unwrap();
            (p.fail_raise, p.raise_then_fail)
        };
        if fail {
            return Err(SmError::new("injected raise failure"));
        }
        self.persist(self.state.applied.max(index))?;
        if then_fail {
            return Err(SmError::new("injected failure after raising"));
        }
        Ok(())
    }

    fn begin_snapshot(&self, index: u64, term: u64) -> Result<Box<dyn SnapshotJob>, SmError> {
        Ok(Box::new(TestJob(SnapFile {
            index,
            term,
            ceiling: self.state.ceiling,
            map: self.state.map.clone(),
            log: self.state.log.clone(),
        })))
    }

    fn verify_and_apply_header(&mut self, path: &Path) -> Result<(), SmError> {
        let snap = read_snap(path)?;
        self.state.ceiling = self.state.ceiling.max(snap.ceiling);
        self.probe.lock().unwrap().header_checks += 1;
        Ok(())
    }

    fn restore_snapshot(&mut self, path: &Path) -> Result<(), SmError> {
        let snap = read_snap(path)?;
        self.state.map = snap.map;
        self.state.log = snap.log;
        self.state.applied = snap.index;
        self.state.ceiling = self.state.ceiling.max(snap.ceiling);
        self.persist(snap.index)?;
        self.probe.lock().unwrap().restores += 1;
        Ok(())
    }
}

/// Test timing: 10 ms tick, heartbeat 2 ticks, election 10 ticks, lease
/// 100 ms − 20 ms.
pub fn test_config(group: u64, node: u64, dir: &Path) -> GroupConfig {
    let mut cfg = GroupConfig::new(group, node, dir.to_path_buf());
    cfg.tick = Duration::from_millis(10);
    cfg.heartbeat_ticks = 2;
    cfg.election_ticks = 10;
    cfg.lease_margin = Duration::from_millis(20);
    cfg.snapshot_every = 0;
    cfg.log_tail = 5;
    cfg
}

pub struct SimNode {
    pub id: u64,
    pub dir: PathBuf,
    pub core: Option<GroupCore>,
    pub probe: Arc<Mutex<SmProbe>>,
    pub events: Vec<Event>,
    pub cfg: GroupConfig,
    pub persist_each_apply: bool,
}

impl SimNode {
    pub fn core(&mut self) -> &mut GroupCore {
        self.core.as_mut().expect("node is down")
    }

    /// The state machine's in-memory state (through a fresh file read of
    /// nothing: we keep the TestSm inside the core, so read its log from the
    /// snapshot of the core's state machine view).
    pub fn applied(&self) -> u64 {
        self.core.as_ref().map(|c| c.applied_index()).unwrap_or(0)
    }
}

/// A deterministic network of `GroupCore`s: seeded message loss,
/// partitions, crashes and restarts, with a controllable clock.
pub struct Sim {
    pub rng: StdRng,
    pub now: Duration,
    pub nodes: BTreeMap<u64, SimNode>,
    pub queue: VecDeque<Message>,
    pub drop_rate: f64,
    /// Links that drop everything (both directions are listed).
    pub cut: HashSet<(u64, u64)>,
    pub tick: Duration,
    _tmp: tempfile::TempDir,
    next_req: u64,
}

impl Sim {
    pub fn new(seed: u64, voters: &[u64], tune: impl Fn(&mut GroupConfig)) -> Sim {
        let tmp = tempfile::tempdir().unwrap();
        let mut sim = Sim {
            rng: StdRng::seed_from_u64(seed),
            now: Duration::from_secs(1),
            nodes: BTreeMap::new(),
            queue: VecDeque::new(),
            drop_rate: 0.0,
            cut: HashSet::new(),
            tick: Duration::from_millis(10),
            _tmp: tmp,
            next_req: 1,
        };
        let book: Vec<(u64, String)> = voters.iter().map(|id| (*id, format!("sim-{id}"))).collect();
        for id in voters {
            sim.add_node(
                *id,
                Bootstrap::NewCluster {
                    voters: book.clone(),
                },
                &tune,
            );
        }
        sim
    }

    pub fn add_node(&mut self, id: u64, bootstrap: Bootstrap, tune: &dyn Fn(&mut GroupConfig)) {
        let dir = self._tmp.path().join(format!("n{id}"));
        let mut cfg = test_config(1, id, &dir);
        tune(&mut cfg);
        let probe = Arc::new(Mutex::new(SmProbe::default()));
        let mut node = SimNode {
            id,
            dir,
            core: None,
            probe,
            events: Vec::new(),
            cfg,
            persist_each_apply: true,
        };
        Sim::boot(&mut node, bootstrap);
        self.nodes.insert(id, node);
    }

    fn boot(node: &mut SimNode, bootstrap: Bootstrap) {
        let db = open_db(&node.dir.join("db"));
        let sm = TestSm::open(
            &node.dir.join("sm"),
            node.persist_each_apply,
            node.probe.clone(),
        );
        node.core = Some(GroupCore::open(node.cfg.clone(), db, Box::new(sm), bootstrap).unwrap());
    }

    pub fn crash(&mut self, id: u64) {
        self.nodes.get_mut(&id).unwrap().core = None;
    }

    pub fn restart(&mut self, id: u64) {
        let node = self.nodes.get_mut(&id).unwrap();
        node.core = None;
        Sim::boot(node, Bootstrap::Restart);
    }

    pub fn isolate(&mut self, id: u64) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for other in ids {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn tag(&mut self, origin: u64) -> RequestTag {
        self.next_req += 1;
        RequestTag {
            origin,
            id: self.next_req,
        }
    }

    /// One round: every live node processes its Ready (and takes a due
    /// snapshot inline), then every queued message is delivered or lost.
    pub fn round(&mut self) {
        let now = self.now;
        for node in self.nodes.values_mut() {
            let Some(core) = node.core.as_mut() else {
                continue;
            };
            if core.snapshot_due() {
                let _ = core.snapshot_now();
            }
            let out = core.process_ready(now).unwrap_or_default();
            self.queue.extend(out.messages);
            node.events.extend(out.events);
        }
        let msgs: Vec<Message> = self.queue.drain(..).collect();
        for msg in msgs {
            let (from, to) = (msg.from, msg.to);
            if self.cut.contains(&(from, to)) {
                continue;
            }
            if self.drop_rate > 0.0 && self.rng.random_bool(self.drop_rate) {
                continue;
            }
            let Some(from_dir) = self.nodes.get(&from).map(|n| n.dir.clone()) else {
                continue;
            };
            let Some(dest) = self.nodes.get_mut(&to) else {
                continue;
            };
            let Some(core) = dest.core.as_mut() else {
                continue;
            };
            if msg.get_msg_type() == MessageType::MsgSnapshot {
                // Simulated transport: copy the sender's file into place.
                let meta = msg.get_snapshot().get_metadata();
                let src =
                    elastickv::raft::snapfile::snapshot_path(&from_dir, meta.index, meta.term);
                let dst = core.incoming_snapshot_path(msg.get_snapshot());
                if std::fs::copy(&src, &dst).is_err() {
                    continue;
                }
                let _ = core.step(msg);
                if let Some(sender) = self.nodes.get_mut(&from).and_then(|n| n.core.as_mut()) {
                    sender.report_snapshot(to, true);
                }
                continue;
            }
            let _ = core.step(msg);
        }
    }

    /// Advances the clock by one tick and ticks every live node.
    pub fn tick(&mut self) {
        self.now += self.tick;
        for node in self.nodes.values_mut() {
            if let Some(core) = node.core.as_mut() {
                core.tick();
            }
        }
        self.round();
    }

    pub fn run_until(&mut self, max_ticks: usize, mut done: impl FnMut(&mut Sim) -> bool) -> bool {
        for _ in 0..max_ticks {
            self.round();
            if done(self) {
                return true;
            }
            self.tick();
            if done(self) {
                return true;
            }
        }
        false
    }

    pub fn leader(&self) -> Option<u64> {
        self.nodes
            .values()
            .filter_map(|n| n.core.as_ref())
            .filter(|c| c.is_leader())
            .map(|c| c.node_id())
            .max_by_key(|id| {
                self.nodes[id]
                    .core
                    .as_ref()
                    .map(|c| c.status(self.now).term)
                    .unwrap_or(0)
            })
    }

    pub fn wait_leader(&mut self) -> u64 {
        assert!(
            self.run_until(2000, |s| s.leader().is_some()),
            "no leader elected"
        );
        self.leader().unwrap()
    }

    /// Proposes at `node` and runs until that node reports the outcome.
    pub fn propose_at(
        &mut self,
        node: u64,
        payload: &str,
        max_ticks: usize,
    ) -> Option<Result<elastickv::raft::Applied, elastickv::raft::RaftError>> {
        let tag = self.tag(node);
        let now = self.now;
        if let Err(e) =
            self.nodes
                .get_mut(&node)
                .unwrap()
                .core()
                .propose(now, tag, payload.as_bytes())
        {
            return Some(Err(e));
        }
        let mut result = None;
        self.run_until(max_ticks, |s| {
            let events = &mut s.nodes.get_mut(&node).unwrap().events;
            if let Some(pos) = events
                .iter()
                .position(|e| matches!(e, Event::Proposal { tag: t, .. } if *t == tag))
            {
                if let Event::Proposal { result: r, .. } = events.remove(pos) {
                    result = Some(r);
                }
                return true;
            }
            false
        });
        result
    }

    /// Proposes through whichever node is leader, retrying until acknowledged.
    pub fn must_write(&mut self, payload: &str) -> u64 {
        for _ in 0..50 {
            let leader = self.wait_leader();
            if let Some(Ok(applied)) = self.propose_at(leader, payload, 300) {
                return applied.index;
            }
        }
        panic!("write {payload:?} never acknowledged");
    }

    /// Starts a read at `node`; returns the Read event result, if any
    /// arrived within `max_ticks` (None: still pending).
    pub fn read_at(
        &mut self,
        node: u64,
        max_ticks: usize,
    ) -> Option<Result<u64, elastickv::raft::RaftError>> {
        let tag = self.tag(node);
        let now = self.now;
        if let Err(e) = self.nodes.get_mut(&node).unwrap().core().read(now, tag) {
            return Some(Err(e));
        }
        let mut result = None;
        self.run_until(max_ticks, |s| {
            take_read(
                &mut s.nodes.get_mut(&node).unwrap().events,
                tag,
                &mut result,
            )
        });
        if result.is_none()
            && let Some(core) = self.nodes.get_mut(&node).unwrap().core.as_mut()
        {
            core.forget(tag);
        }
        result
    }

    /// The ids of live nodes.
    pub fn live(&self) -> BTreeSet<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.core.is_some())
            .map(|(id, _)| *id)
            .collect()
    }
}

pub fn take_read(
    events: &mut Vec<Event>,
    tag: RequestTag,
    out: &mut Option<Result<u64, elastickv::raft::RaftError>>,
) -> bool {
    if let Some(pos) = events
        .iter()
        .position(|e| matches!(e, Event::Read { tag: t, .. } if *t == tag))
    {
        if let Event::Read { result, .. } = events.remove(pos) {
            *out = Some(result);
        }
        return true;
    }
    false
}
