//! The Lua 5.1 sandbox EVAL scripts run in, and Redis's conversions
//! between Lua values and replies.
//!
//! Invariants:
//! - every run gets a fresh VM, so nothing a script does survives it;
//! - scripts see what Redis 7 shows them: the base library without file,
//!   environment or printing functions, `table`, `string`, `math`,
//!   `coroutine`, the `redis` table, `KEYS` and `ARGV`; the global table
//!   is read-only and reading an undefined global is an error, with
//!   Redis's wording;
//! - precompiled (binary) chunks are never loaded;
//! - a stop (time limit, failed transaction) cannot be swallowed by the
//!   script: the hook keeps raising, and `pcall`, `xpcall` and
//!   `coroutine.resume` re-raise it;
//! - `redis.call` and `redis.pcall` replies reach Lua with Redis's RESP2
//!   shapes, or its RESP3 shapes after `redis.setresp(3)`, and what a
//!   script returns becomes a reply by Redis's rules (the front end then
//!   encodes it for the client's protocol).

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{
    Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, Variadic, VmState,
};

use super::lualib;
use crate::api::redis::args::Command;
use crate::api::redis::command::{self, flags};
use crate::api::redis::reply::{Protocol, Reply, format_double};
use crate::txn::TxnError;

/// How long one script may run before it is stopped; its writes are then
/// discarded (Redis's `busy-reply-threshold` default).
pub const SCRIPT_TIME_LIMIT: Duration = Duration::from_secs(5);
/// The most memory one script's VM may allocate.
pub const SCRIPT_MEMORY_LIMIT: usize = 256 * 1024 * 1024;
/// VM instructions between two checks of the time limit.
const HOOK_INSTRUCTION_INTERVAL: u32 = 10_000;
/// Chunk name of scripts (Redis's: errors read `user_script:LINE:`).
const SCRIPT_CHUNK: &str = "@user_script";
/// Chunk name of the sandbox's own Lua code; its frames are skipped when
/// an error's script line is looked up.
const PRELUDE_CHUNK: &str = "=elastickv_sandbox";
/// Reply nesting beyond this is refused (a table may contain itself).
const MAX_REPLY_DEPTH: usize = 256;
/// `redis.REDIS_VERSION` and its number, as `INFO server` reports them.
const REDIS_VERSION: &str = "7.2.0";
const REDIS_VERSION_NUM: i64 = 0x07_02_00;

/// Why a script was stopped before it finished.
#[derive(Debug)]
pub enum Stop {
    /// It ran longer than [`SCRIPT_TIME_LIMIT`].
    TimeLimit,
    /// The transaction failed inside `redis.call`; the caller retries or
    /// reports it.
    Txn(TxnError),
}

/// How a script may use the data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// EVAL_RO, EVALSHA_RO or a `#!lua flags=no-writes` script.
    ReadOnly,
}

/// The sandbox's Lua code, run once per VM before the script. It receives
/// `check_stop`, `error_text` and `handler_value` (Rust functions) as
/// arguments.
const PRELUDE: &str = r#"
local check_stop, error_text, handler_value = ...
local G = _G
local type, error, tostring, setmetatable = type, error, tostring, setmetatable
local string_byte, table_concat = string.byte, table.concat
local builtin_pcall, builtin_xpcall = pcall, xpcall
local builtin_loadstring, builtin_load = loadstring, load
local builtin_resume = coroutine.resume

local function after_pcall(ok, ...)
  check_stop()
  if ok then return ok, ... end
  return false, error_text((...))
end
G.pcall = function(...) return after_pcall(builtin_pcall(...)) end

local function after_protected(...)
  check_stop()
  return ...
end
G.xpcall = function(f, handler)
  return after_protected(builtin_xpcall(f, function(e) return handler(handler_value(e)) end))
end
coroutine.resume = function(...) return after_protected(builtin_resume(...)) end

local function safe_loadstring(chunk, name)
  if type(chunk) == 'string' and string_byte(chunk, 1) == 27 then
    return nil, 'loading precompiled chunks is not allowed'
  end
  return builtin_loadstring(chunk, name)
end
G.loadstring = safe_loadstring
G.load = function(reader, name)
  if type(reader) ~= 'function' then return builtin_load(reader, name) end
  local parts = {}
  while true do
    local piece = reader()
    if piece == nil or piece == '' then break end
    if type(piece) ~= 'string' then return nil, 'reader function must return a string' end
    parts[#parts + 1] = piece
  end
  return safe_loadstring(table_concat(parts), name or '=(load)')
end

setmetatable(G, {
  __index = function(_, name)
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
  end,
  __newindex = function()
    error('Attempt to modify a readonly table', 2)
  end,
  __metatable = false,
})
"#;

/// Globals Redis does not offer scripts.
const REMOVED_GLOBALS: &[&str] = &[
    "dofile", "loadfile", "print", "getfenv", "setfenv", "newproxy", "module", "require",
];

/// An error raised by `redis.call` (and the `redis` helpers that raise):
/// already in Redis's `CODE message` form, shown without a position.
#[derive(Debug)]
struct RaisedReply(String);

impl std::fmt::Display for RaisedReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RaisedReply {}

fn raise(text: String) -> mlua::Error {
    mlua::Error::external(RaisedReply(text))
}

fn raised_reply(err: &mlua::Error) -> Option<&RaisedReply> {
    match err {
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<RaisedReply>(),
        mlua::Error::CallbackError { cause, .. } => raised_reply(cause),
        mlua::Error::WithContext { cause, .. } => raised_reply(cause),
        _ => None,
    }
}

/// The `CODE message` text of a Redis error table (Redis's
/// `luaPushErrorBuff`): `-CODE message` keeps its code, anything else
/// gets `ERR`; surrounding newlines are trimmed.
pub fn error_table_text(text: &str) -> String {
    let (code, message) = match text.strip_prefix('-') {
        Some(rest) => match rest.split_once(' ') {
            Some((code, message)) => (code, message),
            None => ("ERR", rest),
        },
        None => ("ERR", text),
    };
    format!("{code} {}", message.trim_matches(['\r', '\n']))
}

/// Replaces the CR and LF a status or error line cannot carry.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// The lower-case hex SHA1 of `data`.
pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    hex::encode(Sha1::digest(data))
}

