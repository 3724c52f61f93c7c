//! The per-process Raft node: the gRPC transport (server and one client per
//! peer) and the groups it runs. Each group is driven by one dedicated
//! thread that owns its `GroupCore` (so state machine calls, which block on
//! RocksDB, never stall the async runtime); callers talk to it through a
//! cloneable `GroupHandle` whose async methods return once the answer is
//! known on THIS node (a proposal: applied here, with its response).
//!
//! Invariants: every waiting caller gets exactly one answer (result,
//! `Timeout`, `LeadershipLost` or `Shutdown`); snapshot files are written off
//! the group thread and handed back to it to be recorded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use ::raft::eraftpb::Message;
use parking_lot::{Mutex, RwLock};
use rocksdb::DB;
use tokio::sync::{oneshot, watch};

use crate::raft::auth::TokenInterceptor;
use crate::raft::config::GroupConfig;
use crate::raft::core::{
    Applied, Bootstrap, Event, GroupCore, Membership, ReadySink, ReadyStep, SnapshotTicket,
};
use crate::raft::envelope::RequestTag;
use crate::raft::error::RaftError;
use crate::raft::lease::LeaseGate;
use crate::raft::metrics::{RaftMetrics, StepMetrics};
use crate::raft::snapfile;
use crate::raft::state_machine::{SmError, StateMachine};
use crate::raft::status::{GroupStatus, Leadership};
use crate::raft::transport::{Inbound, PeerReport, Transport, TransportService, pb};

/// Settings of the node as a whole.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub node_id: u64,
    /// The address peers use to reach this node's transport.
    pub advertise_addr: String,
    /// Cluster token required on every internal call when set.
    pub token: Option<String>,
}

enum Command {
    Step(Message),
    Propose(Vec<u8>, oneshot::Sender<Result<Applied, RaftError>>),
    Read(oneshot::Sender<Result<u64, RaftError>>),
    Membership(Membership, oneshot::Sender<Result<u64, RaftError>>),
    Transfer(u64, oneshot::Sender<Result<(), RaftError>>),
    Snapshot(oneshot::Sender<Result<PathBuf, RaftError>>),
    SnapshotWritten(SnapshotTicket, Result<u64, SmError>),
    Report(PeerReport),
    Shutdown,
}

struct GroupEntry {
    mailbox: std_mpsc::Sender<Command>,
    dir: PathBuf,
    max_snapshot_bytes: u64,
    handle: GroupHandle,
}

struct NodeShared {
    node_id: u64,
    groups: RwLock<HashMap<u64, GroupEntry>>,
    transport: RwLock<Option<Arc<Transport>>>,
}

impl NodeShared {
    fn transport(&self) -> Option<Arc<Transport>> {
        self.transport.read().clone()
    }
}

impl Inbound for NodeShared {
    fn deliver(&self, group: u64, msg: Message) {
        if let Some(g) = self.groups.read().get(&group) {
            let _ = g.mailbox.send(Command::Step(msg));
        }
    }

    fn group_dir(&self, group: u64) -> Option<(PathBuf, u64)> {
        self.groups
            .read()
            .get(&group)
            .map(|g| (g.dir.clone(), g.max_snapshot_bytes))
    }

    fn learn_address(&self, node: u64, addr: &str) {
        if node != self.node_id
            && let Some(t) = self.transport()
            && t.address(node).is_none()
        {
            t.set_address(node, addr);
        }
    }

    fn report(&self, group: u64, report: PeerReport) {
        if let Some(g) = self.groups.read().get(&group) {
            let _ = g.mailbox.send(Command::Report(report));
        }
    }
}

