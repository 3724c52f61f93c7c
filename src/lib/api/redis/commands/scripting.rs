//! Lua scripting: EVAL, EVALSHA and SCRIPT LOAD/EXISTS/FLUSH/KILL/HELP.
//!
//! Invariants: a script runs inside the caller's transaction (so the whole
//! script commits atomically, and re-runs from scratch on a write
//! conflict); every script gets a fresh Lua 5.1 VM with only the base,
//! table, string and math libraries, so no global state survives between
//! scripts; `redis.call` runs the same synchronous handlers as the front
//! end, with replies converted by Redis's Lua↔RESP rules (RESP2 shapes);
//! a transaction failure inside `redis.call` aborts the script and reaches
//! the retry loop as the `TxnError` itself, never as a Lua error string;
//! a script is bounded in run time ([`SCRIPT_TIME_LIMIT`]) and memory
//! ([`SCRIPT_MEMORY_LIMIT`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};
use parking_lot::Mutex;
use sha1::{Digest, Sha1};

use super::ctx::{CmdResult, Ctx, settle};
use super::dispatch;
use crate::api::redis::args::{Command, ERR_NOSCRIPT, ERR_NOT_INTEGER, ERR_SYNTAX, error};
use crate::api::redis::command::{self, flags};
use crate::api::redis::reply::{Reply, format_double};
use crate::api::redis::resp::parse_redis_int;
use crate::txn::{KvBackend, TxnError};

/// How long one script may run before it is stopped with an error (the
/// reference's EVAL dispatch timeout).
pub const SCRIPT_TIME_LIMIT: Duration = Duration::from_secs(300);
/// The most memory one script's VM may allocate.
pub const SCRIPT_MEMORY_LIMIT: usize = 256 * 1024 * 1024;
/// How many VM instructions run between two time-limit checks.
const HOOK_INSTRUCTION_INTERVAL: u32 = 10_000;

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
}

/// The lower-case hex SHA1 of `data`.
pub fn sha1_hex(data: &[u8]) -> String {
    hex::encode(Sha1::digest(data))
}

/// EVAL script numkeys key... arg... / EVALSHA sha numkeys key... arg...
pub fn eval<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let body = if cmd.name() == "EVALSHA" {
        match ctx.exec.scripts().get(cmd.arg(0)?) {
            Some(body) => body,
            None => return Err(error(ERR_NOSCRIPT).into()),
        }
    } else {
        cmd.arg(0)?.clone()
    };
    let numkeys = parse_redis_int(cmd.arg(1)?).ok_or_else(|| error(ERR_NOT_INTEGER))?;
    if numkeys < 0 {
        return Err(error("ERR Number of keys can't be negative").into());
    }
    let rest = &cmd.args[2..];
    if numkeys as u64 > rest.len() as u64 {
        return Err(error("ERR Number of keys can't be greater than number of args").into());
    }
    let (keys, argv) = rest.split_at(numkeys as usize);
    let sha = if cmd.name() == "EVAL" {
        // Redis caches only scripts that compile; compiling first keeps
        // junk out of the cache.
        compile_check(&body)?;
        ctx.exec.scripts().insert(body.clone())
    } else {
        sha1_hex(&body)
    };
    run_script(ctx, &body, &sha, keys, argv)
}

/// SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP.
pub fn script<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let sub = cmd
        .subcommand
        .map(|sub| sub.name)
        .ok_or_else(|| error(ERR_SYNTAX))?;
    let scripts = ctx.exec.scripts();
    match sub {
        "LOAD" => {
            let body = cmd.arg(1)?.clone();
            compile_check(&body)?;
            Ok(Reply::bulk(scripts.insert(body)))
        }
        "EXISTS" => Ok(Reply::Array(
            cmd.args[1..]
                .iter()
                .map(|sha| Reply::Integer(i64::from(scripts.contains(sha))))
                .collect(),
        )),
        "FLUSH" => {
            match cmd.args.get(1) {
                None => {}
                Some(mode)
                    if cmd.args.len() == 2
                        && (mode.eq_ignore_ascii_case(b"ASYNC")
                            || mode.eq_ignore_ascii_case(b"SYNC")) => {}
                Some(_) => {
                    return Err(error("ERR SCRIPT FLUSH only support SYNC|ASYNC option").into());
                }
            }
            scripts.clear();
            Ok(Reply::ok())
        }
        // Scripts run to completion inside one request: none is ever
        // observable "in execution" from another connection's point of view.
        "KILL" => Ok(Reply::error("NOTBUSY No scripts in execution right now.")),
        "HELP" => Ok(Reply::Array(
            [
                "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "EXISTS <sha1> [<sha1> ...]",
                "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]",
                "    Flush the Lua scripts cache.",
                "KILL",
                "    Kill the currently executing Lua script.",
                "LOAD <script>",
                "    Load a script into the scripts cache without executing it.",
                "HELP",
                "    Print this help.",
            ]
            .into_iter()
            .map(Reply::simple)
            .collect(),
        )),
        other => Err(Reply::error(format!(
            "ERR unknown subcommand '{}'. Try SCRIPT HELP.",
            other.to_ascii_lowercase()
        ))
        .into()),
    }
}

