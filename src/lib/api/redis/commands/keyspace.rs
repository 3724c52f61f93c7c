//! Keyspace commands: DEL, EXISTS, TYPE, the TTL family, RENAME, COPY,
//! KEYS, SCAN, DBSIZE, FLUSHDB, OBJECT.

use super::ctx::{CmdResult, Ctx};
use super::cursors::CursorKind;
use super::strings::{ExpireUnit, deadline_ms, remaining_ms, to_expire_at};
use crate::api::redis::args::{
    self, Command, ERR_NO_SUCH_KEY, ERR_SYNTAX, error, is_word, parse_cursor,
};
use crate::api::redis::glob::glob_match;
use crate::api::redis::reply::Reply;
use crate::clock::physical_ms;
use crate::model::redis::Body;
use crate::model::redis::layout::{key_end, meta_key};
use crate::storage::Direction;
use crate::txn::KvBackend;

pub fn del<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let mut removed = 0;
    for key in &cmd.args {
        if ctx.db.remove(key)? {
            removed += 1;
        }
    }
    Ok(Reply::Integer(removed))
}

pub fn exists<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let mut found = 0;
    for key in &cmd.args {
        if ctx.db.meta(key)?.is_some() {
            found += 1;
        }
    }
    Ok(Reply::Integer(found))
}

pub fn type_of<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    Ok(Reply::simple(
        ctx.db
            .meta(&cmd.args[0])?
            .map_or("none", |m| m.body.kind().name()),
    ))
}

pub fn ttl<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command, millis: bool) -> CmdResult {
    let Some(meta) = ctx.db.meta(&cmd.args[0])? else {
        return Ok(Reply::Integer(-2));
    };
    if meta.expire_at == 0 {
        return Ok(Reply::Integer(-1));
    }
    let left = remaining_ms(meta.expire_at, ctx.now_ms());
    Ok(Reply::Integer(if millis {
        left
    } else {
        (left + 500) / 1000
    }))
}

pub fn expiretime<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command, millis: bool) -> CmdResult {
    let Some(meta) = ctx.db.meta(&cmd.args[0])? else {
        return Ok(Reply::Integer(-2));
    };
    if meta.expire_at == 0 {
        return Ok(Reply::Integer(-1));
    }
    let ms = physical_ms(meta.expire_at) as i64;
    Ok(Reply::Integer(if millis { ms } else { ms / 1000 }))
}

pub fn expire<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let (unit, name) = match cmd.name() {
        "EXPIRE" => (ExpireUnit::Seconds, "expire"),
        "PEXPIRE" => (ExpireUnit::Millis, "pexpire"),
        "EXPIREAT" => (ExpireUnit::UnixSeconds, "expireat"),
        _ => (ExpireUnit::UnixMillis, "pexpireat"),
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in &cmd.args[2..] {
        if is_word(option, "NX") {
            nx = true;
        } else if is_word(option, "XX") {
            xx = true;
        } else if is_word(option, "GT") {
            gt = true;
        } else if is_word(option, "LT") {
            lt = true;
        } else {
            return Err(Reply::error(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(option)
            ))
            .into());
        }
    }
    if nx && (xx || gt || lt) {
        return Err(
            error("ERR NX and XX, GT or LT options at the same time are not compatible").into(),
        );
    }
    if gt && lt {
        return Err(error("ERR GT and LT options at the same time are not compatible").into());
    }
    let now = ctx.now_ms();
    let deadline = deadline_ms(&cmd.args[1], unit, now, name, false)?;
    let key = &cmd.args[0];
    let Some(meta) = ctx.db.meta(key)? else {
        return Ok(Reply::Integer(0));
    };
    let current = (meta.expire_at != 0).then(|| physical_ms(meta.expire_at) as i64);
    let allowed = if nx {
        current.is_none()
    } else if xx && current.is_none() {
        false
    } else if gt {
        current.is_some_and(|c| deadline > c)
    } else if lt {
        current.is_none_or(|c| deadline < c)
    } else {
        true
    };
    if !allowed {
        return Ok(Reply::Integer(0));
    }
    if deadline <= now as i64 {
        ctx.db.drop_rows(key);
    } else {
        ctx.db.put_meta(key, &meta.body, to_expire_at(deadline));
    }
    Ok(Reply::Integer(1))
}

