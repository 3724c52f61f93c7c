//! The node-to-node gRPC transport shared by every group of a process: one
//! lazily connected channel and one sending task per peer node, batching the
//! Raft messages of all groups (each tagged with its group id), and snapshot
//! files streamed in chunks into a resumable, fsynced spool on the receiver.
//!
//! Invariants: a snapshot message reaches the receiving group only after its
//! file is complete, matches the length and CRC-32C in the snapshot token,
//! and was renamed into place and its directory fsynced; a spool never grows
//! beyond the receiver's size cap; a chunk that does not continue the spool
//! exactly is refused (the sender re-probes the offset and resumes).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

use ::raft::eraftpb::{Message, MessageType};
use parking_lot::{Mutex, RwLock};
use protobuf::Message as _;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use crate::raft::auth;
use crate::raft::snapfile::{self, SnapshotToken};

pub mod pb {
    tonic::include_proto!("elastickv.raft");
}

use pb::raft_transport_client::RaftTransportClient;
use pb::raft_transport_server::RaftTransport;

/// Most messages sent in one batch.
const MAX_BATCH: usize = 512;
/// Snapshot chunk size.
pub const SNAPSHOT_CHUNK: usize = 1 << 20;

/// What the transport tells the groups of this node.
#[derive(Debug, Clone, Copy)]
pub enum PeerReport {
    Unreachable { peer: u64 },
    Snapshot { peer: u64, ok: bool },
}

/// The receiving side's view of the node: where to deliver and spool.
pub trait Inbound: Send + Sync + 'static {
    fn deliver(&self, group: u64, msg: Message);
    /// The group's directory and its snapshot size cap, if it runs here.
    fn group_dir(&self, group: u64) -> Option<(PathBuf, u64)>;
    fn learn_address(&self, node: u64, addr: &str);
    fn report(&self, group: u64, report: PeerReport);
}

enum Outbound {
    Message(u64, Message),
    Snapshot(u64, Message, PathBuf),
}

/// The sending half: per-peer queues drained by tokio tasks.
pub struct Transport {
    node_id: u64,
    self_addr: String,
    token: Option<String>,
    addresses: RwLock<HashMap<u64, String>>,
    peers: Mutex<HashMap<u64, mpsc::UnboundedSender<Outbound>>>,
    inbound: Arc<dyn Inbound>,
    runtime: tokio::runtime::Handle,
}

impl Transport {
    pub fn new(
        node_id: u64,
        self_addr: String,
        token: Option<String>,
        inbound: Arc<dyn Inbound>,
        runtime: tokio::runtime::Handle,
    ) -> Arc<Transport> {
        Arc::new(Transport {
            node_id,
            self_addr,
            token,
            addresses: RwLock::new(HashMap::new()),
            peers: Mutex::new(HashMap::new()),
            inbound,
            runtime,
        })
    }

    pub fn set_address(&self, node: u64, addr: &str) {
        if node == self.node_id || addr.is_empty() {
            return;
        }
        let mut book = self.addresses.write();
        if book.get(&node).map(String::as_str) != Some(addr) {
            book.insert(node, addr.to_string());
            // A new address needs a new channel: the old task ends when its
            // queue is dropped.
            self.peers.lock().remove(&node);
        }
    }

    pub fn address(&self, node: u64) -> Option<String> {
        self.addresses.read().get(&node).cloned()
    }

    /// Queues messages of one group; snapshot messages carry their file.
    pub fn send(
        self: &Arc<Self>,
        group: u64,
        msgs: Vec<Message>,
        snap_path: impl Fn(&Message) -> PathBuf,
    ) {
        for msg in msgs {
            let to = msg.to;
            let item = if msg.get_msg_type() == MessageType::MsgSnapshot {
                let path = snap_path(&msg);
                Outbound::Snapshot(group, msg, path)
            } else {
                Outbound::Message(group, msg)
            };
            let Some(queue) = self.queue(to) else {
                self.inbound
                    .report(group, PeerReport::Unreachable { peer: to });
                continue;
            };
            if queue.send(item).is_err() {
                self.peers.lock().remove(&to);
            }
        }
    }