/// Fails with Redis's compile-error reply when `body` is not valid Lua.
fn compile_check(body: &[u8]) -> Result<(), Reply> {
    let lua = new_vm().map_err(|err| Reply::error(format!("ERR {err}")))?;
    lua.load(body)
        .set_name("@user_script")
        .into_function()
        .map(|_| ())
        .map_err(|err| {
            Reply::error(format!(
                "ERR Error compiling script (new function): {}",
                first_line(&err.to_string())
            ))
        })
}

/// A VM with only the libraries Redis exposes, bounded in memory.
fn new_vm() -> mlua::Result<Lua> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )?;
    lua.set_memory_limit(SCRIPT_MEMORY_LIMIT)?;
    let globals = lua.globals();
    for unsafe_name in [
        "dofile",
        "loadfile",
        "load",
        "loadstring",
        "getfenv",
        "setfenv",
    ] {
        globals.raw_set(unsafe_name, Value::Nil)?;
    }
    Ok(lua)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// What stopped a script before it returned.
enum Abort {
    /// The transaction failed inside `redis.call`.
    Txn(TxnError),
}

fn run_script<B: KvBackend>(
    ctx: &mut Ctx<B>,
    body: &[u8],
    sha: &str,
    keys: &[Bytes],
    argv: &[Bytes],
) -> CmdResult {
    let lua = new_vm().map_err(|err| Reply::error(format!("ERR {err}")))?;
    let started = Instant::now();
    let hook = lua.set_hook(
        HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTION_INTERVAL),
        move |_, _| {
            if started.elapsed() > SCRIPT_TIME_LIMIT {
                Err(mlua::Error::runtime(
                    "script exceeded the time limit and was stopped",
                ))
            } else {
                Ok(VmState::Continue)
            }
        },
    );
    if let Err(err) = hook {
        return Err(Reply::error(format!("ERR {err}")).into());
    }
    let was_in_multi = ctx.in_multi;
    ctx.in_multi = true;
    let abort: RefCell<Option<Abort>> = RefCell::new(None);
    let shared = RefCell::new(&mut *ctx);
    let outcome = lua.scope(|scope| {
        let call = scope.create_function(|lua, args: MultiValue| {
            call_from_script(lua, &shared, &abort, args, true)
        })?;
        let pcall = scope.create_function(|lua, args: MultiValue| {
            call_from_script(lua, &shared, &abort, args, false)
        })?;
        install_redis_table(&lua, call, pcall, keys, argv)?;
        lua.load(body)
            .set_name("@user_script")
            .eval::<Value>()
            .map(|value| lua_to_reply(&lua, value))
    });
    ctx.in_multi = was_in_multi;
    if let Some(Abort::Txn(err)) = abort.into_inner() {
        return Err(err.into());
    }
    match outcome {
        Ok(reply) => Ok(reply),
        Err(err) => Err(script_error_reply(&err, sha).into()),
    }
}

