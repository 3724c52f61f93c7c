//! A harness running real `elastickv serve` processes (the binary cargo
//! built for this test run, never a build of its own): free ports, a temp
//! data dir per node, fast Raft timings, logs kept in the temp dir and
//! printed when a test fails, bounded waits on the admin gRPC `Status`, and
//! a small KV client over the admin gRPC API that fails over between nodes.
//!
//! Invariants: every child process is killed when the `Cluster` is dropped;
//! every wait is bounded and panics with what it was waiting for; nothing
//! here sleeps to synchronise, it polls a condition.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use elastickv::api::grpc::pb::admin_client::AdminClient;
use elastickv::api::grpc::pb::{
    KvDeleteRequest, KvGetRequest, KvPutRequest, KvWriteReply, MemberRequest,
    SnapshotCreateRequest, StatusRequest,
};
use serde_json::Value;
use tempfile::TempDir;
use tonic::transport::{Channel, Endpoint};

/// The group every key lives in until ranges are split.
pub const DEFAULT_GROUP: u64 = 1;

/// How long one admin RPC may take before the harness calls it failed.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a cluster may take to elect a leader (the machine is loaded).
pub const LEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The `elastickv` binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_elastickv")
}

/// Raft timings passed to every node: fast, but generous enough for a
/// loaded two-core machine.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub tick_ms: u64,
    pub heartbeat_ticks: u64,
    pub election_ticks: u64,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            tick_ms: 10,
            heartbeat_ticks: 5,
            election_ticks: 50,
        }
    }
}

#[path = "ports.rs"]
mod ports;
pub use ports::free_addrs;

