//! String commands: GET/SET family, counters, ranges, MGET/MSET.

use bytes::Bytes;

use super::ctx::{CmdResult, Ctx};
use crate::api::redis::args::{
    self, Command, ERR_NAN_OR_INFINITY, ERR_NOT_FLOAT, ERR_NOT_INTEGER, ERR_OVERFLOW,
    ERR_STRING_TOO_LONG, ERR_SYNTAX, error, invalid_expire_time, is_word, parse_i64,
};
use crate::api::redis::reply::Reply;
use crate::clock::{Timestamp, physical_ms};
use crate::model::redis::{Body, ModelError};
use crate::txn::KvBackend;

/// Largest string Redis accepts (`proto-max-bulk-len` default).
pub const MAX_STRING_LEN: usize = 512 * 1024 * 1024;

/// A string key's value and deadline; WRONGTYPE for other types.
pub fn read_string<B: KvBackend>(
    ctx: &mut Ctx<B>,
    key: &[u8],
) -> Result<Option<(Vec<u8>, Timestamp)>, ModelError> {
    match ctx.db.meta(key)? {
        None => Ok(None),
        Some(meta) => match meta.body {
            Body::String(value) => Ok(Some((value, meta.expire_at))),
            _ => Err(ModelError::WrongType),
        },
    }
}

/// Replaces `key` (of any type) with a string.
pub fn write_string<B: KvBackend>(
    ctx: &mut Ctx<B>,
    key: &[u8],
    value: Vec<u8>,
    expire_at: Timestamp,
) {
    ctx.db.create(key, &Body::String(value), expire_at);
}

/// Updates a string in place when it existed (keeping its TTL), or
/// creates it (clearing any stale rows of an expired incarnation).
pub fn store_string<B: KvBackend>(
    ctx: &mut Ctx<B>,
    key: &[u8],
    value: Vec<u8>,
    expire_at: Timestamp,
    existed: bool,
) {
    if existed {
        ctx.db.put_meta(key, &Body::String(value), expire_at);
    } else {
        write_string(ctx, key, value, 0);
    }
}

/// Relative or absolute expiry units of SET/GETEX/EXPIRE...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireUnit {
    Seconds,
    Millis,
    UnixSeconds,
    UnixMillis,
}

/// Turns an expiry argument into an absolute Unix-ms deadline, with
/// Redis's checks (positive, no overflow) when `must_be_positive`.
pub fn deadline_ms(
    arg: &[u8],
    unit: ExpireUnit,
    now_ms: u64,
    command: &str,
    must_be_positive: bool,
) -> Result<i64, Reply> {
    let value = parse_i64(arg)?;
    if must_be_positive && value <= 0 {
        return Err(invalid_expire_time(command));
    }
    let invalid = || invalid_expire_time(command);
    let ms = match unit {
        ExpireUnit::Seconds | ExpireUnit::UnixSeconds => {
            value.checked_mul(1000).ok_or_else(invalid)?
        }
        ExpireUnit::Millis | ExpireUnit::UnixMillis => value,
    };
    match unit {
        ExpireUnit::Seconds | ExpireUnit::Millis => {
            ms.checked_add(now_ms as i64).ok_or_else(invalid)
        }
        _ => Ok(ms),
    }
}

/// The HLC deadline of a Unix-ms instant (callers ensure it is positive).
pub fn to_expire_at(ms: i64) -> Timestamp {
    crate::clock::compose(ms.max(1) as u64, 0)
}

pub fn get<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    Ok(read_string(ctx, &cmd.args[0])?.map_or(Reply::NullBulk, |(v, _)| Reply::bulk(v)))
}

pub fn set<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let value = cmd.args[1].to_vec();
    let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
    let mut expiry: Option<(ExpireUnit, &Bytes)> = None;
    let mut i = 2;
    while i < cmd.args.len() {
        let arg = &cmd.args[i];
        let next = cmd.args.get(i + 1);
        if is_word(arg, "NX") && !xx {
            nx = true;
        } else if is_word(arg, "XX") && !nx {
            xx = true;
        } else if is_word(arg, "GET") {
            get = true;
        } else if is_word(arg, "KEEPTTL") && expiry.is_none() {
            keepttl = true;
        } else if let (Some(unit), Some(next)) = (expire_word(arg), next) {
            if expiry.is_some() || keepttl {
                return Err(args::error(ERR_SYNTAX).into());
            }
            expiry = Some((unit, next));
            i += 1;
        } else {
            return Err(args::error(ERR_SYNTAX).into());
        }
        i += 1;
    }
    let now = ctx.now_ms();
    let deadline = match expiry {
        Some((unit, arg)) => Some(deadline_ms(arg, unit, now, "set", true)?),
        None => None,
    };
    let old = ctx.db.meta(key)?;
    let old_value = match &old {
        Some(meta) => match &meta.body {
            Body::String(v) => Some(v.clone()),
            _ if get => return Err(error(args::ERR_WRONGTYPE).into()),
            _ => None,
        },
        None => None,
    };
    let exists = old.is_some();
    let reply_skip = if get {
        old_value.clone().map_or(Reply::NullBulk, Reply::bulk)
    } else {
        Reply::NullBulk
    };
    if (nx && exists) || (xx && !exists) {
        return Ok(reply_skip);
    }
    let expire_at = match deadline {
        Some(ms) if ms <= now as i64 => {
            // An instant in the past: the key is set and expires at once.
            ctx.db.drop_rows(key);
            return Ok(if get { reply_skip } else { Reply::ok() });
        }
        Some(ms) => to_expire_at(ms),
        None if keepttl => old.as_ref().map_or(0, |m| m.expire_at),
        None => 0,
    };
    if old_value.is_some() {
        // A live string has no rows but its META row (creating it dropped
        // every other): overwrite in place, no range delete to apply.
        ctx.db.put_meta(key, &Body::String(value), expire_at);
    } else {
        write_string(ctx, key, value, expire_at);
    }
    Ok(if get { reply_skip } else { Reply::ok() })
}

