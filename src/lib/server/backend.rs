//! `ReplicatedBackend`: the [`KvBackend`] of a node in a Raft cluster.
//!
//! Timestamps are issued by the leader only. A follower asks the leader for
//! a read timestamp (and the leader's applied index at that moment), waits
//! until it has applied that far itself, and then reads its own replica; it
//! sends commits to the leader, which stamps, replicates and applies them,
//! and waits for the entry locally before answering (read-your-writes).
//!
//! The invariant that makes optimistic validation sound: no commit ever
//! lands at or below a read timestamp already handed out, and every
//! acknowledged commit is at or below every read timestamp handed out after
//! it. The leader tracks the commit timestamps it has stamped but not yet
//! seen applied; a read timestamp is a fresh clock reading when none is in
//! flight, else the newer of the last applied commit ts and just below the
//! lowest in-flight stamp (see [`ReplicatedBackend::leader_read_ts`]). A
//! proposal whose outcome is unknown (timeout, leadership lost) stays
//! tracked until a later proposal of this node has applied, since the log
//! is ordered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tonic::transport::{Channel, Endpoint};

use crate::api::grpc::pb;
use crate::clock::{Hlc, Timestamp};
use crate::fsm::{ApplyOutcome, Command, Group};
use crate::raft::{GroupHandle, RaftError};
use crate::txn::{KvBackend, StampHook, TxnError, stamp_commit_ts};

/// How long a caller waits for a leader or for its replica to catch up.
const WAIT_LIMIT: Duration = Duration::from_secs(10);

/// Commit timestamps stamped by this node and not yet known to be applied.
#[derive(Default)]
struct InFlight {
    /// ts -> number of proposals stamped with it (normally 1).
    live: BTreeMap<Timestamp, u32>,
    /// Proposals whose outcome is unknown: cleared once a later one applies.
    orphans: BTreeMap<Timestamp, u32>,
}

