//! Blocking pops (BLPOP, BRPOP, BZPOPMIN): try, and if every key is empty
//! wait for a write to one of them, then try again, until the timeout.
//!
//! Invariants: a waiter registers its interest *before* each attempt, so a
//! write committed between the attempt and the wait still wakes it (no lost
//! wake-up); every attempt is an ordinary transaction, so two clients woken
//! by one push never both get the element. Wake-ups are broadcast to all
//! waiters of a key (no FIFO order among them).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::RedisExecutor;
use super::ctx::{Ctx, settle};
use crate::api::redis::args::{Command, parse_timeout_secs};
use crate::api::redis::executor::ClientInfo;
use crate::api::redis::reply::Reply;
use crate::model::redis::End;
use crate::txn::{KvBackend, TxnError};

/// Per-key wake-up signals.
#[derive(Default)]
pub struct KeyWaiters {
    keys: Mutex<HashMap<Vec<u8>, Weak<Notify>>>,
}

impl KeyWaiters {
    /// The signal of `key`, created on first interest.
    pub fn signal(&self, key: &[u8]) -> Arc<Notify> {
        let mut keys = self.keys.lock();
        if keys.len() > 1024 {
            keys.retain(|_, weak| weak.strong_count() > 0);
        }
        if let Some(existing) = keys.get(key).and_then(Weak::upgrade) {
            return existing;
        }
        let fresh = Arc::new(Notify::new());
        keys.insert(key.to_vec(), Arc::downgrade(&fresh));
        fresh
    }

    /// Whether any client waits on some key now. Checked under the lock
    /// that registration takes: a waiter registered after a `false` answer
    /// reads after the write that prompted the question.
    pub fn any(&self) -> bool {
        let mut keys = self.keys.lock();
        keys.retain(|_, weak| weak.strong_count() > 0);
        !keys.is_empty()
    }

    /// Wakes every waiter of `key`.
    pub fn notify(&self, key: &[u8]) {
        let signal = {
            let mut keys = self.keys.lock();
            match keys.get(key).map(Weak::upgrade) {
                Some(Some(signal)) => Some(signal),
                Some(None) => {
                    keys.remove(key);
                    None
                }
                None => None,
            }
        };
        if let Some(signal) = signal {
            signal.notify_waiters();
        }
    }
}

/// One non-blocking attempt: `Reply::NullArray` when every key is empty.
pub fn attempt<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> Result<Reply, TxnError> {
    let keys = &cmd.args[..cmd.args.len() - 1];
    let result = match cmd.name() {
        "BLPOP" => super::lists::pop_first(ctx, keys, End::Left),
        "BRPOP" => super::lists::pop_first(ctx, keys, End::Right),
        _ => super::zsets::pop_first_min(ctx, keys),
    };
    match result {
        Ok(Some(reply)) => {
            ctx.written.extend(keys.iter().map(|k| k.to_vec()));
            Ok(reply)
        }
        Ok(None) => Ok(Reply::NullArray),
        Err(err) => settle(Err(err)),
    }
}

/// Runs a blocking command to completion.
pub async fn run_blocking<B: KvBackend>(
    exec: &RedisExecutor<B>,
    client: &ClientInfo,
    cmd: &Command,
) -> Reply {
    let Some(timeout_arg) = cmd.args.last() else {
        return Reply::NullArray;
    };
    let timeout = match parse_timeout_secs(timeout_arg) {
        Ok(timeout) => timeout,
        Err(reply) => return reply,
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    let keys = &cmd.args[..cmd.args.len() - 1];
    loop {
        let signals: Vec<Arc<Notify>> = keys.iter().map(|k| exec.waiters.signal(k)).collect();
        let mut waits: Vec<_> = signals.iter().map(|s| Box::pin(s.notified())).collect();
        for wait in &mut waits {
            wait.as_mut().enable();
        }
        let reply = exec.run_txn(Some(client), |ctx| attempt(ctx, cmd)).await;
        if reply != Reply::NullArray {
            return reply;
        }
        let any = futures::future::select_all(waits);
        match deadline {
            Some(deadline) => {
                if tokio::time::timeout_at(deadline.into(), any).await.is_err() {
                    return Reply::NullArray;
                }
            }
            None => {
                any.await;
            }
        }
    }
}

/// XREAD, blocking when BLOCK is given and nothing is there yet; `$` is
/// resolved once, before the first attempt.
pub async fn run_xread<B: KvBackend>(
    exec: &RedisExecutor<B>,
    client: &ClientInfo,
    cmd: &Command,
) -> Reply {
    let read = match super::streams::parse_xread(cmd) {
        Ok(read) => read,
        Err(reply) => return reply,
    };
    let Some(block_ms) = read.block_ms else {
        return exec
            .run_txn(Some(client), |ctx| settle(super::streams::xread(ctx, cmd)))
            .await;
    };
    let mut resolved = Vec::new();
    let reply = exec
        .run_txn(Some(client), |ctx| {
            match super::streams::resolve_ids(ctx, &read) {
                Ok(ids) => {
                    resolved = ids;
                    Ok(Reply::NullArray)
                }
                Err(err) => settle(Err(err)),
            }
        })
        .await;
    if reply != Reply::NullArray {
        return reply;
    }
    let deadline =
        (block_ms > 0).then(|| Instant::now() + std::time::Duration::from_millis(block_ms));
    loop {
        let signals: Vec<Arc<Notify>> = read.keys.iter().map(|k| exec.waiters.signal(k)).collect();
        let mut waits: Vec<_> = signals.iter().map(|s| Box::pin(s.notified())).collect();
        for wait in &mut waits {
            wait.as_mut().enable();
        }
        let reply = exec
            .run_txn(Some(client), |ctx| {
                settle(super::streams::xread_once(ctx, &read, &resolved))
            })
            .await;
        if reply != Reply::NullArray {
            return reply;
        }
        let any = futures::future::select_all(waits);
        match deadline {
            Some(deadline) => {
                if tokio::time::timeout_at(deadline.into(), any).await.is_err() {
                    return Reply::NullArray;
                }
            }
            None => {
                any.await;
            }
        }
    }
}
