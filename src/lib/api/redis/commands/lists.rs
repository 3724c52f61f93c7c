//! List commands.

use super::ctx::{CmdError, CmdResult, Ctx};
use super::strings::clamp_range;
use crate::api::redis::args::{
    Command, ERR_INDEX_OUT_OF_RANGE, ERR_MUST_BE_POSITIVE, ERR_NO_SUCH_KEY, ERR_SYNTAX, error,
    is_word, parse_i64,
};
use crate::api::redis::reply::Reply;
use crate::model::redis::End;
use crate::txn::KvBackend;

pub fn push<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let (end, only_existing) = match cmd.name() {
        "LPUSH" => (End::Left, false),
        "RPUSH" => (End::Right, false),
        "LPUSHX" => (End::Left, true),
        _ => (End::Right, true),
    };
    let items: Vec<&[u8]> = cmd.args[1..].iter().map(|i| i.as_ref()).collect();
    Ok(Reply::Integer(ctx.db.list_push(
        &cmd.args[0],
        &items,
        end,
        only_existing,
    )?))
}

pub fn pop<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let end = if cmd.name() == "LPOP" {
        End::Left
    } else {
        End::Right
    };
    let key = &cmd.args[0];
    let Some(count_arg) = cmd.args.get(1) else {
        let mut items = ctx.db.list_pop(key, end, 1)?;
        return Ok(items.pop().map_or(Reply::NullBulk, Reply::bulk));
    };
    if cmd.args.len() > 2 {
        return Err(error(ERR_SYNTAX).into());
    }
    let count = parse_i64(count_arg).map_err(|_| error(ERR_MUST_BE_POSITIVE))?;
    if count < 0 {
        return Err(error(ERR_MUST_BE_POSITIVE).into());
    }
    let meta = ctx.db.list_meta(key)?;
    if !meta.existed {
        return Ok(Reply::NullArray);
    }
    let items = ctx.db.list_pop(key, end, count as usize)?;
    Ok(Reply::Array(items.into_iter().map(Reply::bulk).collect()))
}

pub fn llen<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    Ok(Reply::Integer(ctx.db.list_meta(&cmd.args[0])?.len()))
}

pub fn lrange<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let start = parse_i64(&cmd.args[1])?;
    let stop = parse_i64(&cmd.args[2])?;
    let key = &cmd.args[0];
    let meta = ctx.db.list_meta(key)?;
    let Some((s, e)) = clamp_range(start, stop, meta.len()) else {
        return Ok(Reply::Array(Vec::new()));
    };
    Ok(Reply::Array(
        ctx.db
            .list_slice(key, &meta, s, e)?
            .into_iter()
            .map(Reply::bulk)
            .collect(),
    ))
}

fn normalize_index(index: i64, len: i64) -> Option<i64> {
    let index = if index < 0 { len + index } else { index };
    (0..len).contains(&index).then_some(index)
}

pub fn lindex<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let meta = ctx.db.list_meta(key)?;
    if !meta.existed {
        return Ok(Reply::NullBulk);
    }
    let index = parse_i64(&cmd.args[1])?;
    let Some(index) = normalize_index(index, meta.len()) else {
        return Ok(Reply::NullBulk);
    };
    Ok(ctx
        .db
        .list_get(key, &meta, index)?
        .map_or(Reply::NullBulk, Reply::bulk))
}

pub fn lset<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let meta = ctx.db.list_meta(key)?;
    if !meta.existed {
        return Err(error(ERR_NO_SUCH_KEY).into());
    }
    let index = parse_i64(&cmd.args[1])?;
    let Some(index) = normalize_index(index, meta.len()) else {
        return Err(error(ERR_INDEX_OUT_OF_RANGE).into());
    };
    ctx.db.list_set(key, &meta, index, cmd.args[2].to_vec());
    Ok(Reply::ok())
}

pub fn lrem<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let count = parse_i64(&cmd.args[1])?;
    let key = &cmd.args[0];
    let target = cmd.args[2].as_ref();
    let meta = ctx.db.list_meta(key)?;
    if !meta.existed {
        return Ok(Reply::Integer(0));
    }
    let mut items = ctx.db.list_all(key, &meta)?;
    let limit = if count == 0 {
        usize::MAX
    } else {
        count.unsigned_abs() as usize
    };
    let mut removed = 0usize;
    if count >= 0 {
        items.retain(|item| {
            if removed < limit && item.as_slice() == target {
                removed += 1;
                false
            } else {
                true
            }
        });
    } else {
        items.reverse();
        items.retain(|item| {
            if removed < limit && item.as_slice() == target {
                removed += 1;
                false
            } else {
                true
            }
        });
        items.reverse();
    }
    if removed > 0 {
        if items.is_empty() {
            ctx.db.drop_rows(key);
        } else {
            ctx.db.list_rewrite(key, &meta, items);
        }
    }
    Ok(Reply::Integer(removed as i64))
}

