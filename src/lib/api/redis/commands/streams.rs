//! Stream commands: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XREAD.
//!
//! Entries are rows `P ‖ 'x' ‖ u64be(ms) ‖ u64be(seq)` whose value is the
//! field/value list (`u32be count`, then `u32be len ‖ bytes` for each item);
//! META keeps length, last id, entries added and the max deleted id.

use super::ctx::{CmdError, CmdResult, Ctx};
use crate::api::redis::args::{Command, ERR_SYNTAX, error, is_word, parse_i64};
use crate::api::redis::reply::Reply;
use crate::model::redis::layout::TAG_STREAM;
use crate::model::redis::{Body, Kind, ModelError, StreamMeta, stream_entry};
use crate::storage::Direction;
use crate::txn::KvBackend;

const ERR_INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

/// A stream id.
pub type Id = (u64, u64);

fn id_bytes(id: Id) -> Vec<u8> {
    let mut out = id.0.to_be_bytes().to_vec();
    out.extend_from_slice(&id.1.to_be_bytes());
    out
}

fn id_from(key: &[u8], suffix: &[u8]) -> Result<Id, ModelError> {
    if suffix.len() != 16 {
        return Err(ModelError::corrupt(key, "stream entry key is not 16 bytes"));
    }
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&suffix[..8]);
    b.copy_from_slice(&suffix[8..]);
    Ok((u64::from_be_bytes(a), u64::from_be_bytes(b)))
}

pub fn format_id(id: Id) -> String {
    format!("{}-{}", id.0, id.1)
}

/// Parses `ms[-seq]`; a missing seq is `missing_seq`.
fn parse_id(arg: &[u8], missing_seq: u64) -> Result<Id, Reply> {
    let text = std::str::from_utf8(arg).map_err(|_| error(ERR_INVALID_ID))?;
    let (ms, seq) = match text.split_once('-') {
        Some((ms, seq)) => (ms, Some(seq)),
        None => (text, None),
    };
    let ms: u64 = ms.parse().map_err(|_| error(ERR_INVALID_ID))?;
    let seq = match seq {
        Some(seq) => seq.parse().map_err(|_| error(ERR_INVALID_ID))?,
        None => missing_seq,
    };
    Ok((ms, seq))
}

/// A range bound: `-`, `+`, `(id` or `id`.
fn parse_bound(arg: &[u8], start: bool) -> Result<Option<Id>, Reply> {
    if arg == b"-" {
        return Ok(Some((0, 0)));
    }
    if arg == b"+" {
        return Ok(Some((u64::MAX, u64::MAX)));
    }
    let (exclusive, text) = match arg.strip_prefix(b"(") {
        Some(rest) => (true, rest),
        None => (false, arg),
    };
    let id = parse_id(text, if start { 0 } else { u64::MAX })?;
    if !exclusive {
        return Ok(Some(id));
    }
    let moved = if start {
        if id.1 == u64::MAX {
            id.0.checked_add(1).map(|ms| (ms, 0))
        } else {
            Some((id.0, id.1 + 1))
        }
    } else if id.1 == 0 {
        id.0.checked_sub(1).map(|ms| (ms, u64::MAX))
    } else {
        Some((id.0, id.1 - 1))
    };
    match moved {
        Some(id) => Ok(Some(id)),
        None => Err(error("ERR invalid start ID for the interval")),
    }
}

fn load<B: KvBackend>(ctx: &mut Ctx<B>, key: &[u8]) -> Result<Option<(StreamMeta, u64)>, CmdError> {
    Ok(match ctx.db.meta_of(key, Kind::Stream)? {
        Some(meta) => match meta.body {
            Body::Stream(s) => Some((s, meta.expire_at)),
            _ => return Err(ModelError::WrongType.into()),
        },
        None => None,
    })
}

/// One stream entry: its id and its field/value list.
pub type Entry = (Id, Vec<Vec<u8>>);