/// Whether this build's `serve` knows a flag (the Redis front end and
/// some tuning flags land later than the rest).
pub fn serve_has_flag(flag: &str) -> bool {
    static HELP: OnceLock<String> = OnceLock::new();
    let help = HELP.get_or_init(|| {
        let out = run_bounded(
            Command::new(binary()).args(["serve", "--help"]),
            Duration::from_secs(30),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    help.contains(flag)
}

/// Runs a command to completion, killing it and panicking if it outlives
/// `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn elastickv");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("poll child").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "command {cmd:?} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A bounded wait: `tick` panics with the description once time is up.
pub struct Deadline {
    until: Instant,
    what: String,
}

impl Deadline {
    pub fn new(what: impl Into<String>, limit: Duration) -> Self {
        Deadline {
            until: Instant::now() + limit,
            what: what.into(),
        }
    }

    pub fn expired(&self) -> bool {
        Instant::now() > self.until
    }

    /// Pauses before the next poll, or panics if the deadline passed.
    pub async fn tick(&self) {
        assert!(!self.expired(), "timed out waiting for {}", self.what);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The cluster-membership flags a node starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartMode {
    /// `--peers` (and the test Raft timings).
    Peers(String),
    /// `--join` (and the test Raft timings).
    Join,
    /// Only `--data-dir` and the free addresses: every default in force.
    Defaults,
}

/// One `serve` process slot: its addresses and data dir survive restarts.
#[derive(Debug)]
pub struct Node {
    pub id: u64,
    pub listen: SocketAddr,
    pub metrics: SocketAddr,
    pub redis: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// How the node is told about its cluster.
    pub mode: StartMode,
    /// Extra flags given on every start.
    pub extra_args: Vec<String>,
    /// Behind a lock so that waits holding `&Cluster` can notice a crash.
    child: parking_lot::Mutex<Option<Child>>,
    channel: Channel,
}

impl Node {
    pub fn is_running(&self) -> bool {
        self.child.lock().is_some()
    }

    /// `127.0.0.1:PORT`, the form `--endpoint` takes.
    pub fn endpoint(&self) -> String {
        self.listen.to_string()
    }

    pub fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.channel.clone())
    }
}

fn lazy_channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid endpoint")
        .connect_timeout(Duration::from_millis(500))
        .timeout(RPC_TIMEOUT)
        .connect_lazy()
}

/// A set of `serve` processes sharing one temp dir.
pub struct Cluster {
    dir: TempDir,
    pub timings: Timings,
    nodes: BTreeMap<u64, Node>,
}

impl Cluster {
    /// An empty cluster (no processes yet).
    pub fn empty() -> Self {
        Cluster {
            dir: tempfile::Builder::new()
                .prefix("ekv-cluster-")
                .tempdir()
                .expect("temp dir"),
            timings: Timings::default(),
            nodes: BTreeMap::new(),
        }
    }

    /// Starts `n` voters (ids 1..=n) that know each other, and waits for a
    /// leader of the default group.
    pub async fn start(n: u64) -> Self {
        let mut cluster = Cluster::empty();
        cluster.spawn_voters(n);
        cluster.wait_for_leader(DEFAULT_GROUP).await;
        cluster
    }

    /// Starts `n` voters without waiting for anything.
    pub fn spawn_voters(&mut self, n: u64) {
        let ids: Vec<u64> = (1..=n).collect();
        let addrs = free_addrs(ids.len() * 3);
        let peers = ids
            .iter()
            .enumerate()
            .map(|(i, id)| format!("{id}={}", addrs[i * 3]))
            .collect::<Vec<_>>()
            .join(",");
        for (i, id) in ids.iter().enumerate() {
            self.insert_node(
                *id,
                [addrs[i * 3], addrs[i * 3 + 1], addrs[i * 3 + 2]],
                StartMode::Peers(peers.clone()),
            );
            self.spawn(*id);
        }
    }

    /// Adds a node that starts empty with `--join` and waits to be added.
    pub fn spawn_joining(&mut self, id: u64) -> &Node {
        let addrs = free_addrs(3);
        self.insert_node(id, [addrs[0], addrs[1], addrs[2]], StartMode::Join);
        self.spawn(id);
        self.node(id)
    }

    /// Declares a node slot without starting it (for tests that drive the
    /// command line themselves).
    pub fn declare_node(&mut self, id: u64, mode: StartMode) -> &Node {
        let addrs = free_addrs(3);
        self.insert_node(id, [addrs[0], addrs[1], addrs[2]], mode);
        self.node(id)
    }

    fn insert_node(&mut self, id: u64, addrs: [SocketAddr; 3], mode: StartMode) {
        let data_dir = self.dir.path().join(format!("node-{id}"));
        std::fs::create_dir_all(&data_dir).expect("node dir");
        let node = Node {
            id,
            listen: addrs[0],
            metrics: addrs[1],
            redis: addrs[2],
            data_dir: data_dir.join("data"),
            log: self.dir.path().join(format!("node-{id}.log")),
            mode,
            extra_args: Vec::new(),
            child: parking_lot::Mutex::new(None),
            channel: lazy_channel(addrs[0]),
        };
        self.nodes.insert(id, node);
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn node(&self, id: u64) -> &Node {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    pub fn node_mut(&mut self, id: u64) -> &mut Node {
        self.nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    pub fn running_ids(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| n.is_running())
            .map(|n| n.id)
            .collect()
    }

    /// The `serve` command line of a node, as the harness runs it.
    pub fn serve_command(&self, id: u64) -> Command {
        let node = self.node(id);
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(["--listen", &node.listen.to_string()])
            .args(["--metrics", &node.metrics.to_string()]);
        if serve_has_flag("--redis") {
            cmd.args(["--redis", &node.redis.to_string()]);
        }
        let tuned = match &node.mode {
            StartMode::Peers(peers) => {
                cmd.args(["--peers", peers]);
                true
            }
            StartMode::Join => {
                cmd.arg("--join");
                true
            }
            StartMode::Defaults => false,
        };
        if tuned {
            cmd.args(["--node-id", &id.to_string()])
                .args(["--raft-tick-ms", &self.timings.tick_ms.to_string()])
                .args([
                    "--raft-heartbeat-ticks",
                    &self.timings.heartbeat_ticks.to_string(),
                ])
                .args([
                    "--raft-election-ticks",
                    &self.timings.election_ticks.to_string(),
                ]);
        }
        cmd.args(&node.extra_args);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        cmd
    }

    /// Starts (or restarts) a node's process, appending to its log.
    pub fn spawn(&mut self, id: u64) {
        assert!(!self.node(id).is_running(), "node {id} is already running");
        let mut cmd = self.serve_command(id);
        let node = self.node_mut(id);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("open node log");
        writeln!(log, "===== harness: starting {cmd:?}").expect("write log");
        let err = log.try_clone().expect("clone log handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn elastickv serve");
        *node.child.lock() = Some(child);
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill9(&mut self, id: u64) {
        let node = self.node_mut(id);
        let mut child = node
            .child
            .get_mut()
            .take()
            .unwrap_or_else(|| panic!("node {id} not running"));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap killed node");
        note(&node.log, "killed with SIGKILL");
    }

    /// SIGTERM, then waits (bounded) for a clean exit and returns how the
    /// process ended.
    pub fn sigterm(&mut self, id: u64) -> ExitStatus {
        let node = self.node_mut(id);
        let mut child = node
            .child
            .get_mut()
            .take()
            .unwrap_or_else(|| panic!("node {id} not running"));
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
        // SAFETY: plain kill(2) on a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM to node {id}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("poll node") {
                note(&node.log, &format!("exited after SIGTERM: {status}"));
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("node {id} ignored SIGTERM for 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a stopped node again with the same flags and data dir.
    pub fn restart(&mut self, id: u64) {
        self.spawn(id);
    }

    /// Whether a node's process has exited on its own (and reaps it).
    pub fn exited(&mut self, id: u64) -> Option<ExitStatus> {
        let node = self.node_mut(id);
        let child = node.child.get_mut();
        let status = child.as_mut()?.try_wait().expect("poll node")?;
        *child = None;
        Some(status)
    }

    /// Panics if a node the harness started has died of a failure (a
    /// crash should fail the test at once, not after a timeout); a node
    /// that exited cleanly on its own is marked stopped.
    pub fn assert_no_crash(&self) {
        for node in self.nodes.values() {
            let mut slot = node.child.lock();
            let Some(child) = slot.as_mut() else {
                continue;
            };
            if let Some(status) = child.try_wait().expect("poll node") {
                *slot = None;
                note(&node.log, &format!("exited on its own: {status}"));
                assert!(
                    status.success(),
                    "node {} exited unexpectedly ({status}); see its log below",
                    node.id
                );
            }
        }
    }

    /// The text of a node's log so far.
    pub fn log_text(&self, id: u64) -> String {
        std::fs::read_to_string(&self.node(id).log).unwrap_or_default()
    }

    /// Runs the CLI binary (bounded to 60 s).
    pub fn cli(&self, args: &[&str]) -> Output {
        run_bounded(Command::new(binary()).args(args), Duration::from_secs(60))
    }

    /// One `Status` call, parsed.
    pub async fn status(&self, id: u64) -> Result<Value, String> {
        let mut admin = self.node(id).admin();
        let reply = tokio::time::timeout(RPC_TIMEOUT, admin.status(StatusRequest {}))
            .await
            .map_err(|_| format!("status of node {id} timed out"))?
            .map_err(|s| format!("status of node {id}: {s}"))?;
        serde_json::from_str(&reply.into_inner().json)
            .map_err(|e| format!("status of node {id} is not JSON: {e}"))
    }

    /// One group's entry in a node's status.
    pub async fn group_status(&self, id: u64, group: u64) -> Result<Value, String> {
        let status = self.status(id).await?;
        group_entry(&status, group)
            .cloned()
            .ok_or_else(|| format!("node {id} reports no group {group}: {status}"))
    }

    /// Waits until the running nodes agree on one leader of `group` (a
    /// majority of them name it in the same term, and it says it leads),
    /// and returns its id.
    pub async fn wait_for_leader(&self, group: u64) -> u64 {
        let deadline = Deadline::new(format!("a leader of group {group}"), LEADER_TIMEOUT);
        loop {
            let views = self.group_views(group).await;
            if let Some(leader) = agreed_leader(&views, self.running_ids().len()) {
                return leader;
            }
            self.assert_no_crash();
            if deadline.expired() {
                let seen: Vec<String> = views
                    .iter()
                    .map(|(id, g)| {
                        format!(
                            "node {id}: role {} term {} leader {}",
                            g["role"], g["term"], g["leader"]
                        )
                    })
                    .collect();
                panic!(
                    "no agreed leader of group {group} within {LEADER_TIMEOUT:?}; last views: [{}]",
                    seen.join("; ")
                );
            }
            deadline.tick().await;
        }
    }

    /// The group's status as each running node reports it (nodes that do
    /// not answer are left out).
    async fn group_views(&self, group: u64) -> Vec<(u64, Value)> {
        let mut views = Vec::new();
        for id in self.running_ids() {
            if let Ok(g) = self.group_status(id, group).await {
                views.push((id, g));
            }
        }
        views
    }

    /// Waits until node `id` has applied at least `index` in `group`.
    pub async fn wait_applied(&self, id: u64, group: u64, index: u64, limit: Duration) {
        let deadline = Deadline::new(
            format!("node {id} to apply index {index} of group {group}"),
            limit,
        );
        loop {
            if let Ok(g) = self.group_status(id, group).await
                && g["applied_index"].as_u64().unwrap_or(0) >= index
            {
                return;
            }
            self.assert_no_crash();
            deadline.tick().await;
        }
    }

    /// Waits until node `id` has applied everything the current leader of
    /// `group` had committed when this was called.
    pub async fn wait_caught_up(&self, id: u64, group: u64, limit: Duration) {
        let leader = self.wait_for_leader(group).await;
        let commit = self
            .group_status(leader, group)
            .await
            .ok()
            .and_then(|g| g["commit_index"].as_u64())
            .unwrap_or_else(|| panic!("leader {leader} reports no commit index"));
        self.wait_applied(id, group, commit, limit).await;
    }

    /// A KV client over every declared node, starting with `first`.
    pub fn kv_client(&self, first: u64) -> KvClient {
        let nodes: Vec<(u64, Channel)> = self
            .nodes
            .values()
            .map(|n| (n.id, n.channel.clone()))
            .collect();
        let next = nodes.iter().position(|(id, _)| *id == first).unwrap_or(0);
        KvClient { nodes, next }
    }

    /// A membership call against whichever node currently leads, retried
    /// (bounded) through leader changes.
    pub async fn membership(&self, op: MemberOp, node_id: u64, address: &str) -> u64 {
        let deadline = Deadline::new(format!("{op:?} of node {node_id}"), LEADER_TIMEOUT);
        loop {
            let leader = self.wait_for_leader(DEFAULT_GROUP).await;
            let mut admin = self.node(leader).admin();
            let req = MemberRequest {
                group: DEFAULT_GROUP,
                node_id,
                address: address.to_string(),
                min_match: 0,
            };
            let result = match op {
                MemberOp::AddLearner => admin.add_learner(req).await,
                MemberOp::Promote => admin.promote(req).await,
                MemberOp::Remove => admin.remove_node(req).await,
                MemberOp::TransferLeader => admin.transfer_leader(req).await,
            };
            match result {
                Ok(reply) => return reply.into_inner().index,
                Err(status) if deadline.expired() => {
                    panic!("{op:?} of node {node_id} via {leader}: {status}")
                }
                Err(_) => deadline.tick().await,
            }
        }
    }

    /// Asks a node for a snapshot now; returns the path it wrote.
    pub async fn snapshot_create(&self, id: u64) -> Result<PathBuf, String> {
        let mut admin = self.node(id).admin();
        let reply = admin
            .snapshot_create(SnapshotCreateRequest {
                group: DEFAULT_GROUP,
            })
            .await
            .map_err(|s| format!("snapshot on node {id}: {s}"))?;
        Ok(PathBuf::from(reply.into_inner().path))
    }

    /// The last lines of every node's log, for failure reports.
    pub fn dump_logs(&self) {
        for node in self.nodes.values() {
            let text = std::fs::read_to_string(&node.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(150)..];
            eprintln!(
                "----- node {} log ({}), last {} lines -----\n{}",
                node.id,
                node.log.display(),
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.get_mut().take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() || std::env::var_os("EKV_TEST_LOGS").is_some() {
            self.dump_logs();
        }
    }
}

/// Membership operations of the admin API.
#[derive(Debug, Clone, Copy)]
pub enum MemberOp {
    AddLearner,
    Promote,
    Remove,
    TransferLeader,
}

/// The leader a majority of the running nodes name in the newest term in
/// which some node says it leads.
fn agreed_leader(views: &[(u64, Value)], running: usize) -> Option<u64> {
    let claimant = views
        .iter()
        .filter(|(_, g)| g["role"] == "leader")
        .max_by_key(|(_, g)| g["term"].as_u64().unwrap_or(0))?;
    let (leader, term) = (claimant.0, claimant.1["term"].as_u64()?);
    let agreeing = views
        .iter()
        .filter(|(_, g)| g["leader"].as_u64() == Some(leader) && g["term"].as_u64() == Some(term))
        .count();
    (agreeing * 2 > running).then_some(leader)
}

/// A group's entry (`id` or `group_id`) in a status document.
pub fn group_entry(status: &Value, group: u64) -> Option<&Value> {
    status["groups"].as_array()?.iter().find(|g| {
        g.get("id").and_then(Value::as_u64) == Some(group)
            || g.get("group_id").and_then(Value::as_u64) == Some(group)
    })
}

fn note(log: &Path, line: &str) {
    if let Ok(mut f) = OpenOptions::new().append(true).open(log) {
        let _ = writeln!(f, "===== harness: {line}");
    }
}

/// Why a KV call failed.
#[derive(Debug, Clone)]
pub enum KvError {
    /// No answer in time: a write may or may not have happened.
    Timeout,
    /// The node answered with an error.
    Status(tonic::Status),
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvError::Timeout => write!(f, "timed out"),
            KvError::Status(s) => write!(f, "{}: {}", s.code(), s.message()),
        }
    }
}

/// A client of the admin KV API. The `*_once` calls try the current node
/// exactly once (for histories: one attempt, one recorded operation);
/// `rotate` moves to the next node. `put`/`get` retry across nodes until a
/// deadline and are for idempotent use outside recorded histories.
#[derive(Clone)]
pub struct KvClient {
    nodes: Vec<(u64, Channel)>,
    next: usize,
}

impl KvClient {
    pub fn current_node(&self) -> u64 {
        self.nodes[self.next].0
    }

    /// Sends the next calls to the next node.
    pub fn rotate(&mut self) {
        self.next = (self.next + 1) % self.nodes.len();
    }

    /// Restricts the client to one node.
    pub fn pinned(mut self, id: u64) -> Self {
        self.nodes.retain(|(n, _)| *n == id);
        assert!(!self.nodes.is_empty(), "no node {id}");
        self.next = 0;
        self
    }

    fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.nodes[self.next].1.clone())
    }

    pub async fn put_once(&self, key: &[u8], value: &[u8]) -> Result<KvWriteReply, KvError> {
        let mut admin = self.admin();
        let req = KvPutRequest {
            group: DEFAULT_GROUP,
            key: key.to_vec(),
            value: value.to_vec(),
            ttl_ms: 0,
        };
        match tokio::time::timeout(RPC_TIMEOUT, admin.kv_put(req)).await {
            Err(_) => Err(KvError::Timeout),
            Ok(Err(status)) if status.code() == tonic::Code::Cancelled => Err(KvError::Timeout),
            Ok(Err(status)) => Err(KvError::Status(status)),
            Ok(Ok(reply)) => Ok(reply.into_inner()),
        }
    }

    pub async fn delete_once(&self, key: &[u8]) -> Result<KvWriteReply, KvError> {
        let mut admin = self.admin();
        let req = KvDeleteRequest {
            group: DEFAULT_GROUP,
            key: key.to_vec(),
        };
        match tokio::time::timeout(RPC_TIMEOUT, admin.kv_delete(req)).await {
            Err(_) => Err(KvError::Timeout),
            Ok(Err(status)) => Err(KvError::Status(status)),
            Ok(Ok(reply)) => Ok(reply.into_inner()),
        }
    }

    pub async fn get_once(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let mut admin = self.admin();
        let req = KvGetRequest {
            group: DEFAULT_GROUP,
            key: key.to_vec(),
        };
        match tokio::time::timeout(RPC_TIMEOUT, admin.kv_get(req)).await {
            Err(_) => Err(KvError::Timeout),
            Ok(Err(status)) => Err(KvError::Status(status)),
            Ok(Ok(reply)) => {
                let reply = reply.into_inner();
                Ok(reply.found.then_some(reply.value))
            }
        }
    }

    /// Writes, retrying across nodes for up to `limit`.
    pub async fn put(&mut self, key: &[u8], value: &[u8], limit: Duration) {
        let deadline = Deadline::new(format!("put of {:?}", String::from_utf8_lossy(key)), limit);
        loop {
            match self.put_once(key, value).await {
                Ok(_) => return,
                Err(e) if deadline.expired() => {
                    panic!("put via node {}: {e}", self.current_node())
                }
                Err(_) => {
                    self.rotate();
                    deadline.tick().await;
                }
            }
        }
    }

    /// Reads, retrying across nodes for up to `limit`.
    pub async fn get(&mut self, key: &[u8], limit: Duration) -> Option<Vec<u8>> {
        let deadline = Deadline::new(format!("get of {:?}", String::from_utf8_lossy(key)), limit);
        loop {
            match self.get_once(key).await {
                Ok(v) => return v,
                Err(e) if deadline.expired() => {
                    panic!("get via node {}: {e}", self.current_node())
                }
                Err(_) => {
                    self.rotate();
                    deadline.tick().await;
                }
            }
        }
    }
}

/// Fetches `http://addr/metrics` with a bare HTTP/1.0 request (no client
/// crate needed for one GET).
pub async fn fetch_metrics(addr: SocketAddr) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream
            .write_all(
                format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .map_err(|e| format!("send to {addr}: {e}"))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|e| format!("read from {addr}: {e}"))?;
        let text = String::from_utf8(response).map_err(|e| format!("metrics not UTF-8: {e}"))?;
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("malformed HTTP response: {text:?}"))?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return Err(format!("metrics answered {head:?}"));
        }
        Ok(body.to_string())
    };
    tokio::time::timeout(RPC_TIMEOUT, fetch)
        .await
        .map_err(|_| format!("metrics of {addr} timed out"))?
}
