//! The state one command (or a MULTI/EXEC queue, or a script) runs with,
//! and the error type of command handlers.

use bytes::Bytes;

use super::RedisExecutor;
use crate::api::redis::args::ERR_WRONGTYPE;
use crate::api::redis::reply::{Protocol, Reply};
use crate::model::redis::{Db, ModelError};
use crate::txn::{KvBackend, TxnError};

/// Why a handler stopped early.
#[derive(Debug)]
pub enum CmdError {
    /// A Redis error reply for the client (bad arguments, WRONGTYPE...).
    Reply(Reply),
    /// The transaction failed: the whole command (or queue) aborts.
    Txn(TxnError),
}

pub type CmdResult = Result<Reply, CmdError>;

impl From<Reply> for CmdError {
    fn from(reply: Reply) -> Self {
        CmdError::Reply(reply)
    }
}

impl From<ModelError> for CmdError {
    fn from(err: ModelError) -> Self {
        match err {
            ModelError::WrongType => CmdError::Reply(Reply::error(ERR_WRONGTYPE)),
            ModelError::Corrupt { .. } => CmdError::Reply(Reply::error(format!("ERR {err}"))),
            ModelError::Txn(err) => CmdError::Txn(err),
        }
    }
}

impl From<TxnError> for CmdError {
    fn from(err: TxnError) -> Self {
        CmdError::Txn(err)
    }
}

/// Turns a handler result into a reply, keeping transaction failures apart.
pub fn settle(result: CmdResult) -> Result<Reply, TxnError> {
    match result {
        Ok(reply) | Err(CmdError::Reply(reply)) => Ok(reply),
        Err(CmdError::Txn(err)) => Err(err),
    }
}

/// Everything a handler may use.
pub struct Ctx<'t, 'a, 'e, B: KvBackend> {
    pub db: Db<'t, 'a, B>,
    pub exec: &'e RedisExecutor<B>,
    pub protocol: Protocol,
    /// Keys written so far (signalled to blocked clients after commit).
    pub written: Vec<Vec<u8>>,
    /// Messages scripts published, sent after a successful commit.
    pub published: Vec<(Bytes, Bytes)>,
    /// Inside MULTI/EXEC or a script: blocking commands do not block.
    pub in_multi: bool,
    /// Set when the transaction must not commit (a script stopped by its
    /// time limit): the transaction's reply becomes this one.
    pub abort: Option<Reply>,
}

impl<'t, 'a, 'e, B: KvBackend> Ctx<'t, 'a, 'e, B> {
    pub fn new(db: Db<'t, 'a, B>, exec: &'e RedisExecutor<B>, protocol: Protocol) -> Self {
        Ctx {
            db,
            exec,
            protocol,
            written: Vec::new(),
            published: Vec::new(),
            in_multi: false,
            abort: None,
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.db.now_ms()
    }
}
