//! Set commands.

use std::collections::BTreeSet;

use super::ctx::{CmdResult, Ctx};
use crate::api::redis::args::{Command, ERR_MUST_BE_POSITIVE, error, parse_i64};
use crate::api::redis::reply::Reply;
use crate::model::redis::Kind;
use crate::model::redis::layout::TAG_SET;
use crate::txn::KvBackend;

fn members_of(args: &[bytes::Bytes]) -> Vec<&[u8]> {
    args.iter().map(|m| m.as_ref()).collect()
}

pub fn sadd<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    Ok(Reply::Integer(
        ctx.db.set_add(&cmd.args[0], &members_of(&cmd.args[1..]))? as i64,
    ))
}

pub fn srem<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    Ok(Reply::Integer(
        ctx.db.set_rem(&cmd.args[0], &members_of(&cmd.args[1..]))? as i64,
    ))
}

pub fn scard<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    Ok(Reply::Integer(
        ctx.db.load_counted(&cmd.args[0], Kind::Set)?.count as i64,
    ))
}

pub fn sismember<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    Ok(Reply::Integer(i64::from(
        ctx.db.set_contains(&cmd.args[0], &cmd.args[1])?,
    )))
}

pub fn smismember<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let exists = ctx.db.meta_of(key, Kind::Set)?.is_some();
    let mut out = Vec::new();
    for member in &cmd.args[1..] {
        let found = exists && ctx.db.member_get(key, TAG_SET, member)?.is_some();
        out.push(Reply::Integer(i64::from(found)));
    }
    Ok(Reply::Array(out))
}

pub fn smembers<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    Ok(Reply::Set(
        ctx.db
            .set_members(&cmd.args[0])?
            .into_iter()
            .map(Reply::bulk)
            .collect(),
    ))
}

/// A small pseudo-random source for SPOP/SRANDMEMBER: which members are
/// picked is the executor's choice, the commit is what replicates.
pub fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ seed;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

pub fn spop<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let count = match cmd.args.get(1) {
        Some(arg) => {
            let n = parse_i64(arg).map_err(|_| error(ERR_MUST_BE_POSITIVE))?;
            if n < 0 {
                return Err(error(ERR_MUST_BE_POSITIVE).into());
            }
            Some(n as usize)
        }
        None => None,
    };
    let mut members = ctx.db.set_members(key)?;
    let want = count.unwrap_or(1);
    let mut picked = Vec::new();
    while picked.len() < want && !members.is_empty() {
        let index = (random_u64() % members.len() as u64) as usize;
        picked.push(members.swap_remove(index));
    }
    if !picked.is_empty() {
        let refs: Vec<&[u8]> = picked.iter().map(|m| m.as_slice()).collect();
        ctx.db.set_rem(key, &refs)?;
    }
    Ok(match count {
        None => picked.pop().map_or(Reply::NullBulk, Reply::bulk),
        Some(_) => Reply::Set(picked.into_iter().map(Reply::bulk).collect()),
    })
}

pub fn srandmember<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let count = match cmd.args.get(1) {
        Some(arg) => Some(parse_i64(arg)?),
        None => None,
    };
    let members = ctx.db.set_members(key)?;
    let Some(count) = count else {
        if members.is_empty() {
            return Ok(Reply::NullBulk);
        }
        let index = (random_u64() % members.len() as u64) as usize;
        return Ok(Reply::bulk(&members[index]));
    };
    if members.is_empty() || count == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    if count < 0 {
        let n = count.unsigned_abs();
        let out = (0..n)
            .map(|_| Reply::bulk(&members[(random_u64() % members.len() as u64) as usize]))
            .collect();
        return Ok(Reply::Array(out));
    }
    let mut pool = members;
    let mut out = Vec::new();
    while out.len() < count as usize && !pool.is_empty() {
        let index = (random_u64() % pool.len() as u64) as usize;
        out.push(Reply::bulk(pool.swap_remove(index)));
    }
    Ok(Reply::Array(out))
}

pub fn smove<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let (src, dst, member) = (&cmd.args[0], &cmd.args[1], &cmd.args[2]);
    if ctx.db.meta_of(src, Kind::Set)?.is_none() {
        return Ok(Reply::Integer(0));
    }
    ctx.db.meta_of(dst, Kind::Set)?;
    if !ctx.db.set_contains(src, member)? {
        return Ok(Reply::Integer(0));
    }
    if src == dst {
        return Ok(Reply::Integer(1));
    }
    ctx.db.set_rem(src, &[member.as_ref()])?;
    ctx.db.set_add(dst, &[member.as_ref()])?;
    Ok(Reply::Integer(1))
}

/// SINTER/SUNION/SDIFF over `keys`, type-checking every key.
pub fn combine<B: KvBackend>(
    ctx: &mut Ctx<B>,
    keys: &[bytes::Bytes],
    op: &str,
) -> Result<Vec<Vec<u8>>, super::ctx::CmdError> {
    let mut sets = Vec::with_capacity(keys.len());
    for key in keys {
        sets.push(
            ctx.db
                .set_members(key)?
                .into_iter()
                .collect::<BTreeSet<_>>(),
        );
    }
    let mut iter = sets.into_iter();
    let first = iter.next().unwrap_or_default();
    let result = match op {
        "INTER" => iter.fold(first, |acc, s| acc.intersection(&s).cloned().collect()),
        "UNION" => iter.fold(first, |mut acc, s| {
            acc.extend(s);
            acc
        }),
        _ => iter.fold(first, |acc, s| acc.difference(&s).cloned().collect()),
    };
    Ok(result.into_iter().collect())
}

pub fn set_algebra<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let name = cmd.name();
    let store = name.ends_with("STORE");
    let op = &name[1..name.len() - if store { 5 } else { 0 }];
    if store {
        let result = combine(ctx, &cmd.args[1..], op)?;
        ctx.db.set_replace(&cmd.args[0], &result);
        Ok(Reply::Integer(result.len() as i64))
    } else {
        let result = combine(ctx, &cmd.args, op)?;
        Ok(Reply::Set(result.into_iter().map(Reply::bulk).collect()))
    }
}