/// The script flags a `#!lua` first line declares, and how many bytes of
/// the body that line takes (the newline stays, so line numbers hold).
pub fn parse_shebang(body: &[u8]) -> Result<(Access, usize), Reply> {
    if !body.starts_with(b"#!") {
        return Ok((Access::ReadWrite, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err(Reply::error("ERR Invalid script shebang"));
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_ascii_whitespace();
    let engine = parts.next().unwrap_or_default();
    if engine != "#!lua" {
        return Err(Reply::error(format!(
            "ERR Unexpected engine in script shebang: {engine}"
        )));
    }
    let mut access = Access::ReadWrite;
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(Reply::error(format!(
                "ERR Unknown lua shebang option: {part}"
            )));
        };
        for flag in list.split(',') {
            match flag {
                "no-writes" => access = Access::ReadOnly,
                // Memory, staleness and cluster slots do not restrict
                // anything here.
                "allow-oom" | "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
                other => {
                    return Err(Reply::error(format!(
                        "ERR Unexpected flag in script shebang: {other}"
                    )));
                }
            }
        }
    }
    Ok((access, end))
}

/// A VM with only what Redis offers scripts, bounded in memory.
fn new_vm() -> mlua::Result<Lua> {
    let lua = Lua::new_with(
        // Lua 5.1's base library includes `coroutine`.
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )?;
    lua.set_memory_limit(SCRIPT_MEMORY_LIMIT)?;
    let globals = lua.globals();
    for name in REMOVED_GLOBALS {
        globals.raw_set(*name, Value::Nil)?;
    }
    Ok(lua)
}

/// Fails with Redis's compile-error reply when `body` is not valid Lua.
pub fn compile_check(body: &[u8]) -> Result<(), Reply> {
    let (_, shebang_len) = parse_shebang(body)?;
    let lua = new_vm().map_err(|err| Reply::error(format!("ERR {err}")))?;
    lua.load(&body[shebang_len..])
        .set_name(SCRIPT_CHUNK)
        .into_function()
        .map(|_| ())
        .map_err(|err| compile_error(&err))
}

fn compile_error(err: &mlua::Error) -> Reply {
    let message = match err {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    };
    Reply::error(one_line(&format!(
        "ERR Error compiling script (new function): {message}"
    )))
}

/// Runs one command of a script inside its transaction, with replies
/// shaped for the given protocol.
pub type ScriptCall<'c> = dyn FnMut(Command, Protocol) -> Result<Reply, TxnError> + 'c;

/// What the running script shares with its Rust callbacks.
struct RunState<'c> {
    call: RefCell<&'c mut ScriptCall<'c>>,
    access: Access,
    /// The protocol `redis.setresp` chose (RESP2 until it is called).
    resp: Cell<Protocol>,
    stopping: Arc<AtomicBool>,
    failed_txn: RefCell<Option<TxnError>>,
}

