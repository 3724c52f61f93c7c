//! The Redis listener: accepts connections, applies admission rules
//! (protected mode without a password, `maxclients`) and runs each
//! connection on its own task until shutdown.
//!
//! Shutdown is a `watch` channel: when it turns `true` (or its sender is
//! dropped) the accept loop stops and every connection closes after its
//! current command; `serve` returns once all connection tasks have ended.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::clients::{ClientRegistry, ServerContext};
use super::config::RedisConfig;
use super::conn::serve_connection;
use super::executor::CommandExecutor;
use super::metrics::RedisMetrics;
use super::pubsub::PubSubBroker;
use super::session::Session;

/// The reply to a non-loopback client when no password protects the server.
pub const ERR_PROTECTED_MODE: &str = "DENIED Running in protected mode because no password is set for the default user. In this mode connections are only accepted from the loopback interface. Set a password (and connect with AUTH) or explicitly allow non-loopback clients without authentication.";

/// Errors that stop the listener before it serves.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The metrics could not be registered.
    #[error("registering redis metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Serves the Redis protocol on `listener` until `shutdown` turns true or
/// its sender is dropped.
pub async fn serve<E: CommandExecutor, B: PubSubBroker>(
    listener: TcpListener,
    config: RedisConfig,
    executor: Arc<E>,
    broker: Arc<B>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let metrics = RedisMetrics::new(config.registry.as_ref())?;
    let context = Arc::new(ServerContext {
        config,
        metrics,
        clients: ClientRegistry::default(),
    });
    executor.attach_listener(&context);
    executor.attach_publisher(broker.clone());
    let mut tasks = JoinSet::new();
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "redis listener ready");
    }
    loop {
        if *shutdown.borrow() {
            break;
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    admit(stream, peer, &context, &executor, &broker, &shutdown, &mut tasks);
                }
                Err(err) => {
                    // Typically EMFILE: back off instead of spinning.
                    warn!(error = %err, "redis accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

fn admit<E: CommandExecutor, B: PubSubBroker>(
    stream: TcpStream,
    peer: SocketAddr,
    context: &Arc<ServerContext>,
    executor: &Arc<E>,
    broker: &Arc<B>,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) {
    let _ = stream.set_nodelay(true);
    let config = &context.config;
    if config.password.is_none() && !config.allow_non_loopback && !is_loopback(peer.ip()) {
        context.metrics.disconnect("protected_mode");
        warn!(%peer, "refused non-loopback redis client: no password configured");
        tasks.spawn(refuse(stream, ERR_PROTECTED_MODE.to_string()));
        return;
    }
    let local = stream.local_addr().unwrap_or(peer);
    let handle =
        match context
            .clients
            .register(peer, local, "default".to_string(), config.max_clients)
        {
            Ok(handle) => handle,
            Err(err) => {
                context.metrics.disconnect("max_clients");
                warn!(%peer, "refused redis client: max number of clients reached");
                tasks.spawn(refuse(stream, err.to_string()));
                return;
            }
        };
    context.metrics.connected_clients.inc();
    let session = Session::new(
        Arc::clone(executor),
        Arc::clone(broker),
        Arc::clone(context),
        handle,
    );
    let context = Arc::clone(context);
    let shutdown = shutdown.clone();
    tasks.spawn(async move {
        serve_connection(stream, session, Arc::clone(&context), shutdown).await;
        context.metrics.connected_clients.dec();
    });
}

/// Loopback, including IPv4-mapped IPv6 loopback (`::ffff:127.0.0.1`).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

async fn refuse(mut stream: TcpStream, message: String) {
    let line = format!("-{message}\r\n");
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        stream.write_all(line.as_bytes()),
    )
    .await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("127.0.0.1".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_loopback("10.0.0.1".parse().unwrap()));
        assert!(!is_loopback("::ffff:10.0.0.1".parse().unwrap()));
    }
}
