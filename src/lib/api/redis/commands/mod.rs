//! The [`CommandExecutor`] of the Redis front end: parses each data
//! command's arguments and runs it against the Redis model
//! ([`crate::model::redis`]) in one optimistic transaction.
//!
//! Invariants: one command = one [`Txn`] (begin → logic → commit), retried
//! from scratch on a write conflict a bounded number of times; a MULTI/EXEC
//! queue, a Lua script and a run of pipelined plain data commands
//! ([`CommandExecutor::execute_batch`]) also run in exactly one transaction; command
//! logic is synchronous over the transaction, so it is reusable from Lua;
//! after every successful commit the keys the command wrote are signalled
//! to blocked clients ([`RedisExecutor::notify_key_written`]).

mod blocking;
mod combiner;
mod ctx;
mod cursors;
mod dispatch;
mod hashes;
mod hll;
mod keyspace;
mod lists;
mod lua;
mod lualib;
mod scripting;
mod server;
mod sets;
mod streams;
mod strings;
mod zsets;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::args::Command;
use super::clients::ServerContext;
use super::executor::{ClientInfo, CommandExecutor, WatchToken, WatchedKey};
use super::pubsub::ScriptPublisher;
use super::reply::{Protocol, Reply};
use crate::model::redis::Db;
use crate::txn::{ChainLink, KvBackend, Txn, TxnError};

pub use blocking::KeyWaiters;
pub use ctx::{CmdError, CmdResult, Ctx};
pub use cursors::CursorTable;
pub use scripting::ScriptCache;

/// How a combined write round relates to the round in flight before it.
pub(crate) struct RoundChain {
    /// The predecessor's writes, once it is stamped (first attempt only).
    pub after: Option<Arc<ChainLink>>,
    /// Told of each attempt's own writes once stamped.
    pub publish: Arc<dyn Fn(Arc<ChainLink>) + Send + Sync>,
}

/// How many times a command is re-run after a write conflict.
pub const MAX_CONFLICT_RETRIES: u32 = 16;

/// Executes Redis data commands over a [`KvBackend`].
pub struct RedisExecutor<B: KvBackend> {
    backend: Arc<B>,
    combiner: combiner::Combiner<B>,
    cursors: Mutex<CursorTable>,
    waiters: KeyWaiters,
    scripts: ScriptCache,
    started: Instant,
    /// The listeners serving this executor (for INFO clients).
    listeners: Mutex<Vec<Weak<ServerContext>>>,
    /// Clients currently inside a blocking command.
    blocked_clients: AtomicUsize,
    /// Where `PUBLISH` inside scripts goes (the first listener's broker).
    publisher: OnceLock<Arc<dyn ScriptPublisher>>,
}

/// Counts a client as blocked while it lives.
struct BlockedGuard<'a>(&'a AtomicUsize);

impl<'a> BlockedGuard<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        BlockedGuard(counter)
    }
}

impl Drop for BlockedGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What INFO's `clients` section reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCounts {
    /// Connections currently open on every listener of this executor.
    pub connected: usize,
    /// Clients waiting in BLPOP, BRPOP, BZPOPMIN or XREAD BLOCK.
    pub blocked: usize,
    /// The sum of the listeners' `maxclients`.
    pub max_clients: usize,
}

impl<B: KvBackend> RedisExecutor<B> {
    /// An executor over `backend` (shared: its write-combining task holds
    /// a weak reference to it).
    pub fn new(backend: Arc<B>) -> Arc<Self> {
        Arc::new_cyclic(|me| RedisExecutor {
            backend,
            combiner: combiner::Combiner::new(me.clone()),
            cursors: Mutex::new(CursorTable::new(cursors::DEFAULT_CAPACITY)),
            waiters: KeyWaiters::default(),
            scripts: ScriptCache::default(),
            started: Instant::now(),
            listeners: Mutex::new(Vec::new()),
            blocked_clients: AtomicUsize::new(0),
            publisher: OnceLock::new(),
        })
    }