pub fn persist<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    match ctx.db.meta(key)? {
        Some(meta) if meta.expire_at != 0 => {
            ctx.db.put_meta(key, &meta.body, 0);
            Ok(Reply::Integer(1))
        }
        _ => Ok(Reply::Integer(0)),
    }
}

/// Copies every row of `src` under `dst` (which must already be cleared).
fn copy_rows<B: KvBackend>(
    ctx: &mut Ctx<B>,
    src: &[u8],
    dst: &[u8],
) -> Result<(), super::ctx::CmdError> {
    let src_prefix = meta_key(src);
    let dst_prefix = meta_key(dst);
    let rows = ctx.db.txn().scan(
        &src_prefix,
        Some(&key_end(src)),
        usize::MAX,
        Direction::Forward,
    )?;
    for (row_key, row) in rows {
        let mut target = dst_prefix.clone();
        target.extend_from_slice(&row_key[src_prefix.len()..]);
        ctx.db.txn().put(target, row.value, row.expire_at);
    }
    Ok(())
}

pub fn rename<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command, only_if_new: bool) -> CmdResult {
    let (src, dst) = (&cmd.args[0], &cmd.args[1]);
    if ctx.db.meta(src)?.is_none() {
        return Err(error(ERR_NO_SUCH_KEY).into());
    }
    if src == dst {
        return Ok(if only_if_new {
            Reply::Integer(0)
        } else {
            Reply::ok()
        });
    }
    if only_if_new && ctx.db.meta(dst)?.is_some() {
        return Ok(Reply::Integer(0));
    }
    ctx.db.drop_rows(dst);
    copy_rows(ctx, src, dst)?;
    ctx.db.drop_rows(src);
    Ok(if only_if_new {
        Reply::Integer(1)
    } else {
        Reply::ok()
    })
}

pub fn copy<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let (src, dst) = (&cmd.args[0], &cmd.args[1]);
    let mut replace = false;
    let mut i = 2;
    while i < cmd.args.len() {
        if is_word(&cmd.args[i], "REPLACE") {
            replace = true;
        } else if is_word(&cmd.args[i], "DB") && i + 1 < cmd.args.len() {
            let db = args::parse_i64(&cmd.args[i + 1])?;
            if db != 0 {
                return Err(error("ERR DB index is out of range").into());
            }
            i += 1;
        } else {
            return Err(error(ERR_SYNTAX).into());
        }
        i += 1;
    }
    if src == dst {
        return Err(error("ERR source and destination objects are the same").into());
    }
    if ctx.db.meta(src)?.is_none() {
        return Ok(Reply::Integer(0));
    }
    if ctx.db.meta(dst)?.is_some() && !replace {
        return Ok(Reply::Integer(0));
    }
    ctx.db.drop_rows(dst);
    copy_rows(ctx, src, dst)?;
    Ok(Reply::Integer(1))
}

pub fn keys<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let pattern = &cmd.args[0];
    let (entries, _) = ctx.db.scan_keys(None, usize::MAX)?;
    Ok(Reply::Array(
        entries
            .into_iter()
            .filter(|e| glob_match(pattern, &e.key))
            .map(|e| Reply::bulk(e.key))
            .collect(),
    ))
}

pub fn dbsize<B: KvBackend>(ctx: &mut Ctx<B>, _cmd: &Command) -> CmdResult {
    let (entries, _) = ctx.db.scan_keys(None, usize::MAX)?;
    Ok(Reply::Integer(entries.len() as i64))
}

pub fn flush<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    match cmd.args.first() {
        None => {}
        Some(mode) if is_word(mode, "ASYNC") || is_word(mode, "SYNC") => {}
        Some(_) => return Err(error(ERR_SYNTAX).into()),
    }
    ctx.db.flush();
    Ok(Reply::ok())
}

