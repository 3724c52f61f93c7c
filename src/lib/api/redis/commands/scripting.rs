//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT
//! LOAD/EXISTS/FLUSH/KILL/HELP, with the script cache EVALSHA reads.
//!
//! Invariants: a script runs inside the caller's transaction, so all its
//! `redis.call`s commit together or not at all and re-run from scratch on
//! a write conflict (inside MULTI/EXEC it joins the EXEC's transaction);
//! reads inside a script see the script's own earlier writes; a script
//! that errors keeps the writes it made before the error (as in Redis),
//! but a script stopped by the time limit keeps nothing; only scripts
//! that compile enter the cache.

use std::collections::HashMap;

use bytes::Bytes;
use parking_lot::Mutex;

use super::ctx::Ctx;
use super::dispatch;
use super::lua::{self, Access, SCRIPT_TIME_LIMIT, Stop, sha1_hex};
use crate::api::redis::args::{Command, ERR_NOSCRIPT, ERR_NOT_INTEGER, error};
use crate::api::redis::reply::{Protocol, Reply};
use crate::api::redis::resp::parse_redis_int;
use crate::txn::{KvBackend, TxnError};

/// Scripts by the lower-case hex SHA1 of their body, filled by EVAL and
/// SCRIPT LOAD, emptied by SCRIPT FLUSH.
#[derive(Default)]
pub struct ScriptCache {
    scripts: Mutex<HashMap<String, Bytes>>,
}

impl ScriptCache {
    /// Stores `body` and returns its SHA1 hex digest.
    pub fn insert(&self, body: Bytes) -> String {
        let sha = sha1_hex(&body);
        self.scripts.lock().insert(sha.clone(), body);
        sha
    }

    /// The script with digest `sha` (any letter case).
    pub fn get(&self, sha: &[u8]) -> Option<Bytes> {
        let key = std::str::from_utf8(sha).ok()?.to_ascii_lowercase();
        self.scripts.lock().get(&key).cloned()
    }

    /// Whether a script with digest `sha` is cached.
    pub fn contains(&self, sha: &[u8]) -> bool {
        self.get(sha).is_some()
    }

    /// Forgets every script.
    pub fn clear(&self) {
        self.scripts.lock().clear();
    }

    /// How many scripts are cached.
    pub fn len(&self) -> usize {
        self.scripts.lock().len()
    }