    fn queue(self: &Arc<Self>, to: u64) -> Option<mpsc::UnboundedSender<Outbound>> {
        if let Some(q) = self.peers.lock().get(&to) {
            return Some(q.clone());
        }
        let addr = self.address(to)?;
        // Group threads are not runtime threads: the lazy channel needs one.
        let _runtime = self.runtime.enter();
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).ok()?;
        let channel = endpoint
            .connect_timeout(std::time::Duration::from_secs(2))
            .connect_lazy();
        let (tx, rx) = mpsc::unbounded_channel();
        self.peers.lock().insert(to, tx.clone());
        let me = self.clone();
        self.runtime.spawn(async move {
            me.peer_loop(to, RaftTransportClient::new(channel), rx)
                .await
        });
        Some(tx)
    }

    async fn peer_loop(
        self: Arc<Self>,
        to: u64,
        client: RaftTransportClient<tonic::transport::Channel>,
        mut rx: mpsc::UnboundedReceiver<Outbound>,
    ) {
        while let Some(first) = rx.recv().await {
            let mut batch = Vec::new();
            let mut next = Some(first);
            while let Some(item) = next.take() {
                match item {
                    Outbound::Message(group, msg) => match msg.write_to_bytes() {
                        Ok(bytes) => batch.push(pb::GroupMessage {
                            group_id: group,
                            message: bytes,
                        }),
                        Err(e) => tracing::error!("cannot encode raft message: {e}"),
                    },
                    Outbound::Snapshot(group, msg, path) => {
                        let me = self.clone();
                        let client = client.clone();
                        tokio::spawn(async move {
                            let ok = match me.stream_snapshot(client, group, msg, &path).await {
                                Ok(()) => true,
                                Err(e) => {
                                    tracing::warn!(peer = to, group, "snapshot stream failed: {e}");
                                    false
                                }
                            };
                            me.inbound
                                .report(group, PeerReport::Snapshot { peer: to, ok });
                        });
                    }
                }
                if batch.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if batch.is_empty() {
                continue;
            }
            let groups: Vec<u64> = batch.iter().map(|m| m.group_id).collect();
            let mut req = Request::new(pb::MessageBatch {
                from_node: self.node_id,
                from_addr: self.self_addr.clone(),
                messages: batch,
            });
            req.set_timeout(std::time::Duration::from_secs(5));
            if auth::attach_token(&mut req, self.token.as_deref()).is_err() {
                tracing::error!("cluster token cannot be sent as metadata");
                continue;
            }
            if let Err(status) = client.clone().send(req).await {
                tracing::debug!(peer = to, "raft send failed: {status}");
                let mut seen = Vec::new();
                for g in groups {
                    if !seen.contains(&g) {
                        seen.push(g);
                        self.inbound.report(g, PeerReport::Unreachable { peer: to });
                    }
                }
            }
        }
    }

    async fn stream_snapshot(
        &self,
        mut client: RaftTransportClient<tonic::transport::Channel>,
        group: u64,
        msg: Message,
        path: &std::path::Path,
    ) -> Result<(), String> {
        let meta = msg.get_snapshot().get_metadata();
        let mut probe = Request::new(pb::SnapshotProbe {
            group_id: group,
            index: meta.index,
            term: meta.term,
        });
        auth::attach_token(&mut probe, self.token.as_deref()).map_err(|e| e.to_string())?;
        let offset = client
            .snapshot_offset(probe)
            .await
            .map_err(|e| format!("probe: {e}"))?
            .into_inner()
            .offset;
        let mut file =
            std::fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        if offset > len {
            return Err(format!(
                "receiver spool {offset} is longer than the file ({len})"
            ));
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| e.to_string())?;
        let message = msg.write_to_bytes().map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::channel::<pb::SnapshotChunk>(4);
        let from_node = self.node_id;
        let from_addr = self.self_addr.clone();
        let reader = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let mut pos = offset;
            let mut first = true;
            loop {
                let mut buf = vec![0u8; SNAPSHOT_CHUNK];
                let n = file.read(&mut buf).map_err(|e| e.to_string())?;
                buf.truncate(n);
                if n == 0 && !first {
                    return Ok(());
                }
                let chunk = pb::SnapshotChunk {
                    group_id: group,
                    from_node,
                    from_addr: from_addr.clone(),
                    message: if first { message.clone() } else { Vec::new() },
                    offset: pos,
                    data: buf,
                };
                first = false;
                pos += n as u64;
                if tx.blocking_send(chunk).is_err() {
                    return Err("receiver closed the stream".into());
                }
                if n == 0 {
                    return Ok(());
                }
            }
        });
        let mut req = Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        auth::attach_token(&mut req, self.token.as_deref()).map_err(|e| e.to_string())?;
        let sent = client.send_snapshot(req).await;
        let read = reader.await.map_err(|e| e.to_string())?;
        sent.map_err(|e| format!("send: {e}"))?;
        read
    }
}

/// The receiving half: the tonic service.
pub struct TransportService {
    inbound: Arc<dyn Inbound>,
}

impl TransportService {
    pub fn new(inbound: Arc<dyn Inbound>) -> Self {
        TransportService { inbound }
    }
}

