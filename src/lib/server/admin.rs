//! The `Admin` gRPC service: status, membership, snapshots, the small KV
//! API of `elastickv kv`, and the internal leader calls (read timestamps,
//! commits, pub/sub fan-in) followers make.
//!
//! KV API keys live in their own route namespace `k` (`k ‖ key`), so the
//! operator's scratch data never mixes with a service's rows.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde_json::json;
use tonic::{Request, Response, Status};

use super::backend::ReplicatedBackend;
use crate::api::grpc::pb;
use crate::clock::compose;
use crate::fsm::{ApplyOutcome, Command};
use crate::raft::RaftError;
use crate::storage::{
    Direction, Mutation, ScanRequest, decode_lock_key, route_bound, route_prefix,
};
use crate::txn::{KvBackend, TxnError};

/// Route-key namespace of the operator KV API.
pub const NS_KV: u8 = b'k';

/// Delivers a published message to this node's subscribers.
pub type PublishSink = Arc<dyn Fn(&[u8], &[u8]) -> u64 + Send + Sync>;

/// The groups a node serves, filled in once they have started (the service
/// is registered with the gRPC server before that).
pub type GroupTable = Arc<OnceLock<BTreeMap<u64, Arc<ReplicatedBackend>>>>;

pub struct AdminService {
    node_id: u64,
    groups: GroupTable,
    publish: Arc<OnceLock<PublishSink>>,
}

impl AdminService {
    pub fn new(node_id: u64, groups: GroupTable, publish: Arc<OnceLock<PublishSink>>) -> Self {
        Self {
            node_id,
            groups,
            publish,
        }
    }

    fn group(&self, id: u64) -> Result<&Arc<ReplicatedBackend>, Status> {
        let id = if id == 0 { 1 } else { id };
        self.groups
            .get()
            .ok_or_else(|| Status::unavailable("node is starting"))?
            .get(&id)
            .ok_or_else(|| Status::not_found(format!("group {id} is not served by this node")))
    }

    /// The status document of `elastickv status --output json`.
    pub fn status_json(&self) -> serde_json::Value {
        let empty = BTreeMap::new();
        let groups: Vec<serde_json::Value> = self
            .groups
            .get()
            .unwrap_or(&empty)
            .values()
            .map(|backend| {
                let status = backend.handle().status();
                let mut value = serde_json::to_value(&status).unwrap_or_else(|_| json!({}));
                if let Some(obj) = value.as_object_mut() {
                    obj.insert("id".into(), json!(status.group_id));
                    obj.insert("restart_detail".into(), json!(status.restart_path.clone()));
                    obj.insert(
                        "restart_path".into(),
                        json!(restart_label(&status.restart_path)),
                    );
                    obj.insert(
                        "last_commit_ts".into(),
                        json!(backend.group().last_commit_ts()),
                    );
                }
                value
            })
            .collect();
        json!({ "node_id": self.node_id, "groups": groups })
    }
}

/// Short, stable label of a restart path description.
fn restart_label(detail: &str) -> &'static str {
    if detail.starts_with("skipped") {
        "skipped"
    } else if detail.starts_with("full") || detail.contains("restored") {
        "full_restore"
    } else if detail.starts_with("replay") {
        "replay"
    } else {
        "fresh"
    }
}

fn kv_key(key: &[u8]) -> Vec<u8> {
    let mut route = Vec::with_capacity(key.len() + 1);
    route.push(NS_KV);
    route.extend_from_slice(key);
    route_prefix(&route)
}