/// SCAN/HSCAN/SSCAN/ZSCAN options.
pub struct ScanOptions {
    pub pattern: Option<Vec<u8>>,
    pub count: usize,
    pub kind: Option<Vec<u8>>,
    pub novalues: bool,
}

pub fn parse_scan_options(args: &[bytes::Bytes], allow_type: bool) -> Result<ScanOptions, Reply> {
    let mut options = ScanOptions {
        pattern: None,
        count: 10,
        kind: None,
        novalues: false,
    };
    let mut i = 0;
    while i < args.len() {
        let word = &args[i];
        let value = args.get(i + 1);
        match value {
            Some(value) if is_word(word, "MATCH") => options.pattern = Some(value.to_vec()),
            Some(value) if is_word(word, "COUNT") => {
                let count = args::parse_i64(value)?;
                if count < 1 {
                    return Err(error(ERR_SYNTAX));
                }
                options.count = count as usize;
            }
            Some(value) if allow_type && is_word(word, "TYPE") => {
                options.kind = Some(value.to_ascii_lowercase())
            }
            _ if !allow_type && is_word(word, "NOVALUES") => {
                options.novalues = true;
                i += 1;
                continue;
            }
            _ => return Err(error(ERR_SYNTAX)),
        }
        i += 2;
    }
    Ok(options)
}

pub fn scan<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let cursor = parse_cursor(&cmd.args[0])?;
    let options = parse_scan_options(&cmd.args[1..], true)?;
    let resume = ctx
        .exec
        .cursors
        .lock()
        .resume(cursor, CursorKind::Keys, b"");
    let (entries, next) = ctx.db.scan_keys(resume.as_deref(), options.count)?;
    let next_cursor = match next {
        Some(position) => ctx
            .exec
            .cursors
            .lock()
            .store(CursorKind::Keys, b"", position),
        None => 0,
    };
    let keys = entries
        .into_iter()
        .filter(|e| {
            options
                .pattern
                .as_ref()
                .is_none_or(|p| glob_match(p, &e.key))
        })
        .filter(|e| {
            options
                .kind
                .as_ref()
                .is_none_or(|k| k.as_slice() == e.meta.body.kind().name().as_bytes())
        })
        .map(|e| Reply::bulk(e.key))
        .collect();
    Ok(Reply::Array(vec![
        Reply::bulk(next_cursor.to_string()),
        Reply::Array(keys),
    ]))
}

/// Redis's encoding names, approximated from size (the storage layout is
/// the same whatever the size).
fn encoding_of(body: &Body) -> &'static str {
    match body {
        Body::String(v) => {
            if v.len() <= 20 && crate::api::redis::resp::parse_redis_int(v).is_some() {
                "int"
            } else if v.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        Body::List { .. } if body.len() <= 128 => "listpack",
        Body::List { .. } => "quicklist",
        Body::Hash { .. } | Body::ZSet { .. } if body.len() <= 128 => "listpack",
        Body::Hash { .. } => "hashtable",
        Body::ZSet { .. } => "skiplist",
        Body::Set { .. } if body.len() <= 128 => "listpack",
        Body::Set { .. } => "hashtable",
        Body::Stream(_) => "stream",
    }
}

pub fn object<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let sub = cmd.args[0].to_ascii_uppercase();
    if sub.as_slice() == b"HELP" {
        return Ok(Reply::Array(
            [
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
            ]
            .into_iter()
            .map(Reply::simple)
            .collect(),
        ));
    }
    let Some(key) = cmd.args.get(1) else {
        return Err(error(ERR_SYNTAX).into());
    };
    let Some(meta) = ctx.db.meta(key)? else {
        return Ok(Reply::NullBulk);
    };
    Ok(match sub.as_slice() {
        b"ENCODING" => Reply::bulk(encoding_of(&meta.body)),
        b"REFCOUNT" => Reply::Integer(1),
        b"IDLETIME" => Reply::Integer(0),
        b"FREQ" => Reply::error(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ),
        _ => return Err(error(ERR_SYNTAX).into()),
    })
}