    /// The client numbers INFO reports.
    pub fn client_counts(&self) -> ClientCounts {
        let mut listeners = self.listeners.lock();
        listeners.retain(|listener| listener.strong_count() > 0);
        let mut counts = ClientCounts {
            connected: 0,
            blocked: self.blocked_clients.load(Ordering::Relaxed),
            max_clients: 0,
        };
        for context in listeners.iter().filter_map(Weak::upgrade) {
            counts.connected += context.clients.len();
            counts.max_clients += context.config.max_clients;
        }
        if counts.max_clients == 0 {
            counts.max_clients = super::config::DEFAULT_MAX_CLIENTS;
        }
        counts
    }

    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// Wakes clients blocked on `key` (BLPOP, BRPOP, BZPOPMIN, XREAD BLOCK)
    /// so they re-check it. The executor calls this after its own commits;
    /// the node calls it when writes replicated from elsewhere apply.
    pub fn notify_key_written(&self, key: &[u8]) {
        self.waiters.notify(key);
    }

    /// Whether any blocked client waits on a key (so replicated writes need
    /// their keys worked out and notified at all).
    pub fn has_key_waiters(&self) -> bool {
        self.waiters.any()
    }

    /// One page of active expiry (see [`crate::model::redis::expire`]).
    pub async fn expire_page(
        &self,
        resume: Option<&[u8]>,
        budget: usize,
    ) -> Result<crate::model::redis::expire::ExpiryPage, crate::model::redis::ModelError> {
        crate::model::redis::expire::expire_page(&*self.backend, resume, budget).await
    }

    /// The broker `PUBLISH` inside scripts uses, once a listener attached one.
    pub(crate) fn publisher(&self) -> Option<&Arc<dyn ScriptPublisher>> {
        self.publisher.get()
    }