fn token_of(msg: &Message) -> Result<SnapshotToken, Status> {
    SnapshotToken::decode(&msg.get_snapshot().data)
        .map_err(|e| Status::invalid_argument(format!("snapshot message: {e}")))
}

#[tonic::async_trait]
impl RaftTransport for TransportService {
    async fn send(&self, request: Request<pb::MessageBatch>) -> Result<Response<pb::Ack>, Status> {
        let batch = request.into_inner();
        if !batch.from_addr.is_empty() {
            self.inbound
                .learn_address(batch.from_node, &batch.from_addr);
        }
        for gm in batch.messages {
            match Message::parse_from_bytes(&gm.message) {
                Ok(msg) if msg.get_msg_type() != MessageType::MsgSnapshot => {
                    self.inbound.deliver(gm.group_id, msg)
                }
                Ok(_) => {
                    tracing::warn!(
                        group = gm.group_id,
                        "snapshot message outside a snapshot stream dropped"
                    )
                }
                Err(e) => {
                    return Err(Status::invalid_argument(format!(
                        "undecodable raft message: {e}"
                    )));
                }
            }
        }
        Ok(Response::new(pb::Ack {}))
    }

    async fn snapshot_offset(
        &self,
        request: Request<pb::SnapshotProbe>,
    ) -> Result<Response<pb::SnapshotProbeReply>, Status> {
        let probe = request.into_inner();
        let (dir, _) = self
            .inbound
            .group_dir(probe.group_id)
            .ok_or_else(|| Status::not_found(format!("group {} not here", probe.group_id)))?;
        let spool = snapfile::spool_path(&dir, probe.index, probe.term);
        let offset = std::fs::metadata(&spool).map(|m| m.len()).unwrap_or(0);
        Ok(Response::new(pb::SnapshotProbeReply { offset }))
    }

    async fn send_snapshot(
        &self,
        request: Request<Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::Ack>, Status> {
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        let group = first.group_id;
        let msg = Message::parse_from_bytes(&first.message)
            .map_err(|e| Status::invalid_argument(format!("snapshot message: {e}")))?;
        if msg.get_msg_type() != MessageType::MsgSnapshot {
            return Err(Status::invalid_argument(
                "first chunk is not a snapshot message",
            ));
        }
        let token = token_of(&msg)?;
        let (dir, cap) = self
            .inbound
            .group_dir(group)
            .ok_or_else(|| Status::not_found(format!("group {group} not here")))?;
        if token.len > cap {
            return Err(Status::resource_exhausted(format!(
                "snapshot of {} bytes exceeds the cap of {cap}",
                token.len
            )));
        }
        if !first.from_addr.is_empty() {
            self.inbound
                .learn_address(first.from_node, &first.from_addr);
        }
        std::fs::create_dir_all(snapfile::spool_dir(&dir))
            .map_err(|e| Status::internal(format!("spool dir: {e}")))?;
        let spool = snapfile::spool_path(&dir, token.index, token.term);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spool)
            .map_err(|e| Status::internal(format!("open spool: {e}")))?;
        let mut written = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut chunk = Some(first);
        while let Some(c) = chunk.take() {
            if !c.data.is_empty() {
                if c.offset != written {
                    return Err(Status::failed_precondition(format!(
                        "chunk at {} does not continue the spool at {written}",
                        c.offset
                    )));
                }
                if written + c.data.len() as u64 > token.len {
                    return Err(Status::invalid_argument(
                        "snapshot stream longer than announced",
                    ));
                }
                file.write_all(&c.data)
                    .and_then(|_| file.sync_data())
                    .map_err(|e| Status::internal(format!("spool write: {e}")))?;
                written += c.data.len() as u64;
            }
            chunk = stream.message().await?;
        }
        if written != token.len {
            return Err(Status::data_loss(format!(
                "snapshot incomplete: {written} of {} bytes spooled",
                token.len
            )));
        }
        let (len, crc) =
            snapfile::checksum_file(&spool).map_err(|e| Status::internal(e.to_string()))?;
        if len != token.len || crc != token.crc {
            let _ = std::fs::remove_file(&spool);
            return Err(Status::data_loss(
                "snapshot file checksum mismatch; spool discarded",
            ));
        }
        let target = snapfile::snapshot_path(&dir, token.index, token.term);
        std::fs::rename(&spool, &target).map_err(|e| Status::internal(format!("install: {e}")))?;
        snapfile::fsync_dir(&snapfile::snap_dir(&dir))
            .map_err(|e| Status::internal(e.to_string()))?;
        self.inbound.deliver(group, msg);
        Ok(Response::new(pb::Ack {}))
    }
}