/// A running Raft node.
pub struct RaftNode {
    cfg: NodeConfig,
    shared: Arc<NodeShared>,
    transport: Arc<Transport>,
    metrics: RaftMetrics,
    server_stop: Mutex<Option<oneshot::Sender<()>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl RaftNode {
    /// Starts the transport server on an already bound listener (bind
    /// `127.0.0.1:0` first in tests) and registers the metrics.
    pub async fn start(
        cfg: NodeConfig,
        listener: tokio::net::TcpListener,
        registry: &prometheus::Registry,
    ) -> Result<RaftNode, RaftError> {
        Self::start_with_routes(cfg, listener, registry, tonic::service::Routes::default()).await
    }

    /// Like [`RaftNode::start`], also serving `extra` gRPC services (the
    /// admin service) on the same listener.
    pub async fn start_with_routes(
        cfg: NodeConfig,
        listener: tokio::net::TcpListener,
        registry: &prometheus::Registry,
        extra: tonic::service::Routes,
    ) -> Result<RaftNode, RaftError> {
        let metrics = RaftMetrics::register(registry)?;
        let shared = Arc::new(NodeShared {
            node_id: cfg.node_id,
            groups: RwLock::new(HashMap::new()),
            transport: RwLock::new(None),
        });
        let transport = Transport::new(
            cfg.node_id,
            cfg.advertise_addr.clone(),
            cfg.token.clone(),
            shared.clone(),
            tokio::runtime::Handle::current(),
        );
        *shared.transport.write() = Some(transport.clone());
        let service = pb::raft_transport_server::RaftTransportServer::with_interceptor(
            TransportService::new(shared.clone()),
            TokenInterceptor::new(cfg.token.clone()),
        );
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let incoming = futures::stream::unfold(listener, |listener| async move {
            let conn = listener.accept().await.map(|(s, _)| {
                let _ = s.set_nodelay(true);
                s
            });
            Some((conn, listener))
        });
        tokio::spawn(async move {
            let result = tonic::transport::Server::builder()
                .add_routes(extra.add_service(service))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stop_rx.await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!("raft transport server stopped: {e}");
            }
        });
        Ok(RaftNode {
            cfg,
            shared,
            transport,
            metrics,
            server_stop: Mutex::new(Some(stop_tx)),
            threads: Mutex::new(Vec::new()),
        })
    }

    pub fn node_id(&self) -> u64 {
        self.cfg.node_id
    }

    pub fn local_addr_hint(addr: SocketAddr) -> String {
        addr.to_string()
    }

    /// Opens a group and starts its driver thread.
    pub fn start_group(
        &self,
        cfg: GroupConfig,
        db: Arc<DB>,
        sm: Box<dyn StateMachine>,
        bootstrap: Bootstrap,
    ) -> Result<GroupHandle, RaftError> {
        if cfg.node_id != self.cfg.node_id {
            return Err(RaftError::Invalid(format!(
                "group config node id {} differs from the node's {}",
                cfg.node_id, self.cfg.node_id
            )));
        }
        let group_id = cfg.group_id;
        if self.shared.groups.read().contains_key(&group_id) {
            return Err(RaftError::Invalid(format!(
                "group {group_id} already running"
            )));
        }
        let core = GroupCore::open(cfg.clone(), db, sm, bootstrap)?;
        for (id, addr) in &core.peers().peers {
            self.transport.set_address(*id, addr);
        }
        self.metrics
            .count_start(group_id, core.restart_path().label());
        let now = Duration::ZERO;
        let status = Arc::new(Mutex::new(core.status(now)));
        let (leader_tx, leader_rx) = watch::channel(Leadership::default());
        let (tx, rx) = std_mpsc::channel();
        let epoch = Instant::now();
        let gate = Arc::new(LeaseGate::new(epoch));
        let handle = GroupHandle {
            group_id,
            mailbox: tx.clone(),
            status: status.clone(),
            leadership: leader_rx,
            timeout: cfg.request_timeout,
            gate: gate.clone(),
        };
        self.shared.groups.write().insert(
            group_id,
            GroupEntry {
                mailbox: tx.clone(),
                dir: cfg.dir.clone(),
                max_snapshot_bytes: cfg.max_snapshot_bytes,
                handle: handle.clone(),
            },
        );
        let driver = Driver {
            core,
            mailbox: tx,
            rx,
            transport: self.transport.clone(),
            status,
            leader_tx,
            steps: self.metrics.steps(group_id),
            metrics: self.metrics.clone(),
            epoch,
            gate,
            next_id: 1,
            proposals: HashMap::new(),
            reads: HashMap::new(),
            confs: HashMap::new(),
            snapshot_waiters: Vec::new(),
            snapshot_running: false,
            snapshot_backoff: None,
        };
        let thread = std::thread::Builder::new()
            .name(format!("raft-g{group_id}"))
            .spawn(move || driver.run())
            .map_err(|e| RaftError::Storage(format!("spawn group thread: {e}")))?;
        self.threads.lock().push(thread);
        Ok(handle)
    }

    pub fn group(&self, group_id: u64) -> Option<GroupHandle> {
        self.shared
            .groups
            .read()
            .get(&group_id)
            .map(|g| g.handle.clone())
    }