/// Runs a script with `KEYS`/`ARGV`, sending each `redis.call` to `call`
/// (the caller's transaction). `sha` names the script in error replies.
pub fn run_script<'c>(
    body: &[u8],
    sha: &str,
    access: Access,
    keys: &[Bytes],
    argv: &[Bytes],
    call: &'c mut ScriptCall<'c>,
) -> Result<Reply, Stop> {
    let (declared, shebang_len) = match parse_shebang(body) {
        Ok(parsed) => parsed,
        Err(reply) => return Ok(reply),
    };
    let access = if declared == Access::ReadOnly {
        Access::ReadOnly
    } else {
        access
    };
    let lua = match new_vm() {
        Ok(lua) => lua,
        Err(err) => return Ok(Reply::error(format!("ERR {err}"))),
    };
    let stopping = Arc::new(AtomicBool::new(false));
    let timed_out = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    {
        let stopping = Arc::clone(&stopping);
        let timed_out = Arc::clone(&timed_out);
        // A global hook: coroutines the script creates inherit it.
        let hooked = lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTION_INTERVAL),
            move |_, _| {
                if started.elapsed() > SCRIPT_TIME_LIMIT {
                    timed_out.store(true, Ordering::Relaxed);
                    stopping.store(true, Ordering::Relaxed);
                }
                if stopping.load(Ordering::Relaxed) {
                    Err(mlua::Error::runtime("script stopped"))
                } else {
                    Ok(VmState::Continue)
                }
            },
        );
        if let Err(err) = hooked {
            return Ok(Reply::error(format!("ERR {err}")));
        }
    }
    let state = RunState {
        call: RefCell::new(call),
        access,
        resp: Cell::new(Protocol::Resp2),
        stopping: Arc::clone(&stopping),
        failed_txn: RefCell::new(None),
    };
    let outcome = lua.scope(|scope| {
        let call = scope.create_function(|lua, args: MultiValue| {
            redis_call(lua, &state, args).and_then(|reply| match reply {
                Err(text) => Err(raise(text)),
                Ok(Reply::Error(text)) => Err(raise(error_table_text(&format!("-{text}")))),
                Ok(reply) => reply_to_lua(lua, reply, 0, state.resp.get()),
            })
        })?;
        let pcall = scope.create_function(|lua, args: MultiValue| {
            match redis_call(lua, &state, args)? {
                Err(text) => call_error_table(lua, text).map(Value::Table),
                Ok(reply) => reply_to_lua(lua, reply, 0, state.resp.get()),
            }
        })?;
        let setresp = scope.create_function(|_, args: MultiValue| {
            state.resp.set(setresp_protocol(&args)?);
            Ok(())
        })?;
        let check_stop = scope.create_function(|_, ()| {
            if state.stopping.load(Ordering::Relaxed) {
                Err(mlua::Error::runtime("script stopped"))
            } else {
                Ok(())
            }
        })?;
        install_globals(
            &lua,
            [("call", call), ("pcall", pcall), ("setresp", setresp)],
            keys,
            argv,
        )?;
        lualib::install(&lua)?;
        lua.load(PRELUDE).set_name(PRELUDE_CHUNK).call::<()>((
            check_stop,
            lua.create_function(error_text)?,
            lua.create_function(handler_value)?,
        ))?;
        let script = match lua
            .load(&body[shebang_len..])
            .set_name(SCRIPT_CHUNK)
            .into_function()
        {
            Ok(script) => script,
            Err(err) => return Ok(compile_error(&err)),
        };
        let handler = lua.create_function(locate_error)?;
        let xpcall: Function = lua.globals().raw_get("xpcall")?;
        let mut results = xpcall.call::<MultiValue>((script, handler))?.into_iter();
        let ok = matches!(results.next(), Some(Value::Boolean(true)));
        let first = results.next().unwrap_or(Value::Nil);
        Ok(if ok {
            lua_to_reply(first, 0, state.resp.get())
        } else {
            script_error_reply(first, sha)
        })
    });
    if let Some(err) = state.failed_txn.into_inner() {
        return Err(Stop::Txn(err));
    }
    if timed_out.load(Ordering::Relaxed) {
        return Err(Stop::TimeLimit);
    }
    Ok(match outcome {
        Ok(reply) => reply,
        Err(err) => script_error_reply(Value::Error(Box::new(err)), sha),
    })
}

/// Sets `redis` (with the run's own functions `bound`), `KEYS` and `ARGV`
/// (before the globals become read-only).
fn install_globals(
    lua: &Lua,
    bound: [(&str, Function); 3],
    keys: &[Bytes],
    argv: &[Bytes],
) -> mlua::Result<()> {
    let redis = lua.create_table()?;
    for (name, function) in bound {
        redis.raw_set(name, function)?;
    }
    redis.raw_set("sha1hex", lua.create_function(lua_sha1hex)?)?;
    redis.raw_set("error_reply", lua.create_function(lua_error_reply)?)?;
    redis.raw_set("status_reply", lua.create_function(lua_status_reply)?)?;
    redis.raw_set("log", lua.create_function(lua_log)?)?;
    redis.raw_set(
        "replicate_commands",
        lua.create_function(|_, _: MultiValue| Ok(true))?,
    )?;
    redis.raw_set("set_repl", lua.create_function(lua_set_repl)?)?;
    for (name, value) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        redis.raw_set(name, value)?;
    }
    redis.raw_set("REDIS_VERSION", REDIS_VERSION)?;
    redis.raw_set("REDIS_VERSION_NUM", REDIS_VERSION_NUM)?;
    let globals = lua.globals();
    globals.raw_set("redis", redis)?;
    globals.raw_set("KEYS", string_array(lua, keys)?)?;
    globals.raw_set("ARGV", string_array(lua, argv)?)?;
    Ok(())
}

fn string_array(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    let table = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        table.raw_seti(i + 1, lua.create_string(item)?)?;
    }
    Ok(table)
}

fn error_table(lua: &Lua, text: String) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.raw_set("err", text)?;
    Ok(table)
}

/// The error table of a failed `redis.pcall` (or of an error inside a
/// reply): Redis marks these, as its error statistics already counted
/// them, and scripts can see the mark.
fn call_error_table(lua: &Lua, text: String) -> mlua::Result<Table> {
    let table = error_table(lua, text)?;
    table.raw_set("ignore_error_stats_update", true)?;
    Ok(table)
}

/// Runs one `redis.call`/`redis.pcall`: `Ok(Err(text))` is a bad call
/// (unknown command, wrong arity...) and `Ok(Ok(Reply::Error))` the
/// command's own error, both raised by `call` and returned by `pcall`;
/// `Err` stops the script.
fn redis_call(
    lua: &Lua,
    state: &RunState<'_>,
    args: MultiValue,
) -> mlua::Result<Result<Reply, String>> {
    if state.stopping.load(Ordering::Relaxed) {
        return Err(mlua::Error::runtime("script stopped"));
    }
    let command = match script_command(lua, args, state.access) {
        Ok(command) => command,
        Err(text) => return Ok(Err(error_table_text(&text))),
    };
    let result = {
        let mut call = state
            .call
            .try_borrow_mut()
            .map_err(|_| mlua::Error::RecursiveMutCallback)?;
        (*call)(command, state.resp.get())
    };
    match result {
        Ok(reply) => Ok(Ok(reply)),
        Err(err) => {
            *state.failed_txn.borrow_mut() = Some(err);
            state.stopping.store(true, Ordering::Relaxed);
            Err(mlua::Error::runtime("script stopped"))
        }
    }
}

