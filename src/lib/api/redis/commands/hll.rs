//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE over string keys holding
//! Redis's own HYLL encoding ([`crate::model::redis::hll`]).
//!
//! Invariants: an HLL is an ordinary string key (TYPE says string, TTLs
//! are kept by updates, as in Redis); a key that is not a valid HYLL value
//! is never modified; like Redis, PFCOUNT of a single key writes the
//! recomputed cardinality back into the value's header cache, so the
//! stored bytes stay identical to what Redis would hold.

use super::ctx::{CmdResult, Ctx};
use super::strings::{read_string, store_string};
use crate::api::redis::args::Command;
use crate::api::redis::reply::Reply;
use crate::clock::Timestamp;
use crate::model::redis::hll::{self, Hll, HllError};
use crate::txn::KvBackend;

fn hll_error(err: HllError) -> Reply {
    Reply::error(err.to_string())
}

/// The HLL stored at `key` with its deadline; None when the key is absent.
fn read_hll<B: KvBackend>(
    ctx: &mut Ctx<B>,
    key: &[u8],
) -> Result<Option<(Hll, Timestamp)>, super::ctx::CmdError> {
    match read_string(ctx, key)? {
        None => Ok(None),
        Some((bytes, expire_at)) => {
            let hll = Hll::from_bytes(bytes).map_err(hll_error)?;
            Ok(Some((hll, expire_at)))
        }
    }
}

pub fn pfadd<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let existing = read_hll(ctx, key)?;
    let existed = existing.is_some();
    let (mut value, expire_at, mut updated) = match existing {
        Some((hll, expire_at)) => (hll, expire_at, false),
        None => (Hll::new(), 0, true),
    };
    for element in &cmd.args[1..] {
        if value.add(element).map_err(hll_error)? {
            updated = true;
        }
    }
    if !updated {
        return Ok(Reply::Integer(0));
    }
    value.invalidate_cache();
    store_string(ctx, key, value.into_bytes(), expire_at, existed);
    Ok(Reply::Integer(1))
}

pub fn pfcount<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    if cmd.args.len() > 1 {
        let mut max = Box::new([0u8; hll::REGISTERS]);
        for key in &cmd.args {
            if let Some((value, _)) = read_hll(ctx, key)? {
                value.merge_into(&mut max).map_err(hll_error)?;
            }
        }
        return Ok(Reply::Integer(hll::estimate_registers(&max) as i64));
    }
    let key = &cmd.args[0];
    let Some((mut value, expire_at)) = read_hll(ctx, key)? else {
        return Ok(Reply::Integer(0));
    };
    if let Some(card) = value.cached_cardinality() {
        return Ok(Reply::Integer(card as i64));
    }
    let card = value.count().map_err(hll_error)?;
    value.set_cached_cardinality(card);
    store_string(ctx, key, value.into_bytes(), expire_at, true);
    ctx.written.push(key.to_vec());
    Ok(Reply::Integer(card as i64))
}

pub fn pfmerge<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let mut max = Box::new([0u8; hll::REGISTERS]);
    let mut use_dense = false;
    // The destination is merged too: it is the first source.
    let mut destination = None;
    for (i, key) in cmd.args.iter().enumerate() {
        let Some((value, expire_at)) = read_hll(ctx, key)? else {
            continue;
        };
        use_dense |= value.is_dense();
        value.merge_into(&mut max).map_err(hll_error)?;
        if i == 0 {
            destination = Some((value, expire_at));
        }
    }
    let key = &cmd.args[0];
    let existed = destination.is_some();
    let (mut value, expire_at) = destination.unwrap_or_else(|| (Hll::new(), 0));
    if use_dense {
        value.to_dense().map_err(hll_error)?;
    }
    for (index, &register) in max.iter().enumerate() {
        if register != 0 {
            value.set_register(index, register).map_err(hll_error)?;
        }
    }
    value.invalidate_cache();
    store_string(ctx, key, value.into_bytes(), expire_at, existed);
    Ok(Reply::ok())
}