    /// Stops every group (waiting for their threads) and the server.
    pub async fn shutdown(&self) {
        let entries: Vec<std_mpsc::Sender<Command>> = self
            .shared
            .groups
            .write()
            .drain()
            .map(|(_, g)| g.mailbox)
            .collect();
        for m in entries {
            let _ = m.send(Command::Shutdown);
        }
        let threads: Vec<_> = self.threads.lock().drain(..).collect();
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        if let Some(stop) = self.server_stop.lock().take() {
            let _ = stop.send(());
        }
    }
}

/// A cloneable handle on one group running on this node.
#[derive(Clone)]
pub struct GroupHandle {
    group_id: u64,
    mailbox: std_mpsc::Sender<Command>,
    status: Arc<Mutex<GroupStatus>>,
    leadership: watch::Receiver<Leadership>,
    timeout: Duration,
    gate: Arc<LeaseGate>,
}

impl GroupHandle {
    pub fn group_id(&self) -> u64 {
        self.group_id
    }

    /// Queues a request to the driver now; the future waits for its answer.
    fn call<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, RaftError>>) -> Command,
    ) -> impl Future<Output = Result<T, RaftError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let queued = self.mailbox.send(make(tx));
        // The driver answers every request within the request timeout; the
        // margin only covers a driver that died.
        let limit = self.timeout + Duration::from_secs(5);
        async move {
            queued.map_err(|_| RaftError::Shutdown)?;
            match tokio::time::timeout(limit, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(RaftError::Shutdown),
                Err(_) => Err(RaftError::Timeout),
            }
        }
    }

    /// Replicates `payload`; returns once it is applied on this node.
    pub async fn propose(&self, payload: Vec<u8>) -> Result<Applied, RaftError> {
        self.enqueue_proposal(payload).await
    }

    /// [`GroupHandle::propose`] in two steps: the proposal is queued to the
    /// driver before this returns — so proposals queued one after another
    /// reach the log in that order — and the future waits for its apply.
    pub fn enqueue_proposal(
        &self,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<Applied, RaftError>> + Send + 'static {
        self.call(|tx| Command::Propose(payload, tx))
    }

    /// A linearizable read fence: returns an applied index at or beyond
    /// every write acknowledged before the call (lease or ReadIndex).
    ///
    /// Inside the leader's lease this answers at once, on the caller's
    /// thread, with the applied index the driver last published (see
    /// [`LeaseGate`]: the leader's applied state already holds every
    /// acknowledged write); otherwise the driver answers.
    pub async fn read_fence(&self) -> Result<u64, RaftError> {
        if let Some(index) = self.gate.read_index() {
            return Ok(index);
        }
        self.call(Command::Read).await
    }

    pub fn status(&self) -> GroupStatus {
        self.status.lock().clone()
    }

    pub fn leadership(&self) -> watch::Receiver<Leadership> {
        self.leadership.clone()
    }

    pub async fn add_learner(&self, id: u64, address: String) -> Result<u64, RaftError> {
        self.call(|tx| Command::Membership(Membership::AddLearner { id, address }, tx))
            .await
    }

    pub async fn promote(&self, id: u64, min_match: u64) -> Result<u64, RaftError> {
        self.call(|tx| Command::Membership(Membership::Promote { id, min_match }, tx))
            .await
    }

    pub async fn remove(&self, id: u64) -> Result<u64, RaftError> {
        self.call(|tx| Command::Membership(Membership::Remove { id }, tx))
            .await
    }

    /// Starts a leadership transfer (returns once requested).
    pub async fn transfer_leader(&self, id: u64) -> Result<(), RaftError> {
        self.call(|tx| Command::Transfer(id, tx)).await
    }

    /// Takes a snapshot now; returns its `.fsm` file.
    pub async fn create_snapshot(&self) -> Result<PathBuf, RaftError> {
        self.call(Command::Snapshot).await
    }

    /// Stops the group's driver (pending callers get `Shutdown`).
    pub fn shutdown(&self) {
        let _ = self.mailbox.send(Command::Shutdown);
    }
}

type Reply<T> = oneshot::Sender<Result<T, RaftError>>;

const SNAPSHOT_RETRY_FIRST: Duration = Duration::from_secs(1);
const SNAPSHOT_RETRY_MAX: Duration = Duration::from_secs(60);

