//! Node-to-node and admin gRPC: the `Admin` service (status, membership,
//! snapshots, the small KV API, and the internal read-timestamp / commit /
//! publish calls followers make to the leader). The Raft transport service
//! itself belongs to the Raft layer; both share one listener and one
//! cluster-token check.

/// Generated protobuf and tonic types of `proto/admin.proto`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("elastickv.admin");
}