fn expire_word(arg: &[u8]) -> Option<ExpireUnit> {
    if is_word(arg, "EX") {
        Some(ExpireUnit::Seconds)
    } else if is_word(arg, "PX") {
        Some(ExpireUnit::Millis)
    } else if is_word(arg, "EXAT") {
        Some(ExpireUnit::UnixSeconds)
    } else if is_word(arg, "PXAT") {
        Some(ExpireUnit::UnixMillis)
    } else {
        None
    }
}

pub fn setnx<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    if ctx.db.meta(&cmd.args[0])?.is_some() {
        return Ok(Reply::Integer(0));
    }
    write_string(ctx, &cmd.args[0], cmd.args[1].to_vec(), 0);
    Ok(Reply::Integer(1))
}

pub fn setex<B: KvBackend>(
    ctx: &mut Ctx<B>,
    cmd: &Command,
    unit: ExpireUnit,
    name: &str,
) -> CmdResult {
    let ms = deadline_ms(&cmd.args[1], unit, ctx.now_ms(), name, true)?;
    write_string(ctx, &cmd.args[0], cmd.args[2].to_vec(), to_expire_at(ms));
    Ok(Reply::ok())
}

pub fn getset<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let old = read_string(ctx, &cmd.args[0])?;
    write_string(ctx, &cmd.args[0], cmd.args[1].to_vec(), 0);
    Ok(old.map_or(Reply::NullBulk, |(v, _)| Reply::bulk(v)))
}

pub fn getdel<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let old = read_string(ctx, &cmd.args[0])?;
    if old.is_some() {
        ctx.db.drop_rows(&cmd.args[0]);
    }
    Ok(old.map_or(Reply::NullBulk, |(v, _)| Reply::bulk(v)))
}

pub fn getex<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let mut change: Option<Option<i64>> = None;
    let mut i = 1;
    while i < cmd.args.len() {
        let arg = &cmd.args[i];
        if is_word(arg, "PERSIST") && change.is_none() {
            change = Some(None);
        } else if let (Some(unit), Some(next), None) =
            (expire_word(arg), cmd.args.get(i + 1), change)
        {
            change = Some(Some(deadline_ms(next, unit, ctx.now_ms(), "getex", true)?));
            i += 1;
        } else {
            return Err(error(ERR_SYNTAX).into());
        }
        i += 1;
    }
    let Some((value, expire_at)) = read_string(ctx, key)? else {
        return Ok(Reply::NullBulk);
    };
    match change {
        Some(Some(ms)) if ms <= ctx.now_ms() as i64 => ctx.db.drop_rows(key),
        Some(Some(ms)) => ctx
            .db
            .put_meta(key, &Body::String(value.clone()), to_expire_at(ms)),
        Some(None) if expire_at != 0 => ctx.db.put_meta(key, &Body::String(value.clone()), 0),
        _ => {}
    }
    Ok(Reply::bulk(value))
}

pub fn mget<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let mut out = Vec::with_capacity(cmd.args.len());
    for key in &cmd.args {
        out.push(match ctx.db.meta(key)? {
            Some(meta) => match meta.body {
                Body::String(v) => Reply::bulk(v),
                _ => Reply::NullBulk,
            },
            None => Reply::NullBulk,
        });
    }
    Ok(Reply::Array(out))
}

pub fn mset<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command, only_if_none: bool) -> CmdResult {
    if !cmd.args.len().is_multiple_of(2) {
        let name = cmd.name().to_ascii_lowercase();
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for '{name}' command"
        ))
        .into());
    }
    if only_if_none {
        for pair in cmd.args.chunks(2) {
            if ctx.db.meta(&pair[0])?.is_some() {
                return Ok(Reply::Integer(0));
            }
        }
    }
    for pair in cmd.args.chunks(2) {
        write_string(ctx, &pair[0], pair[1].to_vec(), 0);
    }
    Ok(if only_if_none {
        Reply::Integer(1)
    } else {
        Reply::ok()
    })
}