fn txn_status(e: TxnError) -> Status {
    match e {
        TxnError::Unavailable(m) => Status::unavailable(m),
        TxnError::Conflict { .. } => Status::aborted(e.to_string()),
        TxnError::Refused { .. } => Status::failed_precondition(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}

fn raft_status(e: RaftError) -> Status {
    match e {
        RaftError::NotLeader { .. } => Status::failed_precondition(e.to_string()),
        RaftError::Timeout | RaftError::LeadershipLost => Status::unavailable(e.to_string()),
        RaftError::Unauthenticated(_) => Status::unauthenticated(e.to_string()),
        RaftError::NotCaughtUp { .. } | RaftError::MembershipChangePending => {
            Status::failed_precondition(e.to_string())
        }
        other => Status::internal(other.to_string()),
    }
}

fn outcome_result(outcome: ApplyOutcome) -> Result<u64, Status> {
    match outcome {
        ApplyOutcome::Committed { commit_ts } => Ok(commit_ts),
        ApplyOutcome::Conflict { key } => Err(Status::aborted(format!(
            "write conflict on {}",
            hex::encode(key)
        ))),
        ApplyOutcome::Refused { reason, .. } => Err(Status::failed_precondition(reason)),
    }
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    async fn status(
        &self,
        _req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        Ok(Response::new(pb::StatusReply {
            json: self.status_json().to_string(),
        }))
    }

    async fn kv_get(
        &self,
        req: Request<pb::KvGetRequest>,
    ) -> Result<Response<pb::KvGetReply>, Status> {
        let req = req.into_inner();
        let backend = self.group(req.group)?;
        let ts = backend.read_ts().await.map_err(txn_status)?;
        let found = backend.get(&kv_key(&req.key), ts).map_err(txn_status)?;
        Ok(Response::new(match found {
            Some(v) => pb::KvGetReply {
                found: true,
                value: v.value,
                commit_ts: v.commit_ts,
            },
            None => pb::KvGetReply::default(),
        }))
    }

    async fn kv_put(
        &self,
        req: Request<pb::KvPutRequest>,
    ) -> Result<Response<pb::KvWriteReply>, Status> {
        let req = req.into_inner();
        let backend = self.group(req.group)?;
        let expire_at = if req.ttl_ms == 0 {
            0
        } else {
            let now_ms = crate::clock::physical_ms(backend.group().hlc().wall_now());
            compose(now_ms.saturating_add(req.ttl_ms), 0)
        };
        let command = Command::Raw {
            commit_ts: 1,
            mutations: vec![Mutation::Put {
                key: kv_key(&req.key),
                value: req.value,
                expire_at,
            }],
        };
        let outcome = backend.commit(command).await.map_err(txn_status)?;
        let commit_ts = outcome_result(outcome)?;
        Ok(Response::new(pb::KvWriteReply {
            commit_ts,
            index: backend.group().applied_index(),
        }))
    }

    async fn kv_delete(
        &self,
        req: Request<pb::KvDeleteRequest>,
    ) -> Result<Response<pb::KvWriteReply>, Status> {
        let req = req.into_inner();
        let backend = self.group(req.group)?;
        let command = Command::Raw {
            commit_ts: 1,
            mutations: vec![Mutation::Delete {
                key: kv_key(&req.key),
            }],
        };
        let outcome = backend.commit(command).await.map_err(txn_status)?;
        let commit_ts = outcome_result(outcome)?;
        Ok(Response::new(pb::KvWriteReply {
            commit_ts,
            index: backend.group().applied_index(),
        }))
    }

    async fn kv_scan(
        &self,
        req: Request<pb::KvScanRequest>,
    ) -> Result<Response<pb::KvScanReply>, Status> {
        let req = req.into_inner();
        let backend = self.group(req.group)?;
        let ts = backend.read_ts().await.map_err(txn_status)?;
        let mut start_route = vec![NS_KV];
        start_route.extend_from_slice(&req.start);
        let end_route = match &req.end {
            Some(end) => {
                let mut r = vec![NS_KV];
                r.extend_from_slice(end);
                r
            }
            None => vec![NS_KV + 1],
        };
        let limit = if req.limit == 0 {
            1000
        } else {
            req.limit as usize
        };
        let page = backend
            .scan(&ScanRequest {
                start: route_bound(&start_route),
                end: Some(route_bound(&end_route)),
                read_ts: ts,
                limit,
                direction: if req.reverse {
                    Direction::Reverse
                } else {
                    Direction::Forward
                },
                resume: None,
                keys_only: false,
            })
            .map_err(txn_status)?;
        let mut pairs = Vec::with_capacity(page.rows.len());
        for row in page.rows {
            let route = decode_lock_key(&row.key)
                .map_err(|e| Status::internal(format!("undecodable kv key: {e}")))?;
            pairs.push(pb::KvPair {
                key: route.get(1..).unwrap_or_default().to_vec(),
                value: row.value,
            });
        }
        Ok(Response::new(pb::KvScanReply { pairs }))
    }

    async fn add_learner(
        &self,
        req: Request<pb::MemberRequest>,
    ) -> Result<Response<pb::MemberReply>, Status> {
        let req = req.into_inner();
        if req.address.is_empty() {
            return Err(Status::invalid_argument(
                "add-learner needs the new node's address",
            ));
        }
        let backend = self.group(req.group)?;
        let index = backend
            .handle()
            .add_learner(req.node_id, req.address)
            .await
            .map_err(raft_status)?;
        Ok(Response::new(pb::MemberReply { index }))
    }

    async fn promote(
        &self,
        req: Request<pb::MemberRequest>,
    ) -> Result<Response<pb::MemberReply>, Status> {
        let req = req.into_inner();
        let backend = self.group(req.group)?;
        let min_match = if req.min_match == 0 {
            backend.handle().status().commit_index
        } else {
            req.min_match
        };
        let index = backend
            .handle()
            .promote(req.node_id, min_match)
            .await
            .map_err(raft_status)?;
        Ok(Response::new(pb::MemberReply { index }))
    }

    async fn remove_node(
        &self,
        req: Request<pb::MemberRequest>,
    ) -> Result<Response<pb::MemberReply>, Status> {
        let req = req.into_inner();
        let backend = self.group(req.group)?;
        let index = backend
            .handle()
            .remove(req.node_id)
            .await
            .map_err(raft_status)?;
        Ok(Response::new(pb::MemberReply { index }))
    }

    async fn transfer_leader(
        &self,
        req: Request<pb::MemberRequest>,
    ) -> Result<Response<pb::MemberReply>, Status> {
        let req = req.into_inner();
        let backend = self.group(req.group)?;
        backend
            .handle()
            .transfer_leader(req.node_id)
            .await
            .map_err(raft_status)?;
        Ok(Response::new(pb::MemberReply { index: 0 }))
    }

    async fn snapshot_create(
        &self,
        req: Request<pb::SnapshotCreateRequest>,
    ) -> Result<Response<pb::SnapshotCreateReply>, Status> {
        let req = req.into_inner();
        let backend = self.group(req.group)?;
        let path = backend
            .handle()
            .create_snapshot()
            .await
            .map_err(raft_status)?;
        Ok(Response::new(pb::SnapshotCreateReply {
            path: path.display().to_string(),
        }))
    }

    async fn read_ts(
        &self,
        req: Request<pb::ReadTsRequest>,
    ) -> Result<Response<pb::ReadTsReply>, Status> {
        let req = req.into_inner();
        let backend = self.group(req.group)?;
        if !backend.handle().leadership().borrow().is_leader {
            return Err(Status::failed_precondition("not leader"));
        }
        let (ts, applied_index) = backend.leader_read_ts().await.map_err(txn_status)?;
        Ok(Response::new(pb::ReadTsReply { ts, applied_index }))
    }

    async fn commit(
        &self,
        req: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitReply>, Status> {
        let req = req.into_inner();
        let backend = self.group(req.group)?;
        if !backend.handle().leadership().borrow().is_leader {
            return Err(Status::failed_precondition("not leader"));
        }
        let command = Command::decode(&req.command)
            .map_err(|e| Status::invalid_argument(format!("bad command: {e}")))?;
        if !matches!(command, Command::Raw { .. } | Command::Txn { .. }) {
            return Err(Status::invalid_argument(
                "only data commands may be forwarded",
            ));
        }
        let (outcome, index) = backend.leader_commit(command).await.map_err(txn_status)?;
        Ok(Response::new(pb::CommitReply {
            outcome: outcome.encode(),
            index,
        }))
    }

    async fn publish(
        &self,
        req: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishReply>, Status> {
        let req = req.into_inner();
        let receivers = match self.publish.get() {
            Some(sink) => sink(&req.channel, &req.message),
            None => 0,
        };
        Ok(Response::new(pb::PublishReply { receivers }))
    }
}
