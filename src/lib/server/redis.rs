//! The Redis front end of a node: the executor over the replicated backend,
//! pub/sub that reaches subscribers on every node, wake-ups of blocked
//! clients when replicated writes apply here, and active expiry on the
//! leader.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::backend::ReplicatedBackend;
use crate::api::grpc::pb;
use crate::api::redis::commands::RedisExecutor;
use crate::api::redis::pubsub::Mailbox;
use crate::api::redis::{LocalBroker, PubSubBroker, RedisConfig};
use crate::fsm::Command;
use crate::model::redis::layout::split_user_key;
use crate::storage::Mutation;

/// How often the leader sweeps expired keys, and how many per page.
const EXPIRY_INTERVAL: Duration = Duration::from_millis(200);
const EXPIRY_PAGE: usize = 200;

/// Pub/sub across the cluster: local delivery plus a relay of each PUBLISH
/// to every other node of the group, which delivers it locally.
pub struct ClusterBroker {
    local: Arc<LocalBroker>,
    backend: Arc<ReplicatedBackend>,
    node_id: u64,
}

impl ClusterBroker {
    pub fn new(local: Arc<LocalBroker>, backend: Arc<ReplicatedBackend>, node_id: u64) -> Self {
        Self {
            local,
            backend,
            node_id,
        }
    }
}

impl PubSubBroker for ClusterBroker {
    async fn publish(&self, channel: Bytes, message: Bytes) -> usize {
        let mut receivers = self.local.publish_local(&channel, &message);
        let peers: Vec<String> = self
            .backend
            .handle()
            .status()
            .peers
            .into_iter()
            .filter(|p| p.id != self.node_id)
            .filter_map(|p| p.address)
            .collect();
        let calls = peers.into_iter().map(|addr| {
            let peers = self.backend.peers().clone();
            let channel = channel.to_vec();
            let message = message.to_vec();
            async move {
                let mut client = peers.client(&addr).ok()?;
                let call = client.publish(peers.request(pb::PublishRequest { channel, message }));
                match tokio::time::timeout(Duration::from_secs(2), call).await {
                    Ok(Ok(reply)) => Some(reply.into_inner().receivers as usize),
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %addr, "publish relay failed: {}", e.message());
                        None
                    }
                    Err(_) => None,
                }
            }
        });
        receivers += futures::future::join_all(calls)
            .await
            .into_iter()
            .flatten()
            .sum::<usize>();
        receivers
    }

    fn subscribe(&self, mailbox: &Arc<Mailbox>, channel: Bytes) {
        self.local.subscribe(mailbox, channel)
    }

    fn unsubscribe(&self, id: u64, channel: &[u8]) {
        self.local.unsubscribe(id, channel)
    }

    fn psubscribe(&self, mailbox: &Arc<Mailbox>, pattern: Bytes) {
        self.local.psubscribe(mailbox, pattern)
    }

    fn punsubscribe(&self, id: u64, pattern: &[u8]) {
        self.local.punsubscribe(id, pattern)
    }

    fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.local.channels(pattern)
    }

    fn numsub(&self, channel: &[u8]) -> usize {
        self.local.numsub(channel)
    }

    fn numpat(&self) -> usize {
        self.local.numpat()
    }

    fn local_receivers(&self, channel: &[u8]) -> usize {
        self.local.local_receivers(channel)
    }
}

/// The Redis keys a committed command writes (for waking blocked clients).
pub fn written_redis_keys(payload: &[u8]) -> Vec<Vec<u8>> {
    let mutations = match Command::decode(payload) {
        Ok(Command::Raw { mutations, .. }) | Ok(Command::Txn { mutations, .. }) => mutations,
        _ => return Vec::new(),
    };
    let mut keys: Vec<Vec<u8>> = mutations
        .iter()
        .filter_map(|m| match m {
            Mutation::Put { key, .. } | Mutation::Delete { key } => {
                split_user_key(key).map(|(k, _)| k)
            }
            _ => None,
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Starts the Redis listener; returns the bound address and its task.
pub async fn start(
    addr: &str,
    config: RedisConfig,
    executor: Arc<RedisExecutor<ReplicatedBackend>>,
    broker: Arc<ClusterBroker>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<(std::net::SocketAddr, Vec<JoinHandle<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let serve_stop = stop.clone();
    let server = {
        let executor = executor.clone();
        tokio::spawn(async move {
            if let Err(e) =
                crate::api::redis::serve(listener, config, executor, broker, serve_stop).await
            {
                tracing::error!("redis front end stopped: {e}");
            }
        })
    };
    let expiry = tokio::spawn(expire_on_leader(executor, stop));
    Ok((local, vec![server, expiry]))
}

/// The leader removes the rows of expired keys in small pages; expired keys
/// are invisible to reads whether or not this has run.
async fn expire_on_leader(
    executor: Arc<RedisExecutor<ReplicatedBackend>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut resume: Option<Vec<u8>> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EXPIRY_INTERVAL) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        if !executor.backend().handle().leadership().borrow().is_leader {
            continue;
        }
        match executor.expire_page(resume.as_deref(), EXPIRY_PAGE).await {
            Ok(page) => resume = page.resume,
            Err(e) => {
                tracing::debug!("active expiry page failed: {e}");
                resume = None;
            }
        }
    }
}