/// Entries with ids in `[from, to]`, in `direction`, at most `limit`.
pub fn range<B: KvBackend>(
    ctx: &mut Ctx<B>,
    key: &[u8],
    from: Id,
    to: Id,
    limit: usize,
    direction: Direction,
) -> Result<Vec<Entry>, CmdError> {
    if from > to {
        return Ok(Vec::new());
    }
    let end = if to == (u64::MAX, u64::MAX) {
        None
    } else {
        Some(id_bytes(if to.1 == u64::MAX {
            (to.0 + 1, 0)
        } else {
            (to.0, to.1 + 1)
        }))
    };
    let rows = ctx.db.member_scan(
        key,
        TAG_STREAM,
        Some(&id_bytes(from)),
        end.as_deref(),
        limit,
        direction,
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for (suffix, value) in rows {
        out.push((
            id_from(key, &suffix)?,
            stream_entry::decode_items(key, &value)?,
        ));
    }
    Ok(out)
}

pub fn entries_reply(entries: Vec<(Id, Vec<Vec<u8>>)>) -> Reply {
    Reply::Array(
        entries
            .into_iter()
            .map(|(id, fields)| {
                Reply::Array(vec![
                    Reply::bulk(format_id(id)),
                    Reply::Array(fields.into_iter().map(Reply::bulk).collect()),
                ])
            })
            .collect(),
    )
}

/// A parsed MAXLEN/MINID trim request.
#[derive(Debug, Clone, Copy)]
enum Trim {
    MaxLen(u64),
    MinId(Id),
}

/// Parses `MAXLEN|MINID [=|~] threshold [LIMIT n]` at `i`; returns the trim
/// and the next index.
fn parse_trim(args: &[bytes::Bytes], mut i: usize) -> Result<(Trim, usize), Reply> {
    let maxlen = is_word(&args[i], "MAXLEN");
    i += 1;
    if args
        .get(i)
        .is_some_and(|a| a.as_ref() == b"=" || a.as_ref() == b"~")
    {
        i += 1;
    }
    let threshold = args.get(i).ok_or_else(|| error(ERR_SYNTAX))?;
    let trim = if maxlen {
        let n = parse_i64(threshold)?;
        if n < 0 {
            return Err(error("ERR The MAXLEN argument must be >= 0."));
        }
        Trim::MaxLen(n as u64)
    } else {
        Trim::MinId(parse_id(threshold, 0)?)
    };
    i += 1;
    if args.get(i).is_some_and(|a| is_word(a, "LIMIT")) {
        parse_i64(args.get(i + 1).ok_or_else(|| error(ERR_SYNTAX))?)?;
        i += 2;
    }
    Ok((trim, i))
}

fn apply_trim<B: KvBackend>(
    ctx: &mut Ctx<B>,
    key: &[u8],
    meta: &mut StreamMeta,
    trim: Trim,
) -> Result<u64, CmdError> {
    let doomed: Vec<Id> = match trim {
        Trim::MaxLen(max) => {
            let excess = meta.length.saturating_sub(max) as usize;
            range(
                ctx,
                key,
                (0, 0),
                (u64::MAX, u64::MAX),
                excess,
                Direction::Forward,
            )?
            .into_iter()
            .map(|(id, _)| id)
            .collect()
        }
        Trim::MinId(min) => {
            if min == (0, 0) {
                Vec::new()
            } else {
                let below = if min.1 == 0 {
                    (min.0 - 1, u64::MAX)
                } else {
                    (min.0, min.1 - 1)
                };
                range(ctx, key, (0, 0), below, usize::MAX, Direction::Forward)?
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect()
            }
        }
    };
    for id in &doomed {
        ctx.db.member_delete(key, TAG_STREAM, &id_bytes(*id));
        meta.max_deleted = meta.max_deleted.max(*id);
    }
    meta.length -= doomed.len() as u64;
    Ok(doomed.len() as u64)
}

pub fn xadd<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let mut i = 1;
    let mut nomkstream = false;
    let mut trim = None;
    loop {
        let Some(arg) = cmd.args.get(i) else {
            return Err(error(ERR_SYNTAX).into());
        };
        if is_word(arg, "NOMKSTREAM") {
            nomkstream = true;
            i += 1;
        } else if is_word(arg, "MAXLEN") || is_word(arg, "MINID") {
            let (t, next) = parse_trim(&cmd.args, i)?;
            trim = Some(t);
            i = next;
        } else {
            break;
        }
    }
    let id_arg = &cmd.args[i];
    let fields = &cmd.args[i + 1..];
    if fields.is_empty() || !fields.len().is_multiple_of(2) {
        return Err(Reply::error("ERR wrong number of arguments for 'xadd' command").into());
    }
    let explicit = if id_arg.as_ref() == b"*" {
        None
    } else if let Some(ms) = id_arg.strip_suffix(b"-*") {
        Some((parse_id(ms, 0)?.0, None))
    } else {
        let id = parse_id(id_arg, 0)?;
        let seq_given = id_arg.contains(&b'-');
        Some((id.0, seq_given.then_some(id.1)))
    };
    if explicit == Some((0, Some(0))) {
        return Err(error("ERR The ID specified in XADD must be greater than 0-0").into());
    }
    let existing = load(ctx, key)?;
    if existing.is_none() && nomkstream {
        return Ok(Reply::NullBulk);
    }
    let (mut meta, expire_at) = existing.unwrap_or_default();
    let last = meta.last_id;
    let id = match explicit {
        None => {
            let now = ctx.now_ms();
            if now > last.0 {
                (now, 0)
            } else {
                (last.0, last.1.checked_add(1).ok_or_else(|| error("ERR The stream has exhausted the last possible ID, unable to add more items"))?)
            }
        }
        Some((ms, None)) => {
            if ms > last.0 {
                (ms, 0)
            } else if ms == last.0 && last.1 < u64::MAX {
                (ms, last.1 + 1)
            } else {
                return Err(error("ERR The ID specified in XADD is equal or smaller than the target stream top item").into());
            }
        }
        Some((ms, Some(seq))) => (ms, seq),
    };
    if existing.is_some() && id <= last || id == (0, 0) {
        return Err(error(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        )
        .into());
    }
    if existing.is_none() {
        ctx.db.clear_for_creation(key);
    }
    ctx.db.member_put(
        key,
        TAG_STREAM,
        &id_bytes(id),
        stream_entry::encode_items(fields),
    );
    meta.length += 1;
    meta.last_id = id;
    meta.entries_added += 1;
    if let Some(trim) = trim {
        apply_trim(ctx, key, &mut meta, trim)?;
    }
    ctx.db.put_meta(key, &Body::Stream(meta), expire_at);
    Ok(Reply::bulk(format_id(id)))
}