struct Driver {
    core: GroupCore,
    mailbox: std_mpsc::Sender<Command>,
    rx: std_mpsc::Receiver<Command>,
    transport: Arc<Transport>,
    status: Arc<Mutex<GroupStatus>>,
    leader_tx: watch::Sender<Leadership>,
    metrics: RaftMetrics,
    steps: StepMetrics,
    epoch: Instant,
    gate: Arc<LeaseGate>,
    next_id: u64,
    proposals: HashMap<u64, (Reply<Applied>, Instant)>,
    reads: HashMap<u64, (Reply<u64>, Instant)>,
    confs: HashMap<u64, (Reply<u64>, Instant)>,
    snapshot_waiters: Vec<Reply<PathBuf>>,
    snapshot_running: bool,
    /// After a failed snapshot: when to try again, and the delay used.
    snapshot_backoff: Option<(Instant, Duration)>,
}

/// Status and lease as the core now is, published before callers are
/// answered (a caller that got its answer sees at least that progress in
/// `status()`), and before any message of the round leaves (a transfer's
/// TimeoutNow among them: callers must see the lease as it now is). The
/// fast path is open only with nothing committed left to apply, so the
/// index it answers is also at or beyond the commit index.
fn publish_progress(
    core: &GroupCore,
    now: Duration,
    gate: &LeaseGate,
    metrics: &RaftMetrics,
) -> GroupStatus {
    let st = core.status(now);
    let lease = core
        .lease_until()
        .filter(|_| st.applied_index >= st.commit_index);
    gate.publish(lease, st.applied_index);
    metrics.observe(&st);
    st
}

fn answer_proposal(
    proposals: &mut HashMap<u64, (Reply<Applied>, Instant)>,
    tag: RequestTag,
    result: Result<Applied, RaftError>,
) {
    if let Some((reply, _)) = proposals.remove(&tag.id) {
        let _ = reply.send(result);
    }
}

/// The driver's side of a Ready round: messages go to the transport at
/// once; applied proposals are answered at once, after the progress they
/// make is published.
struct DriverSink<'d> {
    now: Duration,
    group: u64,
    snap_dir: &'d std::path::Path,
    transport: &'d Arc<Transport>,
    gate: &'d LeaseGate,
    metrics: &'d RaftMetrics,
    steps: &'d StepMetrics,
    /// When the step in progress began: wall clock, thread CPU time.
    step_began: Option<(Instant, Duration)>,
    status: &'d Mutex<GroupStatus>,
    proposals: &'d mut HashMap<u64, (Reply<Applied>, Instant)>,
}

/// CPU time the calling thread has used so far (zero where the clock is
/// unavailable, which only makes the CPU counters read low).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the whole call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0);
    Duration::new(secs, nanos)
}

impl ReadySink for DriverSink<'_> {
    fn send(&mut self, msgs: Vec<Message>) {
        let snap_dir = self.snap_dir;
        self.transport.send(self.group, msgs, |m| {
            let meta = m.get_snapshot().get_metadata();
            snapfile::snapshot_path(snap_dir, meta.index, meta.term)
        });
    }

    fn applied(&mut self, core: &GroupCore, events: Vec<Event>) {
        let st = publish_progress(core, self.now, self.gate, self.metrics);
        *self.status.lock() = st;
        for ev in events {
            if let Event::Proposal { tag, result } = ev {
                answer_proposal(self.proposals, tag, result);
            }
        }
    }

    fn step_started(&mut self, _step: ReadyStep) {
        self.step_began = Some((Instant::now(), thread_cpu_time()));
    }

    fn step_ended(&mut self, step: ReadyStep, entries: usize) {
        if let Some((wall, cpu)) = self.step_began.take() {
            let cpu = thread_cpu_time().saturating_sub(cpu);
            self.steps.observe(step, wall.elapsed(), cpu, entries);
        }
    }
}

impl Driver {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn tag(&mut self) -> RequestTag {
        self.next_id += 1;
        RequestTag {
            origin: self.core.node_id(),
            id: self.next_id,
        }
    }

    fn run(mut self) {
        let tick = self.core.config().tick;
        let mut next_tick = Instant::now() + tick;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(Command::Shutdown) => break,
                Ok(cmd) => {
                    if !self.handle(cmd) {
                        break;
                    }
                    // Drain what else is queued before a Ready round.
                    let mut stop = false;
                    while let Ok(cmd) = self.rx.try_recv() {
                        if matches!(cmd, Command::Shutdown) || !self.handle(cmd) {
                            stop = true;
                            break;
                        }
                    }
                    if stop {
                        break;
                    }
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if Instant::now() >= next_tick {
                self.core.tick();
                next_tick += tick;
                if next_tick < Instant::now() {
                    next_tick = Instant::now() + tick;
                }
                self.expire();
            }
            self.ready_round();
        }
        self.fail_all(RaftError::Shutdown);
        tracing::info!(group = self.core.config().group_id, "raft group stopped");
    }

