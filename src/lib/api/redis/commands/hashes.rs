//! Hash commands.

use super::ctx::{CmdResult, Ctx};
use super::cursors::CursorKind;
use super::keyspace::parse_scan_options;
use super::strings::format_float_plain;
use crate::api::redis::args::{
    self, Command, ERR_HASH_NOT_FLOAT, ERR_HASH_NOT_INTEGER, ERR_NAN_OR_INFINITY, ERR_NOT_FLOAT,
    ERR_OVERFLOW, error, parse_cursor, parse_i64,
};
use crate::api::redis::glob::glob_match;
use crate::api::redis::reply::Reply;
use crate::model::redis::Kind;
use crate::model::redis::layout::{TAG_HASH, TAG_SET, TAG_ZMEMBER};
use crate::storage::Direction;
use crate::txn::KvBackend;

/// Collections at or below this size answer a SCAN-family call at once
/// (as Redis does for its compact encodings).
pub const SCAN_ALL_AT_ONCE: u64 = 128;

pub fn hset<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let rest = &cmd.args[1..];
    if !rest.len().is_multiple_of(2) {
        let name = cmd.name().to_ascii_lowercase();
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for '{name}' command"
        ))
        .into());
    }
    let pairs: Vec<(&[u8], &[u8])> = rest
        .chunks(2)
        .map(|p| (p[0].as_ref(), p[1].as_ref()))
        .collect();
    let added = ctx.db.hash_set(&cmd.args[0], &pairs, false)?;
    Ok(if cmd.name() == "HMSET" {
        Reply::ok()
    } else {
        Reply::Integer(added as i64)
    })
}

pub fn hsetnx<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let added = ctx.db.hash_set(
        &cmd.args[0],
        &[(cmd.args[1].as_ref(), cmd.args[2].as_ref())],
        true,
    )?;
    Ok(Reply::Integer(added as i64))
}

pub fn hget<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    Ok(ctx
        .db
        .hash_get(&cmd.args[0], &cmd.args[1])?
        .map_or(Reply::NullBulk, Reply::bulk))
}

pub fn hmget<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let exists = ctx.db.meta_of(key, Kind::Hash)?.is_some();
    let mut out = Vec::new();
    for field in &cmd.args[1..] {
        let value = if exists {
            ctx.db.member_get(key, TAG_HASH, field)?
        } else {
            None
        };
        out.push(value.map_or(Reply::NullBulk, Reply::bulk));
    }
    Ok(Reply::Array(out))
}

pub fn hgetall<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let pairs = ctx.db.hash_all(&cmd.args[0])?;
    Ok(Reply::Map(
        pairs
            .into_iter()
            .map(|(f, v)| (Reply::bulk(f), Reply::bulk(v)))
            .collect(),
    ))
}

pub fn hkeys<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command, values: bool) -> CmdResult {
    let pairs = ctx.db.hash_all(&cmd.args[0])?;
    Ok(Reply::Array(
        pairs
            .into_iter()
            .map(|(f, v)| Reply::bulk(if values { v } else { f }))
            .collect(),
    ))
}

pub fn hdel<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let fields: Vec<&[u8]> = cmd.args[1..].iter().map(|f| f.as_ref()).collect();
    Ok(Reply::Integer(
        ctx.db.hash_del(&cmd.args[0], &fields)? as i64
    ))
}

pub fn hexists<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    Ok(Reply::Integer(i64::from(
        ctx.db.hash_get(&cmd.args[0], &cmd.args[1])?.is_some(),
    )))
}

pub fn hlen<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    Ok(Reply::Integer(
        ctx.db.load_counted(&cmd.args[0], Kind::Hash)?.count as i64,
    ))
}

pub fn hstrlen<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    Ok(Reply::Integer(
        ctx.db
            .hash_get(&cmd.args[0], &cmd.args[1])?
            .map_or(0, |v| v.len() as i64),
    ))
}

pub fn hincrby<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let delta = parse_i64(&cmd.args[2])?;
    let current = match ctx.db.hash_get(&cmd.args[0], &cmd.args[1])? {
        Some(v) => crate::api::redis::resp::parse_redis_int(&v)
            .ok_or_else(|| error(ERR_HASH_NOT_INTEGER))?,
        None => 0,
    };
    let next = current
        .checked_add(delta)
        .ok_or_else(|| error(ERR_OVERFLOW))?;
    let text = next.to_string();
    ctx.db.hash_set(
        &cmd.args[0],
        &[(cmd.args[1].as_ref(), text.as_bytes())],
        false,
    )?;
    Ok(Reply::Integer(next))
}

pub fn hincrbyfloat<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let delta = args::parse_double(&cmd.args[2]).ok_or_else(|| error(ERR_NOT_FLOAT))?;
    let current = match ctx.db.hash_get(&cmd.args[0], &cmd.args[1])? {
        Some(v) => args::parse_double(&v).ok_or_else(|| error(ERR_HASH_NOT_FLOAT))?,
        None => 0.0,
    };
    let next = current + delta;
    if !next.is_finite() {
        return Err(error(ERR_NAN_OR_INFINITY).into());
    }
    let text = format_float_plain(next);
    ctx.db.hash_set(
        &cmd.args[0],
        &[(cmd.args[1].as_ref(), text.as_bytes())],
        false,
    )?;
    Ok(Reply::bulk(text))
}

/// HSCAN/SSCAN/ZSCAN over member rows. Small collections are returned
/// whole with cursor 0; larger ones page by member order.
pub fn collection_scan<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command, kind: Kind) -> CmdResult {
    let key = &cmd.args[0];
    let cursor = parse_cursor(&cmd.args[1])?;
    let options = parse_scan_options(&cmd.args[2..], false)?;
    let (tag, cursor_kind) = match kind {
        Kind::Hash => (TAG_HASH, CursorKind::Hash),
        Kind::Set => (TAG_SET, CursorKind::Set),
        _ => (TAG_ZMEMBER, CursorKind::ZSet),
    };
    let loaded = ctx.db.load_counted(key, kind)?;
    let empty = || Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())]);
    if !loaded.existed {
        return Ok(empty());
    }
    let (rows, next) = if loaded.count <= SCAN_ALL_AT_ONCE {
        if cursor != 0 {
            return Ok(empty());
        }
        (ctx.db.member_all(key, tag)?, None)
    } else {
        let resume = ctx.exec.cursors.lock().resume(cursor, cursor_kind, key);
        let mut rows = ctx.db.member_scan(
            key,
            tag,
            resume.as_deref(),
            None,
            options.count.saturating_add(1),
            Direction::Forward,
        )?;
        let next = if rows.len() > options.count {
            rows.pop().map(|(m, _)| m)
        } else {
            None
        };
        (rows, next)
    };
    let next_cursor = match next {
        Some(position) => ctx.exec.cursors.lock().store(cursor_kind, key, position),
        None => 0,
    };
    let mut items = Vec::new();
    for (member, value) in rows {
        if options
            .pattern
            .as_ref()
            .is_some_and(|p| !glob_match(p, &member))
        {
            continue;
        }
        items.push(Reply::bulk(&member));
        match kind {
            Kind::Hash if !options.novalues => items.push(Reply::bulk(value)),
            Kind::ZSet => {
                let score = crate::model::redis::collections::decode_score(key, &value)?;
                items.push(Reply::bulk(crate::api::redis::reply::format_double(score)));
            }
            _ => {}
        }
    }
    Ok(Reply::Array(vec![
        Reply::bulk(next_cursor.to_string()),
        Reply::Array(items),
    ]))
}