/// Sets `redis`, `KEYS` and `ARGV`, then forbids new globals.
fn install_redis_table(
    lua: &Lua,
    call: mlua::Function,
    pcall: mlua::Function,
    keys: &[Bytes],
    argv: &[Bytes],
) -> mlua::Result<()> {
    let globals = lua.globals();
    let redis = lua.create_table()?;
    redis.set("call", call)?;
    redis.set("pcall", pcall)?;
    redis.set(
        "sha1hex",
        lua.create_function(|_, data: mlua::String| Ok(sha1_hex(&data.as_bytes())))?,
    )?;
    redis.set(
        "error_reply",
        lua.create_function(|lua, text: mlua::String| {
            let table = lua.create_table()?;
            table.set("err", text)?;
            Ok(table)
        })?,
    )?;
    redis.set(
        "status_reply",
        lua.create_function(|lua, text: mlua::String| {
            let table = lua.create_table()?;
            table.set("ok", text)?;
            Ok(table)
        })?,
    )?;
    globals.set("redis", redis)?;
    globals.set("KEYS", bytes_table(lua, keys)?)?;
    globals.set("ARGV", bytes_table(lua, argv)?)?;
    let guard = lua.create_table()?;
    guard.set(
        "__newindex",
        lua.create_function(|_, (_, name): (Table, Value)| -> mlua::Result<()> {
            let name = match name {
                Value::String(s) => s.to_string_lossy(),
                _ => String::from("?"),
            };
            Err(mlua::Error::runtime(format!(
                "Script attempted to create global variable '{name}'"
            )))
        })?,
    )?;
    globals.set_metatable(Some(guard))?;
    Ok(())
}

fn bytes_table(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    let table = lua.create_table_with_capacity(items.len(), 0)?;
    for item in items {
        table.raw_push(lua.create_string(item)?)?;
    }
    Ok(table)
}

/// One `redis.call` (`raise` = true) or `redis.pcall`.
fn call_from_script<B: KvBackend>(
    lua: &Lua,
    ctx: &RefCell<&mut Ctx<B>>,
    abort: &RefCell<Option<Abort>>,
    args: MultiValue,
    raise: bool,
) -> mlua::Result<Value> {
    if abort.borrow().is_some() {
        return Err(mlua::Error::runtime("transaction aborted"));
    }
    let reply = match script_command(lua, args) {
        Err(reply) => reply,
        Ok(cmd) => {
            let mut ctx = ctx.borrow_mut();
            match dispatch::run(&mut ctx, &cmd) {
                Ok(reply) => reply,
                Err(err) => {
                    *abort.borrow_mut() = Some(Abort::Txn(err));
                    // Not catchable in a way that matters: the script's
                    // result is discarded once `abort` is set.
                    return Err(mlua::Error::runtime("transaction aborted"));
                }
            }
        }
    };
    if raise && let Reply::Error(text) = &reply {
        return Err(mlua::Error::external(ScriptReplyError(text.to_string())));
    }
    reply_to_lua(lua, reply)
}

/// An error reply raised by `redis.call`, carried through Lua unchanged.
#[derive(Debug)]
struct ScriptReplyError(String);

impl std::fmt::Display for ScriptReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScriptReplyError {}

/// Builds the command a script asked for, answering what Redis answers for
/// bad calls.
fn script_command(lua: &Lua, args: MultiValue) -> Result<Command, Reply> {
    let mut argv = Vec::with_capacity(args.len());
    for value in args {
        let text = match value {
            Value::String(_) | Value::Integer(_) | Value::Number(_) => {
                lua.coerce_string(value).ok().flatten()
            }
            _ => None,
        };
        match text {
            Some(text) => argv.push(Bytes::copy_from_slice(&text.as_bytes())),
            None => {
                return Err(Reply::error(
                    "ERR Lua redis lib command arguments must be strings or integers",
                ));
            }
        }
    }
    if argv.is_empty() {
        return Err(Reply::error(
            "ERR Please specify at least one argument for this redis lib call",
        ));
    }
    let resolved = match command::resolve(&argv) {
        Ok(resolved) => resolved,
        Err(reply) => {
            let text = match &reply {
                Reply::Error(text) if text.starts_with("ERR wrong number") => {
                    "ERR Wrong number of args calling Redis command from script".to_string()
                }
                Reply::Error(text) if text.starts_with("ERR unknown command") => {
                    "ERR Unknown Redis command called from script".to_string()
                }
                Reply::Error(text) => text.to_string(),
                _ => "ERR Unknown Redis command called from script".to_string(),
            };
            return Err(Reply::error(text));
        }
    };
    let denied = resolved.spec.has_flag(flags::NOSCRIPT)
        || resolved
            .subcommand
            .is_some_and(|sub| sub.has_flag(flags::NOSCRIPT));
    if denied {
        return Err(Reply::error(
            "ERR This Redis command is not allowed from script",
        ));
    }
    argv.remove(0);
    Ok(Command {
        spec: resolved.spec,
        subcommand: resolved.subcommand,
        args: argv,
    })
}