    /// Whether no script is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs a whole EVAL*/SCRIPT command (for [`dispatch::run`]). Only a
/// failed transaction is `Err`.
pub fn run<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> Result<Reply, TxnError> {
    let result = match cmd.name() {
        "SCRIPT" => script(ctx, cmd),
        _ => eval(ctx, cmd),
    };
    match result {
        Ok(reply) => Ok(reply),
        Err(EvalError::Reply(reply)) => Ok(reply),
        Err(EvalError::Txn(err)) => Err(err),
    }
}

enum EvalError {
    Reply(Reply),
    Txn(TxnError),
}

impl From<Reply> for EvalError {
    fn from(reply: Reply) -> Self {
        EvalError::Reply(reply)
    }
}

/// EVAL script numkeys key... arg... (and EVALSHA, EVAL_RO, EVALSHA_RO).
fn eval<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> Result<Reply, EvalError> {
    let by_sha = matches!(cmd.name(), "EVALSHA" | "EVALSHA_RO");
    let access = if cmd.name().ends_with("_RO") {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    let numkeys = parse_redis_int(cmd.arg(1)?).ok_or_else(|| error(ERR_NOT_INTEGER))?;
    let rest = &cmd.args[2..];
    if numkeys > rest.len() as i64 {
        return Err(error("ERR Number of keys can't be greater than number of args").into());
    }
    if numkeys < 0 {
        return Err(error("ERR Number of keys can't be negative").into());
    }
    let (keys, argv) = rest.split_at(numkeys as usize);
    let (body, sha) = if by_sha {
        let sha = cmd.arg(0)?;
        match ctx.exec.scripts().get(sha) {
            Some(body) if sha.len() == 40 => {
                let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
                (body, sha)
            }
            _ => return Err(error(ERR_NOSCRIPT).into()),
        }
    } else {
        let body = cmd.arg(0)?.clone();
        let sha = sha1_hex(&body);
        if !ctx.exec.scripts().contains(sha.as_bytes()) {
            // Redis caches only scripts that compile.
            lua::compile_check(&body)?;
            ctx.exec.scripts().insert(body.clone());
        }
        (body, sha)
    };
    let saved_protocol = ctx.protocol;
    let saved_in_multi = ctx.in_multi;
    // Scripts never block; they speak RESP2 unless they ask otherwise.
    ctx.in_multi = true;
    let outcome = {
        let mut call = |command: Command, resp: Protocol| {
            if command.name() == "PUBLISH" {
                return Ok(publish(ctx, command));
            }
            match connection_command(&command) {
                Some(reply) => Ok(reply),
                None => {
                    // `redis.setresp` picks the shape of the replies the
                    // script gets.
                    ctx.protocol = resp;
                    dispatch::run(ctx, &command)
                }
            }
        };
        off_the_worker(|| lua::run_script(&body, &sha, access, keys, argv, &mut call))
    };
    ctx.protocol = saved_protocol;
    ctx.in_multi = saved_in_multi;
    match outcome {
        Ok(reply) => Ok(reply),
        Err(Stop::Txn(err)) => Err(EvalError::Txn(err)),
        Err(Stop::TimeLimit) => {
            let reply = Reply::error(format!(
                "ERR Error running script {sha}: it ran longer than {} ms and was stopped; nothing it wrote was kept",
                SCRIPT_TIME_LIMIT.as_millis()
            ));
            ctx.abort = Some(reply.clone());
            Ok(reply)
        }
    }
}

/// Runs `work` (a script may compute for seconds) so that the tasks
/// queued on this runtime worker move to another thread meanwhile: left
/// behind, they would starve, the leader's clock-lease renewal among them
/// (its 5 s window is as long as a script may run).
fn off_the_worker<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// The connection-level commands a script may call (the session answers
/// them for clients); None for everything the dispatcher runs.
fn connection_command(command: &Command) -> Option<Reply> {
    match command.name() {
        "PING" => Some(match command.args.first() {
            Some(message) => Reply::Bulk(message.clone()),
            None => Reply::simple("PONG"),
        }),
        "ECHO" => Some(Reply::Bulk(command.args[0].clone())),
        "SELECT" => Some(
            match parse_redis_int(&command.args[0]).filter(|n| i32::try_from(*n).is_ok()) {
                None => Reply::error(ERR_NOT_INTEGER),
                Some(0) => Reply::ok(),
                Some(_) => Reply::error("ERR DB index is out of range"),
            },
        ),
        // Subscriptions and connection introspection live in the session,
        // which a script cannot reach.
        "PUBSUB" | "CLIENT" | "COMMAND" => Some(Reply::error(
            "ERR This Redis command is not allowed from script",
        )),
        _ => None,
    }
}

/// PUBLISH from a script: the reply counts this node's subscribers now
/// (as PUBLISH in Redis Cluster counts the receiving node's), and the
/// message is sent when the script's transaction commits, so a script
/// that is retried after a conflict publishes once and a script stopped
/// by the time limit publishes nothing.
fn publish<B: KvBackend>(ctx: &mut Ctx<B>, command: Command) -> Reply {
    let Some(publisher) = ctx.exec.publisher() else {
        return Reply::error("ERR This Redis command is not allowed from script");
    };
    let mut args = command.args.into_iter();
    let (Some(channel), Some(message)) = (args.next(), args.next()) else {
        return Reply::error("ERR wrong number of arguments for 'publish' command");
    };
    let receivers = publisher.receivers_here(&channel);
    ctx.published.push((channel, message));
    Reply::Integer(receivers as i64)
}

/// SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP.
fn script<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> Result<Reply, EvalError> {
    let scripts = ctx.exec.scripts();
    let Some(sub) = cmd.subcommand else {
        return Err(error("ERR unknown subcommand").into());
    };
    match sub.name {
        "LOAD" => {
            let body = cmd.arg(1)?.clone();
            lua::compile_check(&body)?;
            Ok(Reply::bulk(scripts.insert(body)))
        }
        "EXISTS" => Ok(Reply::Array(
            cmd.args[1..]
                .iter()
                .map(|sha| Reply::Integer(i64::from(scripts.contains(sha))))
                .collect(),
        )),
        "FLUSH" => {
            let valid = match &cmd.args[1..] {
                [] => true,
                [mode] => mode.eq_ignore_ascii_case(b"ASYNC") || mode.eq_ignore_ascii_case(b"SYNC"),
                _ => false,
            };
            if !valid {
                return Err(error("ERR SCRIPT FLUSH only support SYNC|ASYNC option").into());
            }
            scripts.clear();
            Ok(Reply::ok())
        }
        // A script runs to completion inside one request and is never
        // observable "in execution" from another connection.
        "KILL" => Ok(Reply::error("NOTBUSY No scripts in execution right now.")),
        "HELP" => Ok(Reply::Array(
            SCRIPT_HELP
                .iter()
                .map(|line| Reply::simple(*line))
                .collect(),
        )),
        other => Err(Reply::error(format!(
            "ERR unknown subcommand '{}'. Try SCRIPT HELP.",
            other.to_ascii_lowercase()
        ))
        .into()),
    }
}

/// SCRIPT HELP, as Redis 7 words it (without DEBUG, which is not offered).
const SCRIPT_HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];