    /// The Lua scripts known to EVALSHA (filled by EVAL and SCRIPT LOAD).
    pub fn scripts(&self) -> &ScriptCache {
        &self.scripts
    }

    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Runs `body` in a transaction, retrying on conflict; signals the
    /// written keys after a successful commit.
    pub(crate) async fn run_txn<F>(&self, client: Option<&ClientInfo>, body: F) -> Reply
    where
        F: FnMut(&mut Ctx<'_, '_, '_, B>) -> Result<Reply, TxnError>,
    {
        let protocol = client.map_or(Protocol::Resp2, |c| c.protocol);
        self.run_txn_with_protocol(protocol, body).await
    }

    /// Runs `commands` in order in one transaction; one reply per command.
    pub(crate) async fn run_in_one_txn(
        &self,
        protocol: Protocol,
        commands: &[Command],
    ) -> Vec<Reply> {
        let count = commands.len();
        let reply = self
            .run_txn_with_protocol(protocol, |ctx| {
                let mut replies = Vec::with_capacity(count);
                for command in commands {
                    replies.push(dispatch::run(ctx, command)?);
                }
                Ok(Reply::Array(replies))
            })
            .await;
        match reply {
            Reply::Array(replies) if replies.len() == count => replies,
            // The transaction as a whole failed (unavailable, too many
            // conflicts): nothing was written, every command gets the error.
            failure => vec![failure; count],
        }
    }

    /// [`RedisExecutor::run_txn`] for replies shaped for `protocol`.
    pub(crate) async fn run_txn_with_protocol<F>(&self, protocol: Protocol, body: F) -> Reply
    where
        F: FnMut(&mut Ctx<'_, '_, '_, B>) -> Result<Reply, TxnError>,
    {
        self.run_chained_txn(protocol, None, body).await
    }

    /// [`RedisExecutor::run_txn_with_protocol`] for a write round of the
    /// combiner (`chain` given): the first attempt reads through the round
    /// in flight it is chained after, if any, and on a node that stamps
    /// commits every attempt is strict and publishes its writes once
    /// stamped, so the next round can chain after it. Retries start afresh.
    pub(crate) async fn run_chained_txn<F>(
        &self,
        protocol: Protocol,
        chain: Option<&RoundChain>,
        mut body: F,
    ) -> Reply
    where
        F: FnMut(&mut Ctx<'_, '_, '_, B>) -> Result<Reply, TxnError>,
    {
        let mut backoff = Duration::from_millis(1);
        for attempt in 0..=MAX_CONFLICT_RETRIES {
            let begun = match chain.and_then(|c| c.after.as_ref()) {
                Some(link) if attempt == 0 => Txn::chained(&*self.backend, link.clone()).await,
                _ => Txn::begin(&*self.backend).await,
            };
            let mut txn = match begun {
                Ok(txn) => txn,
                Err(err) => return txn_error_reply(&err),
            };
            let (result, written, published, abort) = {
                let mut ctx = Ctx::new(Db::new(&mut txn), self, protocol);
                let result = body(&mut ctx);
                (
                    result,
                    std::mem::take(&mut ctx.written),
                    std::mem::take(&mut ctx.published),
                    ctx.abort.take(),
                )
            };
            let reply = match result {
                Ok(reply) => reply,
                Err(err) => return txn_error_reply(&err),
            };
            if let Some(abort) = abort {
                // Dropping the transaction discards its writes.
                return abort;
            }
            let committed = match chain {
                Some(chain) if self.backend.stamps_locally() => {
                    txn.set_strict();
                    match txn.chain_seed() {
                        Some(seed) => {
                            let publish = chain.publish.clone();
                            txn.commit_observed(Box::new(move |ts| {
                                publish(Arc::new(seed.stamped(ts)));
                            }))
                            .await
                        }
                        None => txn.commit().await,
                    }
                }
                _ => txn.commit().await,
            };
            match committed {
                Ok(_) => {
                    for key in &written {
                        self.notify_key_written(key);
                    }
                    // Messages a script published leave only once its
                    // writes are durable, as a subscriber reading the data
                    // a message announces would expect.
                    if let Some(publisher) = self.publisher() {
                        for (channel, message) in published {
                            publisher.send(channel, message).await;
                        }
                    }
                    return reply;
                }
                Err(TxnError::Conflict { .. }) if attempt < MAX_CONFLICT_RETRIES => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(50));
                }
                Err(err) => return txn_error_reply(&err),
            }
        }
        Reply::error("ERR transaction conflict: too many retries")
    }
}

/// True for commands that may write: they go through the write combiner
/// (read-only commands run at once, in parallel).
fn writes(command: &Command) -> bool {
    let spec = command.subcommand.unwrap_or(command.spec);
    !spec.has_flag(super::command::flags::READONLY)
        && !command.spec.has_flag(super::command::flags::READONLY)
}

/// The reply for a transaction-level failure.
pub fn txn_error_reply(err: &TxnError) -> Reply {
    match err {
        TxnError::Unavailable(reason) => Reply::error(format!("TRYAGAIN {reason}")),
        // The leader's clock lease is being renewed: transient, like a
        // missing leader, so clients are told to retry.
        TxnError::Clock(err @ crate::clock::HlcError::CeilingExpired { .. }) => {
            Reply::error(format!("TRYAGAIN clock: {err}"))
        }
        TxnError::Conflict { .. } => Reply::error("ERR transaction conflict: too many retries"),
        other => Reply::error(format!("ERR {other}")),
    }
}

impl<B: KvBackend> CommandExecutor for RedisExecutor<B> {
    async fn execute(&self, client: &ClientInfo, command: Command) -> Reply {
        match command.name() {
            "BLPOP" | "BRPOP" | "BZPOPMIN" => {
                let _blocked = BlockedGuard::new(&self.blocked_clients);
                return blocking::run_blocking(self, client, &command).await;
            }
            "XREAD" => {
                let blocks = command
                    .args
                    .iter()
                    .any(|arg| arg.eq_ignore_ascii_case(b"BLOCK"));
                let _blocked = blocks.then(|| BlockedGuard::new(&self.blocked_clients));
                return blocking::run_xread(self, client, &command).await;
            }
            _ => {}
        }
        // Scripts keep their own transaction: a runaway script must not
        // hold up every other client's writes queued behind its round.
        if writes(&command) && self.can_batch(&command) {
            let mut replies = self.combiner.submit(client.protocol, vec![command]).await;
            return replies
                .pop()
                .unwrap_or_else(|| Reply::error("ERR write reply missing"));
        }
        self.run_txn(Some(client), |ctx| dispatch::run(ctx, &command))
            .await
    }