impl InFlight {
    fn lowest(&self) -> Option<Timestamp> {
        let a = self.live.keys().next().copied();
        let b = self.orphans.keys().next().copied();
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

fn dec(map: &mut BTreeMap<Timestamp, u32>, ts: Timestamp) {
    if let Some(n) = map.get_mut(&ts) {
        *n -= 1;
        if *n == 0 {
            map.remove(&ts);
        }
    }
}

/// Resolves node ids to admin/transport addresses and keeps clients.
pub struct Peers {
    token: Option<String>,
    clients: Mutex<BTreeMap<String, pb::admin_client::AdminClient<Channel>>>,
}

impl Peers {
    pub fn new(token: Option<String>) -> Self {
        Self {
            token,
            clients: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// A client for `addr` (connections are made lazily and shared).
    pub fn client(&self, addr: &str) -> Result<pb::admin_client::AdminClient<Channel>, TxnError> {
        let mut clients = self.clients.lock();
        if let Some(c) = clients.get(addr) {
            return Ok(c.clone());
        }
        let uri = if addr.starts_with("http") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        let endpoint = Endpoint::from_shared(uri)
            .map_err(|e| TxnError::Unavailable(format!("bad peer address {addr}: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true);
        let client = pb::admin_client::AdminClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(64 << 20);
        clients.insert(addr.to_string(), client.clone());
        Ok(client)
    }

    /// Wraps a message with the cluster token.
    pub fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        // A token that is not valid metadata was refused at start-up.
        let _ = crate::raft::auth::attach_token(&mut req, self.token.as_deref());
        req
    }
}

/// The replicated backend of one group on this node.
pub struct ReplicatedBackend {
    group: Arc<Group>,
    handle: GroupHandle,
    hlc: Arc<Hlc>,
    peers: Arc<Peers>,
    inflight: Mutex<InFlight>,
    /// Held from stamping a commit to queueing its proposal.
    propose_order: Mutex<()>,
    applied: Arc<Notify>,
}

enum Role {
    Leader,
    Follower(String),
}

impl ReplicatedBackend {
    /// `applied` is notified after every applied entry on this node.
    pub fn new(
        group: Arc<Group>,
        handle: GroupHandle,
        peers: Arc<Peers>,
        applied: Arc<Notify>,
    ) -> Self {
        let hlc = group.hlc().clone();
        Self {
            group,
            handle,
            hlc,
            peers,
            inflight: Mutex::new(InFlight::default()),
            propose_order: Mutex::new(()),
            applied,
        }
    }

    pub fn group(&self) -> &Arc<Group> {
        &self.group
    }

    pub fn handle(&self) -> &GroupHandle {
        &self.handle
    }

    pub fn peers(&self) -> &Arc<Peers> {
        &self.peers
    }

    /// Who serves timestamps right now (waits a bounded time for a leader).
    async fn role(&self) -> Result<Role, TxnError> {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        let mut watch = self.handle.leadership();
        loop {
            let lead = *watch.borrow_and_update();
            if lead.is_leader {
                return Ok(Role::Leader);
            }
            if lead.leader != 0 {
                let status = self.handle.status();
                if let Some(addr) = status
                    .peers
                    .iter()
                    .find(|p| p.id == lead.leader)
                    .and_then(|p| p.address.clone())
                {
                    return Ok(Role::Follower(addr));
                }
            }
            if tokio::time::timeout_at(deadline, watch.changed())
                .await
                .is_err()
            {
                return Err(TxnError::Unavailable(
                    "no leader known for the group".into(),
                ));
            }
        }
    }

    /// Waits until this replica has applied `index`.
    pub async fn wait_applied(&self, index: u64) -> Result<(), TxnError> {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            let notified = self.applied.notified();
            if self.group.applied_index() >= index {
                return Ok(());
            }
            // The notify covers data entries; a short poll covers the rest
            // (membership entries, snapshot installs).
            let step = tokio::time::Instant::now() + Duration::from_millis(5);
            let _ = tokio::time::timeout_at(step.min(deadline), notified).await;
            if tokio::time::Instant::now() >= deadline {
                return Err(TxnError::Unavailable(format!(
                    "replica did not reach applied index {index} in time (at {})",
                    self.group.applied_index()
                )));
            }
        }
    }

    /// Leader side of a read timestamp: freshness check, then a timestamp
    /// at which every acknowledged commit is visible and no later commit
    /// can land.
    ///
    /// With no commit of this leader in flight that is a fresh clock
    /// reading. Otherwise it is the newer of the group's last applied
    /// commit ts and just below the lowest in-flight stamp: apply raises
    /// every commit ts to at least `last + 1` and never below its stamp, so
    /// each in-flight commit lands above that point, while everything
    /// acknowledged is applied, hence at or below it. Reads therefore never
    /// wait for writes in flight (no convoy under a write load).
    pub async fn leader_read_ts(&self) -> Result<(Timestamp, u64), TxnError> {
        self.handle.read_fence().await.map_err(raft_err)?;
        let ts = {
            // Stamping happens under this lock too, so no commit can be
            // stamped below the answer without being seen here.
            let inflight = self.inflight.lock();
            match inflight.lowest() {
                None => self.hlc.next_fenced()?,
                Some(lowest) => lowest.saturating_sub(1).max(self.group.last_commit_ts()),
            }
        };
        Ok((ts, self.group.applied_index()))
    }

    /// Leader side of a commit: stamp, replicate, wait for apply.
    pub async fn leader_commit(&self, command: Command) -> Result<(ApplyOutcome, u64), TxnError> {
        self.leader_commit_observed(command, None).await
    }

    /// [`ReplicatedBackend::leader_commit`], telling `on_stamped` the
    /// commit ts once the proposal is queued to the Raft driver.
    async fn leader_commit_observed(
        &self,
        command: Command,
        on_stamped: Option<StampHook>,
    ) -> Result<(ApplyOutcome, u64), TxnError> {
        // Proposals reach the log in the order of their stamps, so a commit
        // never lands below one stamped before it — and a strict commit is
        // refused only across a change of leader.
        let order = self.propose_order.lock();
        let ts = {
            let mut inflight = self.inflight.lock();
            let ts = self.hlc.next_fenced()?;
            *inflight.live.entry(ts).or_default() += 1;
            ts
        };
        let command = stamp_commit_ts(command, ts);
        let applied = self.handle.enqueue_proposal(command.into_payload());
        drop(order);
        if let Some(on_stamped) = on_stamped {
            on_stamped(ts);
        }
        let result = applied.await;
        {
            let mut inflight = self.inflight.lock();
            dec(&mut inflight.live, ts);
            match &result {
                Ok(_) => {
                    // Everything stamped before this one is applied or gone.
                    let keep = inflight.orphans.split_off(&ts);
                    inflight.orphans = keep;
                }
                Err(RaftError::Timeout | RaftError::LeadershipLost) => {
                    *inflight.orphans.entry(ts).or_default() += 1;
                }
                Err(_) => {}
            }
        }
        let applied = result.map_err(raft_err)?;
        let outcome = ApplyOutcome::decode(&applied.response)
            .map_err(|e| TxnError::Unavailable(format!("bad apply result: {e}")))?;
        Ok((outcome, applied.index))
    }

    /// Proposes a non-data command (HLC lease) on the leader.
    pub async fn propose_control(&self, command: Command) -> Result<(), TxnError> {
        self.handle
            .propose(command.into_payload())
            .await
            .map(|_| ())
            .map_err(raft_err)
    }

    /// Orphans are normally cleared by the next commit; an idle leader
    /// with orphans clears them with a no-op write of its own.
    async fn flush_orphans(&self) -> Result<(), TxnError> {
        if self.inflight.lock().orphans.is_empty() {
            return Ok(());
        }
        let noop = Command::Raw {
            commit_ts: 1,
            mutations: vec![],
        };
        self.leader_commit(noop).await.map(|_| ())
    }
}

fn raft_err(e: RaftError) -> TxnError {
    TxnError::Unavailable(e.to_string())
}

fn status_err(e: tonic::Status) -> TxnError {
    TxnError::Unavailable(format!("leader call failed: {}", e.message()))
}

impl KvBackend for ReplicatedBackend {
    async fn read_ts(&self) -> Result<Timestamp, TxnError> {
        match self.role().await? {
            Role::Leader => {
                self.flush_orphans().await?;
                Ok(self.leader_read_ts().await?.0)
            }
            Role::Follower(addr) => {
                let mut client = self.peers.client(&addr)?;
                let reply = client
                    .read_ts(self.peers.request(pb::ReadTsRequest {
                        group: self.group.id(),
                    }))
                    .await
                    .map_err(status_err)?
                    .into_inner();
                self.hlc.observe(reply.ts);
                self.wait_applied(reply.applied_index).await?;
                Ok(reply.ts)
            }
        }
    }

    fn group(&self) -> &Group {
        &self.group
    }

    async fn commit(&self, command: Command) -> Result<ApplyOutcome, TxnError> {
        self.commit_observed(command, Box::new(|_| {})).await
    }

    fn stamps_locally(&self) -> bool {
        self.handle.leadership().borrow().is_leader
    }

    async fn commit_observed(
        &self,
        command: Command,
        on_stamped: StampHook,
    ) -> Result<ApplyOutcome, TxnError> {
        match self.role().await? {
            Role::Leader => Ok(self
                .leader_commit_observed(command, Some(on_stamped))
                .await?
                .0),
            Role::Follower(addr) => {
                let mut client = self.peers.client(&addr)?;
                let reply = client
                    .commit(self.peers.request(pb::CommitRequest {
                        group: self.group.id(),
                        command: command.into_payload(),
                    }))
                    .await
                    .map_err(status_err)?
                    .into_inner();
                let outcome = ApplyOutcome::decode(&reply.outcome)
                    .map_err(|e| TxnError::Unavailable(format!("bad apply result: {e}")))?;
                self.wait_applied(reply.index).await?;
                Ok(outcome)
            }
        }
    }
}