    fn handle(&mut self, cmd: Command) -> bool {
        let now = self.now();
        let deadline = Instant::now() + self.core.config().request_timeout;
        match cmd {
            Command::Step(msg) => {
                if let Err(e) = self.core.step(msg) {
                    tracing::debug!("step: {e}");
                }
            }
            Command::Propose(payload, reply) => {
                let tag = self.tag();
                match self.core.propose(now, tag, &payload) {
                    Ok(()) => {
                        self.proposals.insert(tag.id, (reply, deadline));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Read(reply) => {
                let tag = self.tag();
                match self.core.read(now, tag) {
                    Ok(()) => {
                        self.reads.insert(tag.id, (reply, deadline));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Membership(change, reply) => {
                let tag = self.tag();
                match self.core.change_membership(tag, change) {
                    Ok(()) => {
                        self.confs.insert(tag.id, (reply, deadline));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Transfer(to, reply) => {
                let result = self.core.transfer_leader(to);
                // The transferee's TimeoutNow may leave in the very next
                // Ready, before the end-of-round publication: close the
                // lease to callers first.
                self.gate.publish(None, self.core.applied_index());
                let _ = reply.send(result);
            }
            Command::Snapshot(reply) => {
                self.snapshot_waiters.push(reply);
                self.snapshot_backoff = None;
                self.core.request_snapshot();
                if !self.snapshot_running && !self.core.snapshot_due() {
                    // Nothing new since the newest snapshot: answer with it.
                    let st = self.core.status(now);
                    let path = self.newest_snapshot_path(st.snapshot_index);
                    for w in self.snapshot_waiters.drain(..) {
                        let _ = w.send(path.clone());
                    }
                }
            }
            Command::SnapshotWritten(ticket, written) => {
                self.snapshot_running = false;
                let result = self.core.finish_snapshot(ticket, written);
                match &result {
                    Ok(_) => self.snapshot_backoff = None,
                    Err(e) => {
                        self.snapshot_failed();
                        tracing::warn!(group = self.core.config().group_id, "snapshot failed: {e}");
                    }
                }
                for w in self.snapshot_waiters.drain(..) {
                    let _ = w.send(result.clone());
                }
            }
            Command::Report(PeerReport::Unreachable { peer }) => self.core.report_unreachable(peer),
            Command::Report(PeerReport::Snapshot { peer, ok }) => {
                self.core.report_snapshot(peer, ok)
            }
            Command::Shutdown => return false,
        }
        true
    }

    fn newest_snapshot_path(&self, index: u64) -> Result<PathBuf, RaftError> {
        if index == 0 {
            return Err(RaftError::Invalid("nothing applied yet to snapshot".into()));
        }
        let dir = snapfile::snap_dir(&self.core.config().dir);
        let entries = std::fs::read_dir(&dir)?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if snapfile::parse_file_name(&name).is_some_and(|(i, _)| i == index) {
                return Ok(e.path());
            }
        }
        Err(RaftError::Storage(format!("snapshot {index} file missing")))
    }

    fn ready_round(&mut self) {
        let may_retry = self
            .snapshot_backoff
            .is_none_or(|(retry_at, _)| Instant::now() >= retry_at);
        if !self.snapshot_running && may_retry && self.core.snapshot_due() {
            match self.core.begin_snapshot() {
                Ok((ticket, job)) => {
                    self.snapshot_running = true;
                    let mailbox = self.mailbox.clone();
                    let spawned = std::thread::Builder::new()
                        .name("raft-snapshot".into())
                        .spawn(move || {
                            let written = job.write_to(&ticket.tmp_path);
                            let _ = mailbox.send(Command::SnapshotWritten(ticket, written));
                        });
                    if let Err(e) = spawned {
                        self.snapshot_running = false;
                        self.snapshot_failed();
                        tracing::error!("cannot spawn snapshot writer: {e}");
                    }
                }
                Err(e) => {
                    self.snapshot_failed();
                    tracing::warn!(
                        group = self.core.config().group_id,
                        retry_in_ms = self
                            .snapshot_backoff
                            .map_or(0, |(_, d)| d.as_millis() as u64),
                        "snapshot not started: {e}"
                    );
                    for w in self.snapshot_waiters.drain(..) {
                        let _ = w.send(Err(e.clone()));
                    }
                }
            }
        }
        let now = self.now();
        // Messages may leave during the round (see below): a lease lost by
        // what was just stepped (a transfer asked for by a peer, a higher
        // term) is withdrawn from callers before any of them goes.
        if self.core.lease_until().is_none() {
            self.gate.publish(None, self.core.applied_index());
        }
        let snap_dir = self.core.config().dir.clone();
        let mut sink = DriverSink {
            now,
            group: self.core.config().group_id,
            snap_dir: &snap_dir,
            transport: &self.transport,
            gate: &self.gate,
            metrics: &self.metrics,
            steps: &self.steps,
            step_began: None,
            status: &self.status,
            proposals: &mut self.proposals,
        };
        let out = match self.core.process_ready_with(now, &mut sink) {
            Ok(out) => out,
            Err(e) => {
                tracing::error!(
                    group = self.core.config().group_id,
                    "raft ready failed: {e}"
                );
                Default::default()
            }
        };
        let st = publish_progress(&self.core, now, &self.gate, &self.metrics);
        for p in &st.peers {
            if let Some(addr) = &p.address
                && p.id != self.core.node_id()
                && self.transport.address(p.id).as_deref() != Some(addr)
            {
                self.transport.set_address(p.id, addr);
            }
        }
        *self.status.lock() = st;
        let dir = self.core.config().dir.clone();
        let group = self.core.config().group_id;
        if !out.messages.is_empty() {
            self.transport.send(group, out.messages, |m| {
                let meta = m.get_snapshot().get_metadata();
                snapfile::snapshot_path(&dir, meta.index, meta.term)
            });
        }
        for ev in out.events {
            self.on_event(ev);
        }
    }

    /// A snapshot attempt failed: the next waits 1 s, doubling up to 60 s
    /// (a failing disk must not be hammered, nor the log flooded, every
    /// tick); an explicit request retries at once.
    fn snapshot_failed(&mut self) {
        let delay = self
            .snapshot_backoff
            .map_or(SNAPSHOT_RETRY_FIRST, |(_, d)| {
                (d * 2).min(SNAPSHOT_RETRY_MAX)
            });
        self.snapshot_backoff = Some((Instant::now() + delay, delay));
    }

    fn on_event(&mut self, ev: Event) {
        if let Event::Proposal { tag, result } = ev {
            answer_proposal(&mut self.proposals, tag, result);
            return;
        }
        match ev {
            Event::Proposal { .. } => {}
            Event::Read { tag, result } => {
                if let Some((reply, _)) = self.reads.remove(&tag.id) {
                    let _ = reply.send(result);
                }
            }
            Event::ConfChange { tag, result } => {
                if let Some((reply, _)) = self.confs.remove(&tag.id) {
                    let _ = reply.send(result);
                }
            }
            Event::Leadership(l) => {
                let _ = self.leader_tx.send(l);
            }
            Event::Halted(reason) => {
                let group = self.core.config().group_id;
                self.fail_all(RaftError::Halted { group, reason });
            }
        }
    }

    fn expire(&mut self) {
        let now = Instant::now();
        let origin = self.core.node_id();
        let expired: Vec<u64> = self
            .proposals
            .iter()
            .filter(|(_, (_, d))| *d <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some((reply, _)) = self.proposals.remove(&id) {
                self.core.forget(RequestTag { origin, id });
                let _ = reply.send(Err(RaftError::Timeout));
            }
        }
        let expired: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, (_, d))| *d <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some((reply, _)) = self.reads.remove(&id) {
                self.core.forget(RequestTag { origin, id });
                let _ = reply.send(Err(RaftError::Timeout));
            }
        }
        let expired: Vec<u64> = self
            .confs
            .iter()
            .filter(|(_, (_, d))| *d <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some((reply, _)) = self.confs.remove(&id) {
                let _ = reply.send(Err(RaftError::Timeout));
            }
        }
    }

    fn fail_all(&mut self, err: RaftError) {
        for (_, (r, _)) in self.proposals.drain() {
            let _ = r.send(Err(err.clone()));
        }
        for (_, (r, _)) in self.reads.drain() {
            let _ = r.send(Err(err.clone()));
        }
        for (_, (r, _)) in self.confs.drain() {
            let _ = r.send(Err(err.clone()));
        }
        for r in self.snapshot_waiters.drain(..) {
            let _ = r.send(Err(err.clone()));
        }
    }
}