/// Builds the command a script asked for; `Err` is Redis's message for a
/// bad call (without its `ERR` code).
fn script_command(lua: &Lua, args: MultiValue, access: Access) -> Result<Command, String> {
    if args.is_empty() {
        return Err("Please specify at least one argument for this redis lib call".into());
    }
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
                return Err("Lua redis lib command arguments must be strings or integers".into());
            }
        }
    }
    let resolved = match command::resolve(&argv) {
        Ok(resolved) => resolved,
        Err(Reply::Error(text)) if text.starts_with("ERR unknown subcommand") => {
            return Err(format!("-{text}"));
        }
        Err(_) if command::lookup(&argv[0]).is_some() => {
            return Err("Wrong number of args calling Redis command from script".into());
        }
        Err(_) => return Err("Unknown Redis command called from script".into()),
    };
    let denied = resolved.spec.has_flag(flags::NOSCRIPT)
        || resolved
            .subcommand
            .is_some_and(|sub| sub.has_flag(flags::NOSCRIPT));
    if denied {
        return Err("This Redis command is not allowed from script".into());
    }
    if access == Access::ReadOnly && resolved.spec.is_write() {
        return Err("Write commands are not allowed from read-only scripts.".into());
    }
    argv.remove(0);
    Ok(Command {
        spec: resolved.spec,
        subcommand: resolved.subcommand,
        args: argv,
    })
}

/// The protocol `redis.setresp(n)` asks for (Redis's wording for bad calls).
fn setresp_protocol(args: &MultiValue) -> mlua::Result<Protocol> {
    let [version] = args.iter().collect::<Vec<_>>()[..] else {
        return Err(raise("ERR redis.setresp() requires one argument.".into()));
    };
    // Lua's `tonumber` view of the argument, truncated like C's cast.
    let number = match version {
        Value::Integer(n) => *n as f64,
        Value::Number(n) => *n,
        Value::String(text) => text
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .unwrap_or(0.0),
        _ => 0.0,
    };
    match number as i64 {
        2 => Ok(Protocol::Resp2),
        3 => Ok(Protocol::Resp3),
        _ => Err(raise("ERR RESP version must be 2 or 3.".into())),
    }
}

/// Reply → Lua value (Redis's `redisProtocolToLuaType`): RESP2 shapes, or
/// the RESP3 ones (`{map=}`, `{set=}`, `{double=}`, booleans, nil...) when
/// the script chose RESP3.
pub fn reply_to_lua(lua: &Lua, reply: Reply, depth: usize, resp: Protocol) -> mlua::Result<Value> {
    if depth > MAX_REPLY_DEPTH {
        return Err(raise("ERR reply is nested too deeply".into()));
    }
    if resp == Protocol::Resp3
        && let Some(value) = resp3_to_lua(lua, &reply, depth)?
    {
        return Ok(value);
    }
    Ok(match reply {
        Reply::Simple(text) => {
            let table = lua.create_table()?;
            table.raw_set("ok", lua.create_string(&*text)?)?;
            Value::Table(table)
        }
        Reply::Error(text) => Value::Table(call_error_table(
            lua,
            error_table_text(&format!("-{text}")),
        )?),
        Reply::Integer(n) => Value::Number(n as f64),
        Reply::Bulk(data) => Value::String(lua.create_string(&data)?),
        Reply::NullBulk | Reply::NullArray => Value::Boolean(false),
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.into_iter().enumerate() {
                table.raw_seti(i + 1, reply_to_lua(lua, item, depth + 1, resp)?)?;
            }
            Value::Table(table)
        }
        Reply::Map(pairs) => {
            let table = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (key, value)) in pairs.into_iter().enumerate() {
                table.raw_seti(2 * i + 1, reply_to_lua(lua, key, depth + 1, resp)?)?;
                table.raw_seti(2 * i + 2, reply_to_lua(lua, value, depth + 1, resp)?)?;
            }
            Value::Table(table)
        }
        Reply::Double(value) => Value::String(lua.create_string(format_double(value))?),
        Reply::Boolean(value) => Value::Number(f64::from(u8::from(value))),
        Reply::BigNumber(text) => Value::String(lua.create_string(&*text)?),
        Reply::Verbatim { text, .. } => Value::String(lua.create_string(&text)?),
    })
}

/// The RESP3-only shapes of [`reply_to_lua`]; None for replies shaped as
/// in RESP2.
fn resp3_to_lua(lua: &Lua, reply: &Reply, depth: usize) -> mlua::Result<Option<Value>> {
    let wrap = |field: &str, value: Value| -> mlua::Result<Option<Value>> {
        let table = lua.create_table()?;
        table.raw_set(field, value)?;
        Ok(Some(Value::Table(table)))
    };
    match reply {
        Reply::NullBulk | Reply::NullArray => Ok(Some(Value::Nil)),
        Reply::Boolean(value) => Ok(Some(Value::Boolean(*value))),
        Reply::Double(value) => wrap("double", Value::Number(*value)),
        Reply::BigNumber(text) => wrap("big_number", Value::String(lua.create_string(text)?)),
        Reply::Verbatim { format, text } => {
            let inner = lua.create_table()?;
            inner.raw_set("format", lua.create_string(format)?)?;
            inner.raw_set("string", lua.create_string(text)?)?;
            wrap("verbatim_string", Value::Table(inner))
        }
        Reply::Map(pairs) => {
            let inner = lua.create_table()?;
            for (key, value) in pairs {
                let key = reply_to_lua(lua, key.clone(), depth + 1, Protocol::Resp3)?;
                let value = reply_to_lua(lua, value.clone(), depth + 1, Protocol::Resp3)?;
                if !key.is_nil() {
                    inner.raw_set(key, value)?;
                }
            }
            wrap("map", Value::Table(inner))
        }
        Reply::Set(items) => {
            let inner = lua.create_table()?;
            for item in items {
                let member = reply_to_lua(lua, item.clone(), depth + 1, Protocol::Resp3)?;
                if !member.is_nil() {
                    inner.raw_set(member, true)?;
                }
            }
            wrap("set", Value::Table(inner))
        }
        _ => Ok(None),
    }
}