pub fn xlen<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    Ok(Reply::Integer(
        load(ctx, &cmd.args[0])?.map_or(0, |(m, _)| m.length as i64),
    ))
}

pub fn xrange<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let rev = cmd.name() == "XREVRANGE";
    let (a, b) = (&cmd.args[1], &cmd.args[2]);
    let (start, end) = if rev { (b, a) } else { (a, b) };
    let from = parse_bound(start, true)?;
    let to = parse_bound(end, false)?;
    let mut limit = usize::MAX;
    match &cmd.args[3..] {
        [] => {}
        [word, n] if is_word(word, "COUNT") => {
            let n = parse_i64(n)?;
            if n <= 0 {
                return Ok(Reply::Array(Vec::new()));
            }
            limit = n as usize;
        }
        _ => return Err(error(ERR_SYNTAX).into()),
    }
    if load(ctx, &cmd.args[0])?.is_none() {
        return Ok(Reply::Array(Vec::new()));
    }
    let (Some(from), Some(to)) = (from, to) else {
        return Ok(Reply::Array(Vec::new()));
    };
    let direction = if rev {
        Direction::Reverse
    } else {
        Direction::Forward
    };
    Ok(entries_reply(range(
        ctx,
        &cmd.args[0],
        from,
        to,
        limit,
        direction,
    )?))
}

pub fn xdel<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    // Redis checks the key (type, existence) before the ids.
    let Some((mut meta, expire_at)) = load(ctx, key)? else {
        return Ok(Reply::Integer(0));
    };
    let mut ids = Vec::new();
    for arg in &cmd.args[1..] {
        ids.push(parse_id(arg, 0)?);
    }
    let mut deleted = 0;
    for id in ids {
        if ctx.db.member_get(key, TAG_STREAM, &id_bytes(id))?.is_some() {
            ctx.db.member_delete(key, TAG_STREAM, &id_bytes(id));
            meta.length -= 1;
            meta.max_deleted = meta.max_deleted.max(id);
            deleted += 1;
        }
    }
    if deleted > 0 {
        ctx.db.put_meta(key, &Body::Stream(meta), expire_at);
    }
    Ok(Reply::Integer(deleted))
}

