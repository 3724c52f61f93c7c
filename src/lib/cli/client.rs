//! The operator client subcommands: `status`, `kv`, `cluster`, `snapshot
//! create`. Each makes one admin gRPC call to `--endpoint`.

use std::io::Write;

use anyhow::Context;
use tonic::transport::{Channel, Endpoint};

use super::args::{ClusterOp, ConnArgs, KvOp, OutputFormat};
use super::exit::{CliError, ExitCode};
use crate::api::grpc::pb;
use crate::api::grpc::pb::admin_client::AdminClient;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}

async fn connect(conn: &ConnArgs) -> anyhow::Result<AdminClient<Channel>> {
    let uri = if conn.endpoint.starts_with("http") {
        conn.endpoint.clone()
    } else {
        format!("http://{}", conn.endpoint)
    };
    let channel = Endpoint::from_shared(uri)
        .map_err(|e| CliError::Usage(format!("bad --endpoint {}: {e}", conn.endpoint)))?
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(std::time::Duration::from_secs(30))
        .connect()
        .await
        .map_err(|e| CliError::Unavailable(format!("cannot reach {}: {e}", conn.endpoint)))?;
    Ok(AdminClient::new(channel).max_decoding_message_size(64 << 20))
}

fn request<T>(conn: &ConnArgs, msg: T) -> anyhow::Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(msg);
    crate::raft::auth::attach_token(&mut req, conn.cluster_token.as_deref())
        .map_err(|e| CliError::Usage(format!("bad --cluster-token: {}", e.message())))?;
    Ok(req)
}

fn call_err(endpoint: &str) -> impl FnOnce(tonic::Status) -> anyhow::Error + '_ {
    move |status| {
        let msg = format!("{endpoint}: {}", status.message());
        match status.code() {
            tonic::Code::Unavailable | tonic::Code::Unauthenticated => {
                CliError::Unavailable(msg).into()
            }
            tonic::Code::InvalidArgument => CliError::Usage(msg).into(),
            _ => anyhow::anyhow!(msg),
        }
    }
}

pub fn status(conn: &ConnArgs, output: OutputFormat) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = connect(conn).await?;
        let reply = client
            .status(request(conn, pb::StatusRequest {})?)
            .await
            .map_err(call_err(&conn.endpoint))?
            .into_inner();
        let doc: serde_json::Value =
            serde_json::from_str(&reply.json).context("node sent malformed status JSON")?;
        match output {
            OutputFormat::Json => println!("{doc}"),
            OutputFormat::Text => print_status(&doc),
        }
        Ok(ExitCode::Ok)
    })
}

fn print_status(doc: &serde_json::Value) {
    println!("node {}", doc["node_id"]);
    let empty = Vec::new();
    for g in doc["groups"].as_array().unwrap_or(&empty) {
        println!(
            "group {}: {} term {} leader {} commit {} applied {} last {} snapshot {} lease {}",
            g["id"],
            g["role"].as_str().unwrap_or("?"),
            g["term"],
            g["leader"],
            g["commit_index"],
            g["applied_index"],
            g["last_index"],
            g["snapshot_index"],
            if g["lease_valid"].as_bool().unwrap_or(false) {
                "valid"
            } else {
                "-"
            }
        );
        if let Some(halted) = g["halted"].as_str() {
            println!("  HALTED: {halted}");
        }
        for p in g["peers"].as_array().unwrap_or(&empty) {
            println!(
                "  peer {} {} {}{}",
                p["id"],
                p["role"].as_str().unwrap_or("?"),
                p["address"].as_str().unwrap_or("?"),
                p["match_index"]
                    .as_u64()
                    .map(|m| format!(" match {m}"))
                    .unwrap_or_default()
            );
        }
    }
}

pub fn kv(conn: &ConnArgs, op: &KvOp) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = connect(conn).await?;
        let err = call_err(&conn.endpoint);
        match op {
            KvOp::Get { key } => {
                let reply = client
                    .kv_get(request(
                        conn,
                        pb::KvGetRequest {
                            group: conn.group,
                            key: key.as_bytes().to_vec(),
                        },
                    )?)
                    .await
                    .map_err(err)?
                    .into_inner();
                if !reply.found {
                    eprintln!("elastickv: key {key:?} not found");
                    return Ok(ExitCode::Failure);
                }
                let mut out = std::io::stdout().lock();
                out.write_all(&reply.value)?;
                out.write_all(b"\n")?;
            }
            KvOp::Put { key, value, ttl_ms } => {
                client
                    .kv_put(request(
                        conn,
                        pb::KvPutRequest {
                            group: conn.group,
                            key: key.as_bytes().to_vec(),
                            value: value.as_bytes().to_vec(),
                            ttl_ms: *ttl_ms,
                        },
                    )?)
                    .await
                    .map_err(err)?;
            }
            KvOp::Delete { key } => {
                client
                    .kv_delete(request(
                        conn,
                        pb::KvDeleteRequest {
                            group: conn.group,
                            key: key.as_bytes().to_vec(),
                        },
                    )?)
                    .await
                    .map_err(err)?;
            }
            KvOp::Scan {
                start,
                end,
                limit,
                reverse,
            } => {
                let reply = client
                    .kv_scan(request(
                        conn,
                        pb::KvScanRequest {
                            group: conn.group,
                            start: start.as_bytes().to_vec(),
                            end: end.as_ref().map(|e| e.as_bytes().to_vec()),
                            limit: *limit,
                            reverse: *reverse,
                        },
                    )?)
                    .await
                    .map_err(err)?
                    .into_inner();
                let mut out = std::io::stdout().lock();
                for pair in reply.pairs {
                    out.write_all(&pair.key)?;
                    out.write_all(b"\t")?;
                    out.write_all(&pair.value)?;
                    out.write_all(b"\n")?;
                }
            }
        }
        Ok(ExitCode::Ok)
    })
}

pub fn cluster(conn: &ConnArgs, op: &ClusterOp) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = connect(conn).await?;
        let err = call_err(&conn.endpoint);
        let member = |node_id: u64, address: String, min_match: u64| pb::MemberRequest {
            group: conn.group,
            node_id,
            address,
            min_match,
        };
        let reply = match op {
            ClusterOp::AddLearner { node_id, address } => client
                .add_learner(request(conn, member(*node_id, address.clone(), 0))?)
                .await
                .map_err(err)?,
            ClusterOp::Promote { node_id, min_match } => client
                .promote(request(conn, member(*node_id, String::new(), *min_match))?)
                .await
                .map_err(err)?,
            ClusterOp::Remove { node_id } => client
                .remove_node(request(conn, member(*node_id, String::new(), 0))?)
                .await
                .map_err(err)?,
            ClusterOp::TransferLeader { node_id } => client
                .transfer_leader(request(conn, member(*node_id, String::new(), 0))?)
                .await
                .map_err(err)?,
        }
        .into_inner();
        if reply.index > 0 {
            println!("applied at index {}", reply.index);
        }
        Ok(ExitCode::Ok)
    })
}

pub fn snapshot_create(conn: &ConnArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = connect(conn).await?;
        let reply = client
            .snapshot_create(request(
                conn,
                pb::SnapshotCreateRequest { group: conn.group },
            )?)
            .await
            .map_err(call_err(&conn.endpoint))?
            .into_inner();
        println!("{}", reply.path);
        Ok(ExitCode::Ok)
    })
}