/// Lua number → integer reply the way C's `(long long)` cast does it on
/// x86-64: truncation, and the "integer indefinite" value for NaN and
/// anything out of range.
fn number_to_integer(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if n.is_nan() || !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// A script's result → reply (Redis's `luaReplyToRedisReply`); `resp` is
/// the protocol the script chose, which decides what booleans become.
pub fn lua_to_reply(value: Value, depth: usize, resp: Protocol) -> Reply {
    if depth > MAX_REPLY_DEPTH {
        return Reply::error("ERR reached lua stack limit");
    }
    match value {
        Value::Boolean(value) if resp == Protocol::Resp3 => Reply::Boolean(value),
        Value::Boolean(true) => Reply::Integer(1),
        Value::Integer(n) => Reply::Integer(n),
        Value::Number(n) => Reply::Integer(number_to_integer(n)),
        Value::String(s) => Reply::bulk(&*s.as_bytes()),
        Value::Table(table) => table_to_reply(&table, depth, resp),
        _ => Reply::NullBulk,
    }
}

fn table_to_reply(table: &Table, depth: usize, resp: Protocol) -> Reply {
    if let Ok(Value::String(err)) = table.raw_get::<Value>("err") {
        return Reply::error(one_line(&err.to_string_lossy()));
    }
    if let Ok(Value::String(ok)) = table.raw_get::<Value>("ok") {
        return Reply::simple(one_line(&ok.to_string_lossy()));
    }
    match table.raw_get::<Value>("double") {
        Ok(Value::Number(n)) => return Reply::Double(n),
        Ok(Value::Integer(n)) => return Reply::Double(n as f64),
        _ => {}
    }
    if let Ok(Value::String(text)) = table.raw_get::<Value>("big_number") {
        return Reply::BigNumber(text.to_string_lossy());
    }
    if let Ok(Value::Table(map)) = table.raw_get::<Value>("map") {
        let pairs = map
            .pairs::<Value, Value>()
            .flatten()
            .map(|(key, value)| {
                (
                    lua_to_reply(key, depth + 1, resp),
                    lua_to_reply(value, depth + 1, resp),
                )
            })
            .collect();
        return Reply::Map(pairs);
    }
    if let Ok(Value::Table(set)) = table.raw_get::<Value>("set") {
        let items = set
            .pairs::<Value, Value>()
            .flatten()
            .map(|(key, _)| lua_to_reply(key, depth + 1, resp))
            .collect();
        return Reply::Set(items);
    }
    if let Ok(Value::Table(verbatim)) = table.raw_get::<Value>("verbatim_string") {
        let format = verbatim.raw_get::<Value>("format");
        let text = verbatim.raw_get::<Value>("string");
        if let (Ok(Value::String(format)), Ok(Value::String(text))) = (format, text) {
            let format = format.as_bytes();
            if let [a, b, c] = format[..] {
                return Reply::Verbatim {
                    format: [a, b, c],
                    text: Bytes::copy_from_slice(&text.as_bytes()),
                };
            }
        }
    }
    let mut items = Vec::new();
    for index in 1.. {
        match table.raw_get::<Value>(index) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(item) => items.push(lua_to_reply(item, depth + 1, resp)),
        }
    }
    Reply::Array(items)
}

/// The error reply of a script that raised `error` (the table built by
/// [`locate_error`], or whatever escaped it).
fn script_error_reply(error: Value, sha: &str) -> Reply {
    let Value::Table(table) = error else {
        let message = match &error {
            Value::String(text) => text.to_string_lossy(),
            Value::Error(err) if matches!(**err, mlua::Error::MemoryError(_)) => {
                "not enough memory".to_string()
            }
            Value::Error(err) => err.to_string(),
            _ => "execution failure".to_string(),
        };
        return Reply::error(one_line(&format!(
            "ERR Error running script {sha}, {message}"
        )));
    };
    let message = match table.raw_get::<Value>("err") {
        Ok(Value::String(text)) => text.to_string_lossy(),
        _ => "ERR Error running script: the error value is not a string".to_string(),
    };
    let source = table.raw_get::<Option<String>>("source").ok().flatten();
    let line = table.raw_get::<Option<i64>>("line").ok().flatten();
    let text = match (source, line) {
        (Some(source), Some(line)) => format!("{message} script: {sha}, on {source}:{line}."),
        _ => message,
    };
    Reply::error(one_line(&text))
}

