//! The seam between the Redis front end and the data model.
//!
//! The front end resolves, arity-checks and authenticates every request and
//! handles connection-level commands itself; everything else reaches a
//! [`CommandExecutor`]. The executor never sees a connection-level command
//! (AUTH, HELLO, MULTI, SUBSCRIBE, CLIENT, ...) and may block (BLPOP...) by
//! simply not completing its future until it has an answer.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::args::Command;
use super::clients::ServerContext;
use super::pubsub::ScriptPublisher;
use super::reply::{Protocol, Reply};

/// What the executor may know about the calling connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The connection id (`CLIENT ID`), unique per server.
    pub id: u64,
    /// The peer address.
    pub peer_addr: SocketAddr,
    /// The local address the client connected to.
    pub local_addr: SocketAddr,
    /// The name set with `CLIENT SETNAME` / `HELLO ... SETNAME`.
    pub name: Option<Bytes>,
    /// The negotiated protocol: replies are encoded for it by the front end,
    /// but a command may choose a different shape for RESP3 (as Redis does).
    pub protocol: Protocol,
    /// The authenticated user (`default` when no password is configured).
    pub user: String,
}

/// An opaque version token of one key, captured at `WATCH` time. The
/// executor defines its meaning (for example the commit timestamp of the
/// key's newest version, or 0 for a missing key); the front end only stores
/// it and hands it back with `EXEC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WatchToken(pub u64);

/// A key watched by a connection, with the token captured by `WATCH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedKey {
    /// The watched key.
    pub key: Bytes,
    /// Its version token at `WATCH` time.
    pub token: WatchToken,
}

/// Executes data commands on behalf of the front end.
pub trait CommandExecutor: Send + Sync + 'static {
    /// Executes one ordinary command (never a connection-level one). Errors
    /// are replies (`Reply::Error`) worded as Redis words them.
    fn execute(&self, client: &ClientInfo, command: Command) -> impl Future<Output = Reply> + Send;

    /// Executes a MULTI/EXEC queue atomically after checking that every
    /// watched key still has the token captured at WATCH time.
    ///
    /// The reply is the EXEC reply: `Reply::Array` with one reply per queued
    /// command (in order; per-command runtime errors are error entries), or
    /// `Reply::NullArray` when a watched key changed (the queue is not run),
    /// or an error reply when the whole transaction failed.
    fn exec(
        &self,
        client: &ClientInfo,
        watched: Vec<WatchedKey>,
        queue: Vec<Command>,
    ) -> impl Future<Output = Reply> + Send;

    /// Captures the version token of `key` for WATCH.
    fn watch_token(&self, key: &[u8]) -> impl Future<Output = Result<WatchToken, Reply>> + Send;

    /// True when `command` may share one transaction with the pipelined
    /// commands around it (see [`CommandExecutor::execute_batch`]). Blocking
    /// and scripting commands, which manage their own transactions, answer
    /// false; so does any command of an executor that does not batch.
    fn can_batch(&self, _command: &Command) -> bool {
        false
    }

    /// Executes pipelined commands of one connection, in order, returning
    /// one reply per command. An executor may run them in a single
    /// transaction: that is a valid serialisation (every command takes
    /// effect at the batch's commit point, in order, and no reply leaves
    /// before the commit), and it turns N Raft round trips into one. Only
    /// commands for which [`CommandExecutor::can_batch`] is true are passed.
    fn execute_batch(
        &self,
        client: &ClientInfo,
        commands: Vec<Command>,
    ) -> impl Future<Output = Vec<Reply>> + Send {
        async move {
            let mut replies = Vec::with_capacity(commands.len());
            for command in commands {
                replies.push(self.execute(client, command).await);
            }
            replies
        }
    }

    /// Called once by each listener serving this executor, so that INFO
    /// can report the listener's clients. The executor should keep only a
    /// weak reference.
    fn attach_listener(&self, _context: &Arc<ServerContext>) {}

    /// Called once by each listener with its broker, so that `PUBLISH`
    /// inside scripts can reach subscribers. The first one attached wins.
    fn attach_publisher(&self, _publisher: Arc<dyn ScriptPublisher>) {}
}