pub fn ltrim<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let start = parse_i64(&cmd.args[1])?;
    let stop = parse_i64(&cmd.args[2])?;
    let key = &cmd.args[0];
    let meta = ctx.db.list_meta(key)?;
    if !meta.existed {
        return Ok(Reply::ok());
    }
    match clamp_range(start, stop, meta.len()) {
        Some((s, e)) => ctx.db.list_trim(key, &meta, s, e),
        None => ctx.db.drop_rows(key),
    }
    Ok(Reply::ok())
}

pub fn linsert<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let before = if is_word(&cmd.args[1], "BEFORE") {
        true
    } else if is_word(&cmd.args[1], "AFTER") {
        false
    } else {
        return Err(error(ERR_SYNTAX).into());
    };
    let meta = ctx.db.list_meta(key)?;
    if !meta.existed {
        return Ok(Reply::Integer(0));
    }
    let mut items = ctx.db.list_all(key, &meta)?;
    let Some(pos) = items
        .iter()
        .position(|i| i.as_slice() == cmd.args[2].as_ref())
    else {
        return Ok(Reply::Integer(-1));
    };
    items.insert(if before { pos } else { pos + 1 }, cmd.args[3].to_vec());
    let len = items.len() as i64;
    ctx.db.list_rewrite(key, &meta, items);
    Ok(Reply::Integer(len))
}

pub fn lpos<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let target = cmd.args[1].as_ref();
    let (mut rank, mut count, mut maxlen) = (1i64, None::<i64>, 0i64);
    let mut i = 2;
    while i < cmd.args.len() {
        let Some(value) = cmd.args.get(i + 1) else {
            return Err(error(ERR_SYNTAX).into());
        };
        if is_word(&cmd.args[i], "RANK") {
            rank = parse_i64(value)?;
            if rank == 0 || rank == i64::MIN {
                return Err(error("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list").into());
            }
        } else if is_word(&cmd.args[i], "COUNT") {
            let c = parse_i64(value)?;
            if c < 0 {
                return Err(error("ERR COUNT can't be negative").into());
            }
            count = Some(c);
        } else if is_word(&cmd.args[i], "MAXLEN") {
            maxlen = parse_i64(value)?;
            if maxlen < 0 {
                return Err(error("ERR MAXLEN can't be negative").into());
            }
        } else {
            return Err(error(ERR_SYNTAX).into());
        }
        i += 2;
    }
    let meta = ctx.db.list_meta(key)?;
    let items = if meta.existed {
        ctx.db.list_all(key, &meta)?
    } else {
        Vec::new()
    };
    let len = items.len();
    let order: Box<dyn Iterator<Item = usize>> = if rank > 0 {
        Box::new(0..len)
    } else {
        Box::new((0..len).rev())
    };
    let limit = if maxlen == 0 {
        usize::MAX
    } else {
        maxlen as usize
    };
    let wanted = match count {
        Some(0) => usize::MAX,
        Some(c) => c as usize,
        None => 1,
    };
    let mut skip = rank.unsigned_abs() - 1;
    let mut found = Vec::new();
    for index in order.take(limit) {
        if items[index].as_slice() == target {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            found.push(Reply::Integer(index as i64));
            if found.len() >= wanted {
                break;
            }
        }
    }
    Ok(match count {
        Some(_) => Reply::Array(found),
        None => found.pop().unwrap_or(Reply::NullBulk),
    })
}

fn parse_end(arg: &[u8]) -> Result<End, CmdError> {
    if is_word(arg, "LEFT") {
        Ok(End::Left)
    } else if is_word(arg, "RIGHT") {
        Ok(End::Right)
    } else {
        Err(error(ERR_SYNTAX).into())
    }
}

/// Moves one element from `src`'s `from` end to `dst`'s `to` end.
pub fn move_one<B: KvBackend>(
    ctx: &mut Ctx<B>,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
) -> Result<Option<Vec<u8>>, CmdError> {
    let src_meta = ctx.db.list_meta(src)?;
    if !src_meta.existed {
        return Ok(None);
    }
    ctx.db.list_meta(dst)?;
    let Some(item) = ctx.db.list_pop(src, from, 1)?.pop() else {
        return Ok(None);
    };
    ctx.db.list_push(dst, &[item.as_slice()], to, false)?;
    Ok(Some(item))
}

pub fn lmove<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let (from, to) = if cmd.name() == "RPOPLPUSH" {
        (End::Right, End::Left)
    } else {
        (parse_end(&cmd.args[2])?, parse_end(&cmd.args[3])?)
    };
    Ok(move_one(ctx, &cmd.args[0], &cmd.args[1], from, to)?.map_or(Reply::NullBulk, Reply::bulk))
}

/// The first non-empty list among `keys`, popped at `end`.
pub fn pop_first<B: KvBackend>(
    ctx: &mut Ctx<B>,
    keys: &[bytes::Bytes],
    end: End,
) -> Result<Option<Reply>, CmdError> {
    for key in keys {
        if let Some(item) = ctx.db.list_pop(key, end, 1)?.pop() {
            return Ok(Some(Reply::Array(vec![
                Reply::bulk(key),
                Reply::bulk(item),
            ])));
        }
    }
    Ok(None)
}