/// The message handler scripts run under (Redis's
/// `__redis__err__handler`): turns any error into `{err=..., source=...,
/// line=...}`, naming the script line that raised it.
fn locate_error(lua: &Lua, error: Value) -> mlua::Result<Table> {
    let message = match &error {
        Value::Table(table) => match table.raw_get::<Value>("err")? {
            Value::String(text) => Some(text.to_string_lossy()),
            _ => None,
        },
        Value::Error(err) => Some(match raised_reply(err) {
            Some(raised) => raised.0.clone(),
            None => format!("ERR {}", bare_message(err)),
        }),
        other => Some(format!(
            "ERR {}",
            lua.coerce_string(other.clone())
                .ok()
                .flatten()
                .map_or_else(|| lua_type_text(other), |s| s.to_string_lossy())
        )),
    };
    let table = lua.create_table()?;
    if let Some(message) = message {
        table.raw_set("err", message)?;
    }
    // Level 0 is this handler; the first Lua frame above it that is not
    // the sandbox's own code is the script line that failed.
    for level in 1..64 {
        let Some(found) = lua.inspect_stack(level, |debug| {
            let source = debug.source();
            let what = source.what;
            let name = source.source.map(|s| s.into_owned());
            (what, name, debug.current_line())
        }) else {
            break;
        };
        match found {
            ("C", _, _) => continue,
            (_, Some(name), _) if name == PRELUDE_CHUNK => continue,
            (_, Some(name), line) => {
                table.raw_set("source", name)?;
                if let Some(line) = line {
                    table.raw_set("line", line as i64)?;
                }
                break;
            }
            _ => break,
        }
    }
    Ok(table)
}

/// `tostring` of values that are not strings or numbers.
fn lua_type_text(value: &Value) -> String {
    match value {
        Value::Nil => "nil".to_string(),
        Value::Boolean(b) => b.to_string(),
        other => other.type_name().to_string(),
    }
}

/// An mlua error's message without mlua's own decoration.
fn bare_message(err: &mlua::Error) -> String {
    match err {
        mlua::Error::RuntimeError(text) => text.clone(),
        mlua::Error::CallbackError { cause, .. } => bare_message(cause),
        mlua::Error::WithContext { cause, .. } => bare_message(cause),
        other => other.to_string(),
    }
}

/// What `pcall` returns as the error of a caught `redis.call` failure: the
/// plain `CODE message` string (Redis 7's `pcall` does the same).
fn error_text(lua: &Lua, error: Value) -> mlua::Result<Value> {
    match &error {
        Value::Error(err) => match raised_reply(err) {
            Some(raised) => Ok(Value::String(lua.create_string(&raised.0)?)),
            // A library function's error (cjson.decode...) is a plain
            // message string in Redis, not an error object.
            None => Ok(Value::String(lua.create_string(bare_message(err))?)),
        },
        Value::Table(table) => match table.raw_get::<Value>("err")? {
            Value::String(text) => Ok(Value::String(text)),
            _ => Ok(error),
        },
        _ => Ok(error),
    }
}

/// What an `xpcall` handler receives, as in Redis: a `redis.call` error
/// (or another error Redis raises as a reply) as its `{err=}` table, a
/// library function's error as its message string.
fn handler_value(lua: &Lua, error: Value) -> mlua::Result<Value> {
    let Value::Error(err) = &error else {
        return Ok(error);
    };
    match raised_reply(err) {
        Some(raised) => Ok(Value::Table(error_table(lua, raised.0.clone())?)),
        None => Ok(Value::String(lua.create_string(bare_message(err))?)),
    }
}

fn lua_sha1hex(lua: &Lua, args: MultiValue) -> mlua::Result<String> {
    if args.len() != 1 {
        return Err(raise("ERR wrong number of arguments".into()));
    }
    let data = args
        .into_iter()
        .next()
        .and_then(|value| lua.coerce_string(value).ok().flatten())
        .map(|s| s.as_bytes().to_vec())
        .unwrap_or_default();
    Ok(sha1_hex(&data))
}

fn single_string(args: &MultiValue) -> Option<mlua::String> {
    match args.iter().collect::<Vec<_>>().as_slice() {
        [Value::String(text)] => Some(text.clone()),
        _ => None,
    }
}

fn lua_error_reply(lua: &Lua, args: MultiValue) -> mlua::Result<Table> {
    let text = match single_string(&args) {
        Some(text) => {
            let text = text.to_string_lossy();
            if text.starts_with('-') {
                error_table_text(&text)
            } else {
                error_table_text(&format!("-{text}"))
            }
        }
        None => error_table_text("wrong number or type of arguments"),
    };
    error_table(lua, text)
}

fn lua_status_reply(lua: &Lua, args: MultiValue) -> mlua::Result<Table> {
    match single_string(&args) {
        Some(text) => {
            let table = lua.create_table()?;
            table.raw_set("ok", text)?;
            Ok(table)
        }
        None => error_table(lua, error_table_text("wrong number or type of arguments")),
    }
}