    async fn exec(
        &self,
        client: &ClientInfo,
        watched: Vec<WatchedKey>,
        queue: Vec<Command>,
    ) -> Reply {
        self.run_txn(Some(client), |ctx| {
            for watch in &watched {
                match ctx.db.meta(&watch.key) {
                    Ok(meta) => {
                        let token = meta.map_or(0, |m| m.commit_ts);
                        if token != watch.token.0 {
                            return Ok(Reply::NullArray);
                        }
                    }
                    Err(err) => return ctx::settle(Err(err.into())),
                }
            }
            ctx.in_multi = true;
            let mut replies = Vec::with_capacity(queue.len());
            for command in &queue {
                replies.push(dispatch::run(ctx, command)?);
            }
            Ok(Reply::Array(replies))
        })
        .await
    }

    fn can_batch(&self, command: &Command) -> bool {
        !matches!(
            command.name(),
            "BLPOP"
                | "BRPOP"
                | "BZPOPMIN"
                | "BZPOPMAX"
                | "BLMOVE"
                | "BRPOPLPUSH"
                | "XREAD"
                | "XREADGROUP"
                | "EVAL"
                | "EVALSHA"
                | "EVAL_RO"
                | "EVALSHA_RO"
                | "SCRIPT"
                | "FCALL"
                | "FCALL_RO"
                | "FUNCTION"
        )
    }

    async fn execute_batch(&self, client: &ClientInfo, commands: Vec<Command>) -> Vec<Reply> {
        if commands.iter().any(writes) {
            return self.combiner.submit(client.protocol, commands).await;
        }
        self.run_in_one_txn(client.protocol, &commands).await
    }

    fn attach_listener(&self, context: &Arc<ServerContext>) {
        self.combiner.observe_with(&context.metrics);
        let mut listeners = self.listeners.lock();
        listeners.retain(|listener| listener.strong_count() > 0);
        listeners.push(Arc::downgrade(context));
    }

    fn attach_publisher(&self, publisher: Arc<dyn ScriptPublisher>) {
        let _ = self.publisher.set(publisher);
    }

    async fn watch_token(&self, key: &[u8]) -> Result<WatchToken, Reply> {
        let mut txn = Txn::begin(&*self.backend)
            .await
            .map_err(|err| txn_error_reply(&err))?;
        let meta = Db::new(&mut txn)
            .meta(key)
            .map_err(|err| ctx::settle(Err(err.into())).unwrap_or_else(|e| txn_error_reply(&e)))?;
        Ok(WatchToken(meta.map_or(0, |m| m.commit_ts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::HlcError;

    #[test]
    fn transient_failures_ask_the_client_to_try_again() {
        let lease = TxnError::Clock(HlcError::CeilingExpired { ceiling_ms: 7 });
        assert_eq!(
            txn_error_reply(&lease).error_code(),
            Some("TRYAGAIN"),
            "{:?}",
            txn_error_reply(&lease)
        );
        let leader = TxnError::Unavailable("no leader".into());
        assert_eq!(txn_error_reply(&leader).error_code(), Some("TRYAGAIN"));
        let overflow = TxnError::Clock(HlcError::Overflow);
        assert_eq!(txn_error_reply(&overflow).error_code(), Some("ERR"));
    }
}