pub fn incr_by<B: KvBackend>(ctx: &mut Ctx<B>, key: &[u8], delta: i64) -> CmdResult {
    let existing = read_string(ctx, key)?;
    let existed = existing.is_some();
    let (current, expire_at) = match existing {
        Some((value, expire_at)) => {
            let n = std::str::from_utf8(&value)
                .ok()
                .and_then(|_| crate::api::redis::resp::parse_redis_int(&value))
                .ok_or_else(|| error(ERR_NOT_INTEGER))?;
            (n, expire_at)
        }
        None => (0, 0),
    };
    let next = current
        .checked_add(delta)
        .ok_or_else(|| error(ERR_OVERFLOW))?;
    store_string(ctx, key, next.to_string().into_bytes(), expire_at, existed);
    Ok(Reply::Integer(next))
}

pub fn incr_family<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let delta = match cmd.name() {
        "INCR" => 1,
        "DECR" => -1,
        "INCRBY" => parse_i64(&cmd.args[1])?,
        _ => {
            let d = parse_i64(&cmd.args[1])?;
            d.checked_neg()
                .ok_or_else(|| error("ERR decrement would overflow"))?
        }
    };
    incr_by(ctx, key, delta)
}

/// Formats a float the way INCRBYFLOAT/HINCRBYFLOAT print it: plain
/// decimal, no exponent, trailing zeros trimmed.
pub fn format_float_plain(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    if value.fract() == 0.0 {
        // Exact digits, as Redis's fixed-point long-double printing gives.
        return format!("{value:.0}");
    }
    format!("{value}")
}

pub fn incrbyfloat<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    // Redis's order: type, current value, then the increment.
    let existing = read_string(ctx, key)?;
    let existed = existing.is_some();
    let (current, expire_at) = match existing {
        Some((value, expire_at)) => (
            args::parse_double(&value).ok_or_else(|| error(ERR_NOT_FLOAT))?,
            expire_at,
        ),
        None => (0.0, 0),
    };
    let delta = args::parse_double(&cmd.args[1]).ok_or_else(|| error(ERR_NOT_FLOAT))?;
    let next = current + delta;
    if !next.is_finite() {
        return Err(error(ERR_NAN_OR_INFINITY).into());
    }
    let text = format_float_plain(next);
    store_string(ctx, key, text.clone().into_bytes(), expire_at, existed);
    Ok(Reply::bulk(text))
}

pub fn append<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let existing = read_string(ctx, key)?;
    let existed = existing.is_some();
    let (mut value, expire_at) = existing.unwrap_or_default();
    if value.len() + cmd.args[1].len() > MAX_STRING_LEN {
        return Err(error(ERR_STRING_TOO_LONG).into());
    }
    value.extend_from_slice(&cmd.args[1]);
    let len = value.len() as i64;
    store_string(ctx, key, value, expire_at, existed);
    Ok(Reply::Integer(len))
}

pub fn strlen<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    Ok(Reply::Integer(
        read_string(ctx, &cmd.args[0])?.map_or(0, |(v, _)| v.len() as i64),
    ))
}

/// Redis's clamp of a `[start, end]` pair with negative indexes over
/// `len` items; `None` when the range is empty.
pub fn clamp_range(start: i64, end: i64, len: i64) -> Option<(i64, i64)> {
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    if start < 0 {
        start = 0;
    }
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start, end))
}

pub fn getrange<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let start = parse_i64(&cmd.args[1])?;
    let end = parse_i64(&cmd.args[2])?;
    let Some((value, _)) = read_string(ctx, &cmd.args[0])? else {
        return Ok(Reply::bulk(""));
    };
    if start < 0 && end < 0 && start > end {
        return Ok(Reply::bulk(""));
    }
    // GETRANGE, unlike list ranges, clamps a negative end to 0.
    let len = value.len() as i64;
    let end = if end < 0 { (len + end).max(0) } else { end };
    Ok(match clamp_range(start, end, len) {
        Some((s, e)) => Reply::bulk(&value[s as usize..=e as usize]),
        None => Reply::bulk(""),
    })
}

pub fn setrange<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let offset = parse_i64(&cmd.args[1])?;
    if offset < 0 {
        return Err(error("ERR offset is out of range").into());
    }
    let patch = &cmd.args[2];
    let existing = read_string(ctx, key)?;
    let offset = offset as usize;
    if patch.is_empty() {
        return Ok(Reply::Integer(existing.map_or(0, |(v, _)| v.len() as i64)));
    }
    if offset + patch.len() > MAX_STRING_LEN {
        return Err(error(ERR_STRING_TOO_LONG).into());
    }
    let existed = existing.is_some();
    let (mut value, expire_at) = existing.unwrap_or_default();
    if value.len() < offset + patch.len() {
        value.resize(offset + patch.len(), 0);
    }
    value[offset..offset + patch.len()].copy_from_slice(patch);
    let len = value.len() as i64;
    store_string(ctx, key, value, expire_at, existed);
    Ok(Reply::Integer(len))
}

/// Remaining ms of a deadline relative to `now_ms` (at least 0).
pub fn remaining_ms(expire_at: Timestamp, now_ms: u64) -> i64 {
    physical_ms(expire_at).saturating_sub(now_ms) as i64
}