fn lua_log(lua: &Lua, args: Variadic<Value>) -> mlua::Result<()> {
    if args.len() < 2 {
        return Err(raise(
            "ERR redis.log() requires two arguments or more.".into(),
        ));
    }
    let level = match &args[0] {
        Value::Integer(n) => *n,
        Value::Number(n) => *n as i64,
        _ => {
            return Err(raise(
                "ERR First argument must be a number (log level).".into(),
            ));
        }
    };
    if !(0..=3).contains(&level) {
        return Err(raise("ERR Invalid debug level.".into()));
    }
    let message = args[1..]
        .iter()
        .filter_map(|value| lua.coerce_string(value.clone()).ok().flatten())
        .map(|s| s.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    match level {
        0 => tracing::debug!(target: "elastickv::lua", "{message}"),
        1 | 2 => tracing::info!(target: "elastickv::lua", "{message}"),
        _ => tracing::warn!(target: "elastickv::lua", "{message}"),
    }
    Ok(())
}

fn lua_set_repl(_: &Lua, args: Variadic<Value>) -> mlua::Result<()> {
    let [flags] = args.as_slice() else {
        return Err(raise("ERR redis.set_repl() requires one argument.".into()));
    };
    let valid = match flags {
        Value::Integer(n) => (0..=3).contains(n),
        Value::Number(n) => (0.0..=3.0).contains(n),
        _ => false,
    };
    if valid {
        // Every write of a script is replicated with its transaction.
        Ok(())
    } else {
        Err(raise(
            "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &str, keys: &[&str], argv: &[&str]) -> Reply {
        let keys: Vec<Bytes> = keys.iter().map(|k| Bytes::from(k.to_string())).collect();
        let argv: Vec<Bytes> = argv.iter().map(|a| Bytes::from(a.to_string())).collect();
        let mut call = |command: Command, _: Protocol| -> Result<Reply, TxnError> {
            Ok(match command.name() {
                "PING" => Reply::simple("PONG"),
                "GET" => Reply::NullBulk,
                "HGETALL" => Reply::Map(vec![(Reply::bulk("f"), Reply::bulk("v"))]),
                "SMEMBERS" => Reply::Set(vec![Reply::bulk("m")]),
                "ZSCORE" => Reply::Double(2.5),
                _ => Reply::error(
                    "WRONGTYPE Operation against a key holding the wrong kind of value",
                ),
            })
        };
        let sha = sha1_hex(body.as_bytes());
        match run_script(
            body.as_bytes(),
            &sha,
            Access::ReadWrite,
            &keys,
            &argv,
            &mut call,
        ) {
            Ok(reply) => reply,
            Err(stop) => panic!("stopped: {stop:?}"),
        }
    }

    fn error_of(reply: Reply) -> String {
        match reply {
            Reply::Error(text) => text.to_string(),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn numbers_truncate_like_a_c_cast() {
        assert_eq!(number_to_integer(3.9), 3);
        assert_eq!(number_to_integer(-3.9), -3);
        assert_eq!(number_to_integer(-0.5), 0);
        assert_eq!(number_to_integer(1e100), i64::MIN);
        assert_eq!(number_to_integer(-1e100), i64::MIN);
        assert_eq!(number_to_integer(f64::NAN), i64::MIN);
        assert_eq!(run("return 1e100", &[], &[]), Reply::Integer(i64::MIN));
    }

    #[test]
    fn error_tables_get_a_code() {
        assert_eq!(error_table_text("-MY bad"), "MY bad");
        assert_eq!(error_table_text("-x"), "ERR x");
        assert_eq!(error_table_text("oops"), "ERR oops");
        assert_eq!(error_table_text("-WRONGTYPE a b\r\n"), "WRONGTYPE a b");
    }

    #[test]
    fn errors_name_the_script_line() {
        let sha = sha1_hex(b"\nreturn redis.call('INCR', 'k')");
        assert_eq!(
            error_of(run("\nreturn redis.call('INCR', 'k')", &[], &[])),
            format!(
                "WRONGTYPE Operation against a key holding the wrong kind of value script: {sha}, on @user_script:2."
            )
        );
        let sha = sha1_hex(b"error('boom')");
        assert_eq!(
            error_of(run("error('boom')", &[], &[])),
            format!("ERR user_script:1: boom script: {sha}, on @user_script:1.")
        );
        let sha = sha1_hex(b"return nope");
        assert_eq!(
            error_of(run("return nope", &[], &[])),
            format!(
                "ERR user_script:1: Script attempted to access nonexistent global variable 'nope' script: {sha}, on @user_script:1."
            )
        );
        let sha = sha1_hex(b"x = 1");
        assert_eq!(
            error_of(run("x = 1", &[], &[])),
            format!(
                "ERR user_script:1: Attempt to modify a readonly table script: {sha}, on @user_script:1."
            )
        );
    }

    #[test]
    fn pcall_sees_redis_errors_as_strings() {
        assert_eq!(
            run(
                "local ok, e = pcall(redis.call, 'INCR', 'k'); return {tostring(ok), e}",
                &[],
                &[]
            ),
            Reply::Array(vec![
                Reply::bulk("false"),
                Reply::bulk("WRONGTYPE Operation against a key holding the wrong kind of value")
            ])
        );
        assert_eq!(
            run("return redis.pcall('INCR', 'k')", &[], &[]),
            Reply::error("WRONGTYPE Operation against a key holding the wrong kind of value")
        );
    }

    #[test]
    fn sandbox_hides_host_access_and_binary_chunks() {
        for name in [
            "os", "io", "dofile", "loadfile", "require", "print", "setfenv", "debug",
        ] {
            let reply = run(&format!("return type({name})"), &[], &[]);
            assert!(
                error_of(reply).contains("nonexistent global variable"),
                "{name} is visible"
            );
        }
        assert_eq!(
            run(
                "return loadstring(string.dump(function() return 1 end))",
                &[],
                &[]
            ),
            Reply::NullBulk
        );
        assert_eq!(
            run("return loadstring('return 7')()", &[], &[]),
            Reply::Integer(7)
        );
    }

    #[test]
    fn a_runaway_script_hits_the_time_limit_even_under_pcall() {
        let mut call = |_: Command, _: Protocol| -> Result<Reply, TxnError> { Ok(Reply::ok()) };
        let body = b"while true do pcall(function() while true do end end) end";
        let started = Instant::now();
        let result = run_script(body, "x", Access::ReadWrite, &[], &[], &mut call);
        assert!(matches!(result, Err(Stop::TimeLimit)), "{result:?}");
        assert!(started.elapsed() < SCRIPT_TIME_LIMIT + Duration::from_secs(5));
    }

    #[test]
    fn memory_is_bounded() {
        let reply = run("return #string.rep('x', 300 * 1024 * 1024)", &[], &[]);
        assert!(error_of(reply).contains("not enough memory"));
        assert_eq!(
            run("return #string.rep('x', 1024 * 1024)", &[], &[]),
            Reply::Integer(1024 * 1024)
        );
    }

    #[test]
    fn coroutines_cannot_hide_a_runaway_loop() {
        let mut call = |_: Command, _: Protocol| -> Result<Reply, TxnError> { Ok(Reply::ok()) };
        let body = b"while true do coroutine.resume(coroutine.create(function() while true do end end)) end";
        let result = run_script(body, "x", Access::ReadWrite, &[], &[], &mut call);
        assert!(matches!(result, Err(Stop::TimeLimit)), "{result:?}");
    }

    #[test]
    fn self_referencing_tables_do_not_overflow_the_stack() {
        let reply = run("local t = {} t[1] = t return t", &[], &[]);
        let mut depth = 0;
        let mut current = &reply;
        while let Reply::Array(items) = current {
            depth += 1;
            current = &items[0];
        }
        assert!(depth > 10, "{depth}");
        assert!(current.is_error());
    }

    #[test]
    fn setresp_picks_the_shapes_replies_reach_lua_in() {
        // RESP2 (the default): flat pairs, a plain array, a string, false.
        assert_eq!(
            run("return redis.call('HGETALL', 'h')", &[], &[]),
            Reply::Array(vec![Reply::bulk("f"), Reply::bulk("v")])
        );
        assert_eq!(
            run(
                "return {redis.call('ZSCORE', 'z', 'm'), redis.call('GET', 'k')}",
                &[],
                &[]
            ),
            Reply::Array(vec![Reply::bulk("2.5"), Reply::NullBulk])
        );
        // RESP3: {map=}, {set=}, {double=}, nil.
        let script = "redis.setresp(3) \
            local h = redis.call('HGETALL', 'h') \
            local s = redis.call('SMEMBERS', 's') \
            local z = redis.call('ZSCORE', 'z', 'm') \
            return {h.map.f, tostring(s.set.m), z.double * 2, tostring(redis.call('GET', 'k'))}";
        assert_eq!(
            run(script, &[], &[]),
            Reply::Array(vec![
                Reply::bulk("v"),
                Reply::bulk("true"),
                Reply::Integer(5),
                Reply::bulk("nil"),
            ])
        );
        // Returned RESP3 shapes stay typed; the encoder downgrades them.
        assert_eq!(
            run(
                "redis.setresp(3) return redis.call('HGETALL', 'h')",
                &[],
                &[]
            ),
            Reply::Map(vec![(Reply::bulk("f"), Reply::bulk("v"))])
        );
        assert_eq!(
            run(
                "redis.setresp(3) return redis.call('SMEMBERS', 's')",
                &[],
                &[]
            ),
            Reply::Set(vec![Reply::bulk("m")])
        );
        assert_eq!(
            run("redis.setresp(3) return {true, false}", &[], &[]),
            Reply::Array(vec![Reply::Boolean(true), Reply::Boolean(false)])
        );
        assert_eq!(run("return {double = 1.5}", &[], &[]), Reply::Double(1.5));
        assert_eq!(
            run(
                "return {big_number = '123456789012345678901234567890'}",
                &[],
                &[]
            ),
            Reply::BigNumber("123456789012345678901234567890".into())
        );
        assert_eq!(
            run(
                "return {verbatim_string = {format = 'txt', string = 'hi'}}",
                &[],
                &[]
            ),
            Reply::Verbatim {
                format: *b"txt",
                text: Bytes::from_static(b"hi"),
            }
        );
        assert!(
            error_of(run("redis.setresp(4)", &[], &[]))
                .starts_with("ERR RESP version must be 2 or 3. script:")
        );
        assert!(
            error_of(run("redis.setresp()", &[], &[]))
                .starts_with("ERR redis.setresp() requires one argument. script:")
        );
    }

    #[test]
    fn xpcall_handlers_see_tables_for_redis_errors_and_strings_otherwise() {
        assert_eq!(
            run(
                "return {xpcall(function() redis.call('INCR', 'k') end, function(e) return type(e) .. ' ' .. e.err end)}",
                &[],
                &[]
            ),
            Reply::Array(vec![
                Reply::NullBulk,
                Reply::bulk(
                    "table WRONGTYPE Operation against a key holding the wrong kind of value"
                )
            ])
        );
        assert_eq!(
            run(
                "return {xpcall(function() redis.setresp(7) end, function(e) return type(e) end)}",
                &[],
                &[]
            ),
            Reply::Array(vec![Reply::NullBulk, Reply::bulk("table")])
        );
        assert_eq!(
            run(
                "return {xpcall(function() error('boom') end, function(e) return e end)}",
                &[],
                &[]
            ),
            Reply::Array(vec![Reply::NullBulk, Reply::bulk("user_script:1: boom")])
        );
    }

    #[test]
    fn pcall_of_a_failing_library_function_gives_its_message() {
        assert_eq!(
            run(
                "local ok, e = pcall(redis.setresp, 9) return {tostring(ok), e}",
                &[],
                &[]
            ),
            Reply::Array(vec![
                Reply::bulk("false"),
                Reply::bulk("ERR RESP version must be 2 or 3.")
            ])
        );
    }

    #[test]
    fn shebang_flags_are_parsed() {
        assert_eq!(parse_shebang(b"return 1").unwrap(), (Access::ReadWrite, 0));
        assert_eq!(
            parse_shebang(b"#!lua flags=no-writes,allow-stale\nreturn 1").unwrap(),
            (Access::ReadOnly, 33)
        );
        assert!(parse_shebang(b"#!python\nreturn 1").is_err());
        assert!(parse_shebang(b"#!lua flags=bogus\nreturn 1").is_err());
        assert!(parse_shebang(b"#!lua").is_err());
    }
}