pub fn xtrim<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    if !(is_word(&cmd.args[1], "MAXLEN") || is_word(&cmd.args[1], "MINID")) {
        return Err(error(ERR_SYNTAX).into());
    }
    let (trim, next) = parse_trim(&cmd.args, 1)?;
    if next != cmd.args.len() {
        return Err(error(ERR_SYNTAX).into());
    }
    let Some((mut meta, expire_at)) = load(ctx, key)? else {
        return Ok(Reply::Integer(0));
    };
    let removed = apply_trim(ctx, key, &mut meta, trim)?;
    if removed > 0 {
        ctx.db.put_meta(key, &Body::Stream(meta), expire_at);
    }
    Ok(Reply::Integer(removed as i64))
}

/// A parsed XREAD.
pub struct XRead {
    pub count: usize,
    pub block_ms: Option<u64>,
    pub keys: Vec<bytes::Bytes>,
    /// `None` = `$` (only entries added after the call).
    pub ids: Vec<Option<Id>>,
}

pub fn parse_xread(cmd: &Command) -> Result<XRead, Reply> {
    let mut count = usize::MAX;
    let mut block_ms = None;
    let mut i = 0;
    while i < cmd.args.len() {
        let arg = &cmd.args[i];
        if is_word(arg, "STREAMS") {
            let rest = &cmd.args[i + 1..];
            if rest.is_empty() || !rest.len().is_multiple_of(2) {
                return Err(error(
                    "ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            let (keys, ids) = rest.split_at(rest.len() / 2);
            let mut parsed = Vec::with_capacity(ids.len());
            for id in ids {
                parsed.push(if id.as_ref() == b"$" {
                    None
                } else {
                    Some(parse_id(id, 0)?)
                });
            }
            return Ok(XRead {
                count,
                block_ms,
                keys: keys.to_vec(),
                ids: parsed,
            });
        }
        let value = cmd.args.get(i + 1).ok_or_else(|| error(ERR_SYNTAX))?;
        if is_word(arg, "COUNT") {
            let n = parse_i64(value)?;
            count = if n <= 0 { usize::MAX } else { n as usize };
        } else if is_word(arg, "BLOCK") {
            let n = parse_i64(value)?;
            if n < 0 {
                return Err(error("ERR timeout is negative"));
            }
            block_ms = Some(n as u64);
        } else {
            return Err(error(ERR_SYNTAX));
        }
        i += 2;
    }
    Err(error(ERR_SYNTAX))
}

/// Resolves `$` ids to each stream's current last id.
pub fn resolve_ids<B: KvBackend>(ctx: &mut Ctx<B>, read: &XRead) -> Result<Vec<Id>, CmdError> {
    let mut out = Vec::with_capacity(read.ids.len());
    for (key, id) in read.keys.iter().zip(&read.ids) {
        out.push(match id {
            Some(id) => *id,
            None => load(ctx, key)?.map_or((0, 0), |(m, _)| m.last_id),
        });
    }
    Ok(out)
}

/// One XREAD pass: entries after each id; `NullArray` when none.
pub fn xread_once<B: KvBackend>(ctx: &mut Ctx<B>, read: &XRead, ids: &[Id]) -> CmdResult {
    let mut out = Vec::new();
    for (key, after) in read.keys.iter().zip(ids) {
        if load(ctx, key)?.is_none() {
            continue;
        }
        let from = if after.1 == u64::MAX {
            match after.0.checked_add(1) {
                Some(ms) => (ms, 0),
                None => continue,
            }
        } else {
            (after.0, after.1 + 1)
        };
        let entries = range(
            ctx,
            key,
            from,
            (u64::MAX, u64::MAX),
            read.count,
            Direction::Forward,
        )?;
        if !entries.is_empty() {
            out.push(Reply::Array(vec![Reply::bulk(key), entries_reply(entries)]));
        }
    }
    Ok(if out.is_empty() {
        Reply::NullArray
    } else {
        Reply::Array(out)
    })
}

pub fn xread<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let read = parse_xread(cmd)?;
    let ids = resolve_ids(ctx, &read)?;
    xread_once(ctx, &read, &ids)
}
