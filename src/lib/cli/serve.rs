//! `elastickv serve`: build the configuration, start the node, run until
//! SIGTERM or Ctrl-C, shut down in order.

use anyhow::Context;

use super::args::ServeArgs;
use super::exit::{CliError, ExitCode};
use crate::server::restore::{RestoreError, RestoreErrorKind};
use crate::server::{Node, NodeError, ServeConfig};

fn build_config(args: &ServeArgs) -> anyhow::Result<ServeConfig> {
    let mut cfg = match &args.config {
        Some(path) => ServeConfig::from_toml_file(path)?,
        None => ServeConfig::default(),
    };
    if let Some(v) = &args.data_dir {
        cfg.data_dir = v.clone();
    }
    if let Some(v) = args.node_id {
        cfg.node_id = v;
    }
    if let Some(v) = &args.listen {
        cfg.listen = v.clone();
    }
    if let Some(v) = &args.advertise {
        cfg.advertise = Some(v.clone());
    }
    if let Some(v) = &args.peers {
        cfg.peers = ServeConfig::parse_peers(v)?;
    }
    if args.join {
        cfg.join = true;
    }
    if let Some(v) = &args.metrics {
        cfg.metrics = v.clone();
    }
    if let Some(v) = &args.redis {
        cfg.redis = Some(v.clone());
    }
    if let Some(v) = &args.redis_password {
        cfg.redis_password = Some(v.clone());
    }
    if let Some(v) = &args.cluster_token {
        cfg.cluster_token = Some(v.clone());
    }
    if let Some(v) = args.raft_tick_ms {
        cfg.raft_tick_ms = v;
    }
    if let Some(v) = args.raft_heartbeat_ticks {
        cfg.raft_heartbeat_ticks = v;
    }
    if let Some(v) = args.raft_election_ticks {
        cfg.raft_election_ticks = v;
    }
    if let Some(v) = args.snapshot_every {
        cfg.snapshot_every = v;
    }
    if let Some(v) = &args.restore_from {
        cfg.restore_from = Some(v.clone());
    }
    cfg.validate().map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(cfg)
}

pub fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let cfg = build_config(args)?;
    super::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("elastickv")
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async move {
        let node = match Node::start(cfg.clone()).await {
            Ok(node) => node,
            Err(e @ (NodeError::PeersMismatch { .. } | NodeError::WrongNode { .. })) => {
                return Err(CliError::Usage(e.to_string()).into());
            }
            Err(NodeError::Restore(e)) => return Err(restore_error(e)),
            Err(e) => return Err(anyhow::Error::new(e).context("start the node")),
        };
        eprintln!(
            "elastickv: node {} serving gRPC on {} (data dir {})",
            cfg.node_id,
            node.grpc_addr(),
            cfg.data_dir.display()
        );
        if let Some(addr) = node.redis_addr() {
            eprintln!("elastickv: Redis on {addr}");
        }
        if let Some(addr) = node.metrics_addr() {
            eprintln!("elastickv: metrics on http://{addr}/metrics");
        }
        wait_for_signal().await;
        eprintln!("elastickv: shutting down");
        node.shutdown().await;
        Ok(ExitCode::Ok)
    })
}

/// `--restore-from` failures: a used data dir is an existing output (4), a
/// damaged or foreign file is corrupt input (3), an unreadable one I/O (5).
fn restore_error(err: RestoreError) -> anyhow::Error {
    let message = format!("--restore-from: {err}");
    match err.kind() {
        RestoreErrorKind::DataDirNotEmpty => CliError::OutputExists(message).into(),
        RestoreErrorKind::CorruptInput => CliError::CorruptInput(message).into(),
        RestoreErrorKind::Io => anyhow::Error::new(std::io::Error::other(message)),
        RestoreErrorKind::Failure => anyhow::Error::new(err).context("--restore-from"),
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
