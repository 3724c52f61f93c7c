//! A running node: data dir identity, the Raft node with its group, the
//! admin service, the HLC lease renewal, the metrics endpoint.
//!
//! Start-up refuses, before touching any state, a data dir that belongs to
//! another node id or a `--peers` list that differs from the one the
//! cluster was created with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::admin::{AdminService, GroupTable, PublishSink};
use super::backend::{Peers, ReplicatedBackend};
use super::config::{ConfigError, ServeConfig};
use super::redis::ClusterBroker;
use super::restore;
use super::state_machine::GroupStateMachine;
use crate::api::grpc::pb;
use crate::api::redis::commands::RedisExecutor;
use crate::api::redis::{LocalBroker, RedisConfig};
use crate::clock::{Hlc, physical_ms};
use crate::fsm::{Command, FsmError, Group};
use crate::raft::auth::TokenInterceptor;
use crate::raft::{Bootstrap, GroupConfig, NodeConfig, RaftError, RaftNode};
use crate::storage::{GroupStore, StorageError, StoreOptions};

/// The default (and, until multi-group sharding, only) data group.
pub const DEFAULT_GROUP: u64 = 1;
/// How far ahead of the wall clock a leader's HLC ceiling is set.
const HLC_LEASE_WINDOW_MS: u64 = 5_000;
/// How often a leader renews the ceiling.
const HLC_RENEW_EVERY: Duration = Duration::from_secs(1);
const IDENTITY_FILE: &str = "node.json";

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("data dir {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data dir {path} belongs to node {stored}, not node {given}")]
    WrongNode {
        path: PathBuf,
        stored: u64,
        given: u64,
    },
    #[error(
        "refusing to start: --peers {given} differs from the membership this cluster was created with ({stored}); start without --peers, or with the original list"
    )]
    PeersMismatch { given: String, stored: String },
    #[error("data dir {path} has an unreadable identity file: {message}")]
    BadIdentity { path: PathBuf, message: String },
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Fsm(#[from] FsmError),
    #[error(transparent)]
    Raft(#[from] RaftError),
    #[error(transparent)]
    Restore(#[from] super::restore::RestoreError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// What a data dir remembers about its node (written once the node's first
/// start succeeded).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeIdentity {
    pub format: u32,
    pub node_id: u64,
    pub cluster_id: String,
    /// The voters the cluster was created with (empty for a joined node).
    pub initial_voters: Vec<(u64, String)>,
}

fn peers_text(peers: &[(u64, String)]) -> String {
    peers
        .iter()
        .map(|(id, addr)| format!("{id}={addr}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |source| NodeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_identity(data_dir: &Path) -> Result<Option<NodeIdentity>, NodeError> {
    let path = data_dir.join(IDENTITY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| NodeError::BadIdentity {
                path,
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Writes the identity file atomically (temp + fsync + rename + dir fsync).
fn write_identity(data_dir: &Path, identity: &NodeIdentity) -> Result<(), NodeError> {
    use std::io::Write;
    let path = data_dir.join(IDENTITY_FILE);
    let tmp = data_dir.join(format!("{IDENTITY_FILE}.tmp"));
    let bytes = serde_json::to_vec_pretty(identity).map_err(|e| NodeError::BadIdentity {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let mut file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(&bytes).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    std::fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(data_dir))?;
    Ok(())
}

fn new_cluster_id(node_id: u64) -> String {
    use sha2::{Digest, Sha256};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let digest = Sha256::digest(format!("{now}-{}-{node_id}", std::process::id()));
    hex::encode(&digest[..8])
}

/// A running node.
pub struct Node {
    raft: RaftNode,
    backend: Arc<ReplicatedBackend>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    grpc_addr: std::net::SocketAddr,
    metrics_addr: Option<std::net::SocketAddr>,
    redis_addr: Option<std::net::SocketAddr>,
}

/// Reacts to every applied data entry on this replica.
type KeyHook = Arc<dyn Fn(&[u8]) + Send + Sync>;

impl Node {
    pub async fn start(cfg: ServeConfig) -> Result<Node, NodeError> {
        cfg.validate()?;
        let data_dir = cfg.data_dir.clone();
        // A restore refuses a used data dir and a bad file before touching anything.
        let seed = match &cfg.restore_from {
            Some(path) => {
                restore::check_fresh_data_dir(&data_dir)?;
                Some((path.clone(), restore::verify_seed(path, DEFAULT_GROUP)?))
            }
            None => None,
        };
        std::fs::create_dir_all(&data_dir).map_err(io_err(&data_dir))?;
        let identity = read_identity(&data_dir)?;
        if let Some(id) = &identity {
            if id.node_id != cfg.node_id {
                return Err(NodeError::WrongNode {
                    path: data_dir,
                    stored: id.node_id,
                    given: cfg.node_id,
                });
            }
            if !cfg.peers.is_empty() && cfg.initial_voters() != id.initial_voters {
                return Err(NodeError::PeersMismatch {
                    given: peers_text(&cfg.initial_voters()),
                    stored: peers_text(&id.initial_voters),
                });
            }
        }
        let cluster_id = identity
            .as_ref()
            .map(|i| i.cluster_id.clone())
            .or_else(|| {
                seed.as_ref()
                    .map(|(_, header)| header.cluster_id.clone())
                    .filter(|id| !id.is_empty())
            })
            .unwrap_or_else(|| {
                if cfg.join {
                    String::new()
                } else {
                    new_cluster_id(cfg.node_id)
                }
            });

        let group_dir = data_dir.join("groups").join(DEFAULT_GROUP.to_string());
        std::fs::create_dir_all(&group_dir).map_err(io_err(&group_dir))?;
        let store = Arc::new(GroupStore::open(
            &group_dir.join("db"),
            StoreOptions {
                sync_writes: cfg.sync_writes,
                ..StoreOptions::default()
            },
        )?);
        let hlc = Arc::new(Hlc::default());
        let group = Arc::new(Group::from_store(
            DEFAULT_GROUP,
            store.clone(),
            hlc.clone(),
        )?);
        if identity.is_none() {
            restore::check_restore_complete(&group, &data_dir)?;
        }
        if let Some((path, header)) = &seed {
            restore::install_seed(&group, path, header)?;
        }
        let applied = Arc::new(Notify::new());
        let key_hook: Arc<OnceLock<KeyHook>> = Arc::new(OnceLock::new());
        let observer = {
            let applied = applied.clone();
            let key_hook = key_hook.clone();
            Arc::new(move |payload: &[u8]| {
                applied.notify_waiters();
                if let Some(hook) = key_hook.get() {
                    hook(payload);
                }
            })
        };
        let sm = GroupStateMachine::new(
            group.clone(),
            cluster_id.clone(),
            group_dir.join("checkpoints"),
        )
        .with_observer(observer);

        let listener = tokio::net::TcpListener::bind(&cfg.listen)
            .await
            .map_err(|source| NodeError::Bind {
                what: "gRPC",
                addr: cfg.listen.clone(),
                source,
            })?;
        let grpc_addr = listener.local_addr().map_err(io_err(&data_dir))?;
        let advertise = match &cfg.advertise {
            Some(a) => a.clone(),
            // With port 0 in --listen, advertise the port actually bound.
            None if cfg.listen.ends_with(":0") => grpc_addr.to_string(),
            None => cfg.listen.clone(),
        };

        let registry = prometheus::Registry::new();
        registry.register(Box::new(super::metrics::StorageCollector::new(vec![(
            DEFAULT_GROUP,
            store.clone(),
        )])?))?;
        let groups: GroupTable = Arc::new(OnceLock::new());
        let publish: Arc<OnceLock<PublishSink>> = Arc::new(OnceLock::new());
        let admin = tonic::service::interceptor::InterceptedService::new(
            pb::admin_server::AdminServer::new(AdminService::new(
                cfg.node_id,
                groups.clone(),
                publish.clone(),
            ))
            .max_decoding_message_size(64 << 20),
            TokenInterceptor::new(cfg.cluster_token.clone()),
        );
        let routes = tonic::service::Routes::default().add_service(admin);
        let raft = RaftNode::start_with_routes(
            NodeConfig {
                node_id: cfg.node_id,
                advertise_addr: advertise.clone(),
                token: cfg.cluster_token.clone(),
            },
            listener,
            &registry,
            routes,
        )
        .await?;

        let mut gcfg = GroupConfig::new(DEFAULT_GROUP, cfg.node_id, group_dir.clone());
        gcfg.tick = Duration::from_millis(cfg.raft_tick_ms);
        gcfg.heartbeat_ticks = cfg.raft_heartbeat_ticks;
        gcfg.election_ticks = cfg.raft_election_ticks;
        gcfg.lease_margin =
            (gcfg.election_timeout() / 6).max(Duration::from_millis(cfg.raft_tick_ms * 2));
        gcfg.snapshot_every = cfg.snapshot_every;
        let bootstrap = if identity.is_some() {
            Bootstrap::Restart
        } else if cfg.join {
            Bootstrap::Join
        } else {
            let mut voters = cfg.initial_voters();
            for (id, addr) in voters.iter_mut() {
                if *id == cfg.node_id {
                    *addr = advertise.clone();
                }
            }
            Bootstrap::NewCluster { voters }
        };
        let handle = raft.start_group(gcfg, store.db_handle(), Box::new(sm), bootstrap)?;
        let peers = Arc::new(Peers::new(cfg.cluster_token.clone()));
        let backend = Arc::new(ReplicatedBackend::new(group, handle, peers, applied));
        let mut table = BTreeMap::new();
        table.insert(DEFAULT_GROUP, backend.clone());
        let _ = groups.set(table);

        if identity.is_none() {
            write_identity(
                &cfg.data_dir,
                &NodeIdentity {
                    format: 1,
                    node_id: cfg.node_id,
                    cluster_id,
                    initial_voters: if cfg.join {
                        vec![]
                    } else {
                        cfg.initial_voters()
                    },
                },
            )?;
        }

        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(renew_hlc_lease(
            backend.clone(),
            hlc,
            stop_rx.clone(),
        ))];
        let redis_addr = match cfg.redis_listen() {
            None => None,
            Some((addr, explicit)) => {
                let executor = RedisExecutor::new(backend.clone());
                let local = Arc::new(LocalBroker::new());
                let broker = Arc::new(ClusterBroker::new(
                    local.clone(),
                    backend.clone(),
                    cfg.node_id,
                ));
                let _ = publish.set(Arc::new(move |channel: &[u8], message: &[u8]| {
                    local.publish_local(
                        &bytes::Bytes::copy_from_slice(channel),
                        &bytes::Bytes::copy_from_slice(message),
                    ) as u64
                }));
                {
                    let executor = executor.clone();
                    let _ = key_hook.set(Arc::new(move |payload: &[u8]| {
                        // Runs on the Raft apply thread for every entry:
                        // decoding it again is wasted when nobody waits.
                        if !executor.has_key_waiters() {
                            return;
                        }
                        for key in super::redis::written_redis_keys(payload) {
                            executor.notify_key_written(&key);
                        }
                    }));
                }
                let config = RedisConfig {
                    password: cfg.redis_password.clone(),
                    allow_non_loopback: cfg.redis_allow_unauthenticated_remote,
                    registry: Some(registry.clone()),
                    ..RedisConfig::default()
                };
                match super::redis::start(&addr, config, executor, broker, stop_rx.clone()).await {
                    Ok((bound, redis_tasks)) => {
                        tasks.extend(redis_tasks);
                        Some(bound)
                    }
                    Err(source) if explicit => {
                        return Err(NodeError::Bind {
                            what: "Redis",
                            addr,
                            source,
                        });
                    }
                    Err(e) => {
                        tracing::warn!(
                            "Redis front end not started: cannot bind default {addr}: {e}"
                        );
                        None
                    }
                }
            }
        };
        let metrics_addr = if cfg.metrics.is_empty() {
            None
        } else {
            let listener = tokio::net::TcpListener::bind(&cfg.metrics)
                .await
                .map_err(|source| NodeError::Bind {
                    what: "metrics",
                    addr: cfg.metrics.clone(),
                    source,
                })?;
            let addr = listener.local_addr().map_err(io_err(&cfg.data_dir))?;
            tasks.push(tokio::spawn(super::metrics::serve(
                listener,
                registry,
                stop_rx.clone(),
            )));
            Some(addr)
        };
        tracing::info!(node = cfg.node_id, grpc = %grpc_addr, "node started");
        Ok(Node {
            raft,
            backend,
            stop,
            tasks,
            grpc_addr,
            metrics_addr,
            redis_addr,
        })
    }

    pub fn grpc_addr(&self) -> std::net::SocketAddr {
        self.grpc_addr
    }

    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_addr
    }

    pub fn backend(&self) -> &Arc<ReplicatedBackend> {
        &self.backend
    }

    pub fn redis_addr(&self) -> Option<std::net::SocketAddr> {
        self.redis_addr
    }

    /// A stop signal other services of this node can follow.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Stops background tasks, then the Raft groups and the gRPC server.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.raft.shutdown().await;
    }
}

/// On the leader, keep the replicated HLC ceiling ahead of the wall clock;
/// after winning an election, move the clock above the previous leader's
/// ceiling once it is applied.
async fn renew_hlc_lease(
    backend: Arc<ReplicatedBackend>,
    hlc: Arc<Hlc>,
    mut stop: watch::Receiver<bool>,
) {
    let mut leadership = backend.handle().leadership();
    let mut taken_over_term = 0u64;
    loop {
        let lead = *leadership.borrow_and_update();
        if lead.is_leader && taken_over_term != lead.term {
            // The read fence returns once an entry of our own term has
            // applied, hence every ceiling of the previous leaders too: move
            // the clock above them before issuing anything under our lease.
            match backend.handle().read_fence().await {
                Ok(_) => {
                    hlc.take_over();
                    taken_over_term = lead.term;
                }
                Err(e) => tracing::debug!("leader fence before hlc takeover failed: {e}"),
            }
        }
        if lead.is_leader && taken_over_term == lead.term {
            let ceiling_ms = physical_ms(hlc.wall_now()) + HLC_LEASE_WINDOW_MS;
            if let Err(e) = backend
                .propose_control(Command::HlcLease { ceiling_ms })
                .await
            {
                tracing::debug!("hlc lease renewal failed: {e}");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(HLC_RENEW_EVERY) => {}
            _ = leadership.changed() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