/// Redis reply → Lua value, with RESP2 shapes (scripts speak RESP2).
pub fn reply_to_lua(lua: &Lua, reply: Reply) -> mlua::Result<Value> {
    Ok(match reply {
        Reply::Simple(text) => {
            let table = lua.create_table()?;
            table.set("ok", &*text)?;
            Value::Table(table)
        }
        Reply::Error(text) => {
            let table = lua.create_table()?;
            table.set("err", &*text)?;
            Value::Table(table)
        }
        Reply::Integer(n) => Value::Number(n as f64),
        Reply::Bulk(data) => Value::String(lua.create_string(&data)?),
        Reply::NullBulk | Reply::NullArray => Value::Boolean(false),
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for item in items {
                table.raw_push(reply_to_lua(lua, item)?)?;
            }
            Value::Table(table)
        }
        Reply::Map(pairs) => {
            let table = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (key, value) in pairs {
                table.raw_push(reply_to_lua(lua, key)?)?;
                table.raw_push(reply_to_lua(lua, value)?)?;
            }
            Value::Table(table)
        }
        Reply::Double(value) => Value::String(lua.create_string(format_double(value))?),
        Reply::Boolean(value) => Value::Number(f64::from(u8::from(value))),
        Reply::BigNumber(text) => Value::String(lua.create_string(text)?),
        Reply::Verbatim { text, .. } => Value::String(lua.create_string(&text)?),
    })
}

/// Lua value → Redis reply: numbers truncate to integers, `false`/`nil`
/// are nil, `true` is 1, `{ok=}`/`{err=}` are status/error, other tables
/// are arrays up to their first nil.
pub fn lua_to_reply(lua: &Lua, value: Value) -> Reply {
    match value {
        Value::Nil | Value::Boolean(false) => Reply::NullBulk,
        Value::Boolean(true) => Reply::Integer(1),
        Value::Integer(n) => Reply::Integer(n),
        Value::Number(n) => Reply::Integer(n as i64),
        Value::String(s) => Reply::bulk(&*s.as_bytes()),
        Value::Table(table) => {
            if let Ok(Value::String(err)) = table.raw_get::<Value>("err") {
                return Reply::error(err.to_string_lossy());
            }
            if let Ok(Value::String(ok)) = table.raw_get::<Value>("ok") {
                return Reply::simple(ok.to_string_lossy());
            }
            let mut items = Vec::new();
            for index in 1.. {
                match table.raw_get::<Value>(index) {
                    Ok(Value::Nil) | Err(_) => break,
                    Ok(item) => items.push(lua_to_reply(lua, item)),
                }
            }
            Reply::Array(items)
        }
        _ => Reply::NullBulk,
    }
}

/// The reply for a script that raised an error.
fn script_error_reply(err: &mlua::Error, sha: &str) -> Reply {
    if let Some(reply) = find_reply_error(err) {
        return Reply::error(reply.0.clone());
    }
    if let mlua::Error::MemoryError(_) = err {
        return Reply::error("ERR script exceeded its memory limit");
    }
    let message = match err {
        mlua::Error::RuntimeError(text) => first_line(text).to_string(),
        other => first_line(&other.to_string()).to_string(),
    };
    Reply::error(format!(
        "ERR Error running script (call to f_{sha}): {message}"
    ))
}

fn find_reply_error(err: &mlua::Error) -> Option<&ScriptReplyError> {
    match err {
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<ScriptReplyError>(),
        mlua::Error::CallbackError { cause, .. } => find_reply_error(cause),
        mlua::Error::WithContext { cause, .. } => find_reply_error(cause),
        _ => None,
    }
}

/// Runs a whole EVAL/EVALSHA/SCRIPT command (for [`dispatch::run`]).
pub fn run<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> Result<Reply, TxnError> {
    settle(match cmd.name() {
        "SCRIPT" => script(ctx, cmd),
        _ => eval(ctx, cmd),
    })
}
