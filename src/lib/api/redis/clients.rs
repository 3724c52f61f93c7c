//! The server-wide table of connected clients (`CLIENT LIST`, `CLIENT
//! KILL`, `maxclients`) and the context every connection shares.
//!
//! Each connection registers a [`ClientHandle`] on accept and removes it on
//! close; the handle carries what other connections may read about it and
//! a kill switch they may flip. Ids are unique for the server's lifetime.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::config::RedisConfig;
use super::metrics::RedisMetrics;

/// What `CLIENT LIST` shows of a connection, updated as it runs.
#[derive(Debug, Clone)]
pub struct ClientState {
    /// `CLIENT SETNAME`.
    pub name: Option<Bytes>,
    /// `CLIENT SETINFO LIB-NAME`.
    pub lib_name: Option<Bytes>,
    /// `CLIENT SETINFO LIB-VER`.
    pub lib_ver: Option<Bytes>,
    /// Last command, lower case (`client|list`).
    pub last_command: String,
    /// When the last command arrived.
    pub last_interaction: Instant,
    /// Channel subscriptions.
    pub subscriptions: usize,
    /// Pattern subscriptions.
    pub pattern_subscriptions: usize,
    /// Queued MULTI commands, or -1 outside MULTI.
    pub multi: i64,
    /// 2 or 3.
    pub protocol: i64,
    /// Authenticated user.
    pub user: String,
}

/// One connected client as the registry sees it.
#[derive(Debug)]
pub struct ClientHandle {
    /// `CLIENT ID`.
    pub id: u64,
    /// Peer address.
    pub peer_addr: SocketAddr,
    /// Local address.
    pub local_addr: SocketAddr,
    /// When the connection was accepted.
    pub created: Instant,
    /// Mutable details.
    pub state: Mutex<ClientState>,
    killed: AtomicBool,
    kill_signal: Notify,
}

impl ClientHandle {
    /// Asks the connection to close.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.kill_signal.notify_one();
    }

    /// Whether the connection was asked to close.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Completes once the connection has been asked to close.
    pub async fn killed(&self) {
        while !self.is_killed() {
            self.kill_signal.notified().await;
        }
    }

    /// The `CLIENT LIST` / `CLIENT INFO` line (without the newline).
    pub fn describe(&self) -> String {
        let state = self.state.lock().clone();
        let now = Instant::now();
        let flags = if state.subscriptions + state.pattern_subscriptions > 0 {
            "P"
        } else if state.multi >= 0 {
            "x"
        } else {
            "N"
        };
        let lossy = |value: &Option<Bytes>| {
            value
                .as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        format!(
            "id={} addr={} laddr={} name={} age={} idle={} flags={} db=0 sub={} psub={} multi={} cmd={} user={} lib-name={} lib-ver={} resp={}",
            self.id,
            self.peer_addr,
            self.local_addr,
            lossy(&state.name),
            now.duration_since(self.created).as_secs(),
            now.duration_since(state.last_interaction).as_secs(),
            flags,
            state.subscriptions,
            state.pattern_subscriptions,
            state.multi,
            if state.last_command.is_empty() {
                "NULL"
            } else {
                &state.last_command
            },
            state.user,
            lossy(&state.lib_name),
            lossy(&state.lib_ver),
            state.protocol,
        )
    }
}

/// Why a connection could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// `maxclients` reached.
    #[error("ERR max number of clients reached")]
    MaxClients,
}

/// All connected clients.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    next_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
}

impl ClientRegistry {
    /// Registers a new connection unless `max_clients` are connected.
    pub fn register(
        &self,
        peer_addr: SocketAddr,
        local_addr: SocketAddr,
        user: String,
        max_clients: usize,
    ) -> Result<Arc<ClientHandle>, RegisterError> {
        let mut clients = self.clients.lock();
        if clients.len() >= max_clients {
            return Err(RegisterError::MaxClients);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let handle = Arc::new(ClientHandle {
            id,
            peer_addr,
            local_addr,
            created: now,
            state: Mutex::new(ClientState {
                name: None,
                lib_name: None,
                lib_ver: None,
                last_command: String::new(),
                last_interaction: now,
                subscriptions: 0,
                pattern_subscriptions: 0,
                multi: -1,
                protocol: 2,
                user,
            }),
            killed: AtomicBool::new(false),
            kill_signal: Notify::new(),
        });
        clients.insert(id, Arc::clone(&handle));
        Ok(handle)
    }

    /// Removes a closed connection.
    pub fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    /// Every connected client, by id.
    pub fn snapshot(&self) -> Vec<Arc<ClientHandle>> {
        self.clients.lock().values().cloned().collect()
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.clients.lock().len()
    }

    /// Whether no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// State shared by every connection of one listener.
#[derive(Debug)]
pub struct ServerContext {
    /// The listener's settings.
    pub config: RedisConfig,
    /// Counters.
    pub metrics: RedisMetrics,
    /// Connected clients.
    pub clients: ClientRegistry,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_enforces_max_clients_and_kills() {
        let registry = ClientRegistry::default();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let first = registry.register(addr, addr, "default".into(), 2).unwrap();
        let second = registry.register(addr, addr, "default".into(), 2).unwrap();
        assert_ne!(first.id, second.id);
        assert_eq!(
            registry
                .register(addr, addr, "default".into(), 2)
                .unwrap_err(),
            RegisterError::MaxClients
        );
        registry.unregister(first.id);
        assert_eq!(registry.len(), 1);
        assert!(
            second
                .describe()
                .starts_with(&format!("id={} addr=127.0.0.1:1 ", second.id))
        );
        assert!(!second.is_killed());
        second.kill();
        assert!(second.is_killed());
    }
}
