//! Sorted-set commands: member rows give scores by member, the score index
//! gives order (score, then member bytes, as Redis orders).

use super::ctx::{CmdError, CmdResult, Ctx};
use super::strings::clamp_range;
use crate::api::redis::args::{
    self, Command, ERR_MIN_MAX_NOT_FLOAT, ERR_MIN_MAX_NOT_LEX, ERR_MUST_BE_POSITIVE, ERR_NOT_FLOAT,
    ERR_SCORE_NAN, ERR_SYNTAX, error, is_word, parse_i64,
};
use crate::api::redis::reply::{Protocol, Reply};
use crate::model::redis::Kind;
use crate::model::redis::collections::Loaded;
use crate::storage::Direction;
use crate::txn::KvBackend;

type Db<'t, 'a, B> = crate::model::redis::Db<'t, 'a, B>;

/// One bound of a score range.
#[derive(Debug, Clone, Copy)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

pub fn parse_score_bound(arg: &[u8]) -> Result<ScoreBound, Reply> {
    let (exclusive, text) = match arg.strip_prefix(b"(") {
        Some(rest) => (true, rest),
        None => (false, arg),
    };
    let value = args::parse_double(text).ok_or_else(|| error(ERR_MIN_MAX_NOT_FLOAT))?;
    Ok(ScoreBound { value, exclusive })
}

/// One bound of a lex range.
#[derive(Debug, Clone)]
pub enum LexBound {
    Min,
    Max,
    Inclusive(Vec<u8>),
    Exclusive(Vec<u8>),
}

pub fn parse_lex_bound(arg: &[u8]) -> Result<LexBound, Reply> {
    match arg.split_first() {
        Some((b'-', [])) => Ok(LexBound::Min),
        Some((b'+', [])) => Ok(LexBound::Max),
        Some((b'[', rest)) => Ok(LexBound::Inclusive(rest.to_vec())),
        Some((b'(', rest)) => Ok(LexBound::Exclusive(rest.to_vec())),
        _ => Err(error(ERR_MIN_MAX_NOT_LEX)),
    }
}

fn above_min(member: &[u8], min: &LexBound) -> bool {
    match min {
        LexBound::Min => true,
        LexBound::Max => false,
        LexBound::Inclusive(b) => member >= b.as_slice(),
        LexBound::Exclusive(b) => member > b.as_slice(),
    }
}

fn below_max(member: &[u8], max: &LexBound) -> bool {
    match max {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Inclusive(b) => member <= b.as_slice(),
        LexBound::Exclusive(b) => member < b.as_slice(),
    }
}

/// What a range selects.
#[derive(Debug, Clone)]
pub enum Selector {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

/// A parsed range request (`min`/`max` in ascending terms).
#[derive(Debug, Clone)]
pub struct RangeSpec {
    pub selector: Selector,
    pub rev: bool,
    pub offset: usize,
    pub limit: Option<usize>,
}

fn score_window<B: KvBackend>(
    min: ScoreBound,
    max: ScoreBound,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let from = if min.exclusive {
        Db::<B>::zindex_bound_after(min.value)
    } else {
        Some(Db::<B>::zindex_bound(min.value))
    };
    let to = if max.exclusive {
        Some(Db::<B>::zindex_bound(max.value))
    } else {
        Db::<B>::zindex_bound_after(max.value)
    };
    (from, to)
}

/// Runs a range over an existing zset; (member, score) in reply order.
pub fn select<B: KvBackend>(
    ctx: &mut Ctx<B>,
    key: &[u8],
    count: u64,
    spec: &RangeSpec,
) -> Result<Vec<(Vec<u8>, f64)>, CmdError> {
    let direction = if spec.rev {
        Direction::Reverse
    } else {
        Direction::Forward
    };
    let limit = spec.limit.unwrap_or(usize::MAX);
    Ok(match &spec.selector {
        Selector::Rank(start, stop) => {
            let Some((s, e)) = clamp_range(*start, *stop, count as i64) else {
                return Ok(Vec::new());
            };
            ctx.db
                .zset_index_scan(key, None, None, s as usize, (e - s + 1) as usize, direction)?
        }
        Selector::Score(min, max) => {
            if min.value > max.value || (min.value == max.value && (min.exclusive || max.exclusive))
            {
                return Ok(Vec::new());
            }
            let (from, to) = score_window::<B>(*min, *max);
            let Some(from) = from else {
                return Ok(Vec::new());
            };
            ctx.db.zset_index_scan(
                key,
                Some(&from),
                to.as_deref(),
                spec.offset,
                limit,
                direction,
            )?
        }
        Selector::Lex(min, max) => {
            // As Redis walks its ordered (score, member) list: the range must
            // overlap the ends, then the run starts at the first member past
            // `min` and stops at the first one beyond `max` (identical to a
            // filter when all scores are equal, the case Redis specifies).
            let all = ctx
                .db
                .zset_index_scan(key, None, None, 0, usize::MAX, Direction::Forward)?;
            let (Some(first), Some(last)) = (all.first(), all.last()) else {
                return Ok(Vec::new());
            };
            if !above_min(&last.0, min) || !below_max(&first.0, max) {
                return Ok(Vec::new());
            }
            let run: Vec<(Vec<u8>, f64)> = if spec.rev {
                all.into_iter()
                    .rev()
                    .skip_while(|(m, _)| !below_max(m, max))
                    .take_while(|(m, _)| above_min(m, min))
                    .collect()
            } else {
                all.into_iter()
                    .skip_while(|(m, _)| !above_min(m, min))
                    .take_while(|(m, _)| below_max(m, max))
                    .collect()
            };
            run.into_iter().skip(spec.offset).take(limit).collect()
        }
    })
}

/// Formats (member, score) pairs, with scores when asked.
pub fn pairs_reply(protocol: Protocol, items: Vec<(Vec<u8>, f64)>, with_scores: bool) -> Reply {
    if !with_scores {
        return Reply::Array(items.into_iter().map(|(m, _)| Reply::bulk(m)).collect());
    }
    if protocol == Protocol::Resp3 {
        return Reply::Array(
            items
                .into_iter()
                .map(|(m, s)| Reply::Array(vec![Reply::bulk(m), Reply::Double(s)]))
                .collect(),
        );
    }
    let mut out = Vec::with_capacity(items.len() * 2);
    for (m, s) in items {
        out.push(Reply::bulk(m));
        out.push(Reply::Double(s));
    }
    Reply::Array(out)
}

pub fn zadd<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, false);
    let mut i = 1;
    while i < cmd.args.len() {
        let a = &cmd.args[i];
        if is_word(a, "NX") {
            nx = true;
        } else if is_word(a, "XX") {
            xx = true;
        } else if is_word(a, "GT") {
            gt = true;
        } else if is_word(a, "LT") {
            lt = true;
        } else if is_word(a, "CH") {
            ch = true;
        } else if is_word(a, "INCR") {
            incr = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = &cmd.args[i..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(error(ERR_SYNTAX).into());
    }
    if nx && xx {
        return Err(error("ERR XX and NX options at the same time are not compatible").into());
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(
            error("ERR GT, LT, and/or NX options at the same time are not compatible").into(),
        );
    }
    if incr && rest.len() > 2 {
        return Err(error("ERR INCR option supports a single increment-element pair").into());
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for pair in rest.chunks(2) {
        let score = args::parse_double(&pair[0]).ok_or_else(|| error(ERR_NOT_FLOAT))?;
        pairs.push((score, pair[1].as_ref()));
    }
    let mut loaded = ctx.db.load_counted(key, Kind::ZSet)?;
    if !loaded.existed && xx {
        return Ok(if incr {
            Reply::NullBulk
        } else {
            Reply::Integer(0)
        });
    }
    if !loaded.existed {
        ctx.db.drop_rows(key);
    }
    let (mut added, mut changed) = (0i64, 0i64);
    let mut last_score = None;
    for (score, member) in pairs {
        let old = ctx.db.zset_score_raw(key, member)?;
        let mut new = score;
        if incr {
            new = old.unwrap_or(0.0) + score;
            if new.is_nan() {
                return Err(error(ERR_SCORE_NAN).into());
            }
        }
        match old {
            Some(_) if nx => continue,
            None if xx => continue,
            Some(o) => {
                if (gt && new <= o) || (lt && new >= o) {
                    continue;
                }
                if o != new {
                    ctx.db.zset_put_raw(key, member, Some(o), new);
                    changed += 1;
                }
            }
            None => {
                ctx.db.zset_put_raw(key, member, None, new);
                added += 1;
                loaded.count += 1;
                loaded.existed = true;
            }
        }
        last_score = Some(new);
    }
    if added > 0 || changed > 0 {
        ctx.db.save_counted(key, Kind::ZSet, &loaded);
    }
    if incr {
        return Ok(last_score.map_or(Reply::NullBulk, Reply::Double));
    }
    Ok(Reply::Integer(if ch { added + changed } else { added }))
}

pub fn zincrby<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let delta = args::parse_double(&cmd.args[1]).ok_or_else(|| error(ERR_NOT_FLOAT))?;
    let member = cmd.args[2].as_ref();
    let mut loaded = ctx.db.load_counted_for_write(key, Kind::ZSet)?;
    let old = ctx.db.zset_score_raw(key, member)?;
    let new = old.unwrap_or(0.0) + delta;
    if new.is_nan() {
        return Err(error(ERR_SCORE_NAN).into());
    }
    ctx.db.zset_put_raw(key, member, old, new);
    if old.is_none() {
        loaded.count += 1;
    }
    ctx.db.save_counted(key, Kind::ZSet, &loaded);
    Ok(Reply::Double(new))
}

fn remove_members<B: KvBackend>(
    ctx: &mut Ctx<B>,
    key: &[u8],
    loaded: &mut Loaded,
    members: &[(Vec<u8>, f64)],
) {
    for (member, score) in members {
        ctx.db.zset_delete_raw(key, member, *score);
        loaded.count -= 1;
    }
    if !members.is_empty() {
        ctx.db.save_counted(key, Kind::ZSet, loaded);
    }
}

pub fn zrem<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let mut loaded = ctx.db.load_counted(key, Kind::ZSet)?;
    if !loaded.existed {
        return Ok(Reply::Integer(0));
    }
    let mut doomed = Vec::new();
    for member in &cmd.args[1..] {
        if doomed
            .iter()
            .any(|(m, _): &(Vec<u8>, f64)| m.as_slice() == member.as_ref())
        {
            continue;
        }
        if let Some(score) = ctx.db.zset_score_raw(key, member)? {
            doomed.push((member.to_vec(), score));
        }
    }
    remove_members(ctx, key, &mut loaded, &doomed);
    Ok(Reply::Integer(doomed.len() as i64))
}

pub fn zcard<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    Ok(Reply::Integer(
        ctx.db.load_counted(&cmd.args[0], Kind::ZSet)?.count as i64,
    ))
}

pub fn zscore<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    Ok(ctx
        .db
        .zset_score(&cmd.args[0], &cmd.args[1])?
        .map_or(Reply::NullBulk, Reply::Double))
}

pub fn zmscore<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let exists = ctx.db.meta_of(key, Kind::ZSet)?.is_some();
    let mut out = Vec::new();
    for member in &cmd.args[1..] {
        let score = if exists {
            ctx.db.zset_score_raw(key, member)?
        } else {
            None
        };
        out.push(score.map_or(Reply::NullBulk, Reply::Double));
    }
    Ok(Reply::Array(out))
}

pub fn zcount<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let min = parse_score_bound(&cmd.args[1])?;
    let max = parse_score_bound(&cmd.args[2])?;
    let key = &cmd.args[0];
    let loaded = ctx.db.load_counted(key, Kind::ZSet)?;
    if !loaded.existed {
        return Ok(Reply::Integer(0));
    }
    let spec = RangeSpec {
        selector: Selector::Score(min, max),
        rev: false,
        offset: 0,
        limit: None,
    };
    Ok(Reply::Integer(
        select(ctx, key, loaded.count, &spec)?.len() as i64
    ))
}

pub fn zrank<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let with_score = match cmd.args.get(2) {
        Some(a) if is_word(a, "WITHSCORE") && cmd.args.len() == 3 => true,
        Some(_) => return Err(error(ERR_SYNTAX).into()),
        None => false,
    };
    let loaded = ctx.db.load_counted(key, Kind::ZSet)?;
    let missing = if with_score {
        Reply::NullArray
    } else {
        Reply::NullBulk
    };
    if !loaded.existed {
        return Ok(missing);
    }
    let Some(score) = ctx.db.zset_score_raw(key, &cmd.args[1])? else {
        return Ok(missing);
    };
    let mut rank = ctx.db.zset_rank_raw(key, &cmd.args[1], score)? as i64;
    if cmd.name() == "ZREVRANK" {
        rank = loaded.count as i64 - 1 - rank;
    }
    Ok(if with_score {
        Reply::Array(vec![Reply::Integer(rank), Reply::Double(score)])
    } else {
        Reply::Integer(rank)
    })
}

fn parse_limit(args: &[bytes::Bytes], i: usize) -> Result<(usize, Option<usize>), Reply> {
    let (Some(off), Some(cnt)) = (args.get(i + 1), args.get(i + 2)) else {
        return Err(error(ERR_SYNTAX));
    };
    let offset = parse_i64(off)?;
    let count = parse_i64(cnt)?;
    if offset < 0 {
        return Ok((usize::MAX, Some(0)));
    }
    Ok((offset as usize, (count >= 0).then_some(count as usize)))
}

/// ZRANGE and its older variants, which map onto one [`RangeSpec`].
pub fn zrange<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let name = cmd.name();
    let (mut by_score, mut by_lex, mut rev, mut with_scores) = (false, false, false, false);
    let mut offset = 0;
    let mut limit = None;
    let mut has_limit = false;
    match name {
        "ZRANGEBYSCORE" => by_score = true,
        "ZREVRANGEBYSCORE" => (by_score, rev) = (true, true),
        "ZRANGEBYLEX" => by_lex = true,
        "ZREVRANGE" => rev = true,
        _ => {}
    }
    let mut i = 3;
    while i < cmd.args.len() {
        let a = &cmd.args[i];
        if is_word(a, "WITHSCORES") && name != "ZRANGEBYLEX" {
            with_scores = true;
        } else if is_word(a, "LIMIT") && name != "ZREVRANGE" {
            (offset, limit) = parse_limit(&cmd.args, i)?;
            has_limit = true;
            i += 2;
        } else if name == "ZRANGE" && is_word(a, "BYSCORE") {
            by_score = true;
        } else if name == "ZRANGE" && is_word(a, "BYLEX") {
            by_lex = true;
        } else if name == "ZRANGE" && is_word(a, "REV") {
            rev = true;
        } else {
            return Err(error(ERR_SYNTAX).into());
        }
        i += 1;
    }
    if by_score && by_lex {
        return Err(error(ERR_SYNTAX).into());
    }
    if has_limit && !by_score && !by_lex {
        return Err(error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        )
        .into());
    }
    if with_scores && by_lex {
        return Err(
            error("ERR syntax error, WITHSCORES not supported in combination with BYLEX").into(),
        );
    }
    // With REV (and the ZREV* forms) the first bound is the maximum.
    let swap = rev && (by_score || by_lex);
    let (lo, hi) = if swap {
        (&cmd.args[2], &cmd.args[1])
    } else {
        (&cmd.args[1], &cmd.args[2])
    };
    let selector = if by_score {
        Selector::Score(parse_score_bound(lo)?, parse_score_bound(hi)?)
    } else if by_lex {
        Selector::Lex(parse_lex_bound(lo)?, parse_lex_bound(hi)?)
    } else {
        Selector::Rank(parse_i64(lo)?, parse_i64(hi)?)
    };
    let loaded = ctx.db.load_counted(key, Kind::ZSet)?;
    if !loaded.existed {
        return Ok(Reply::Array(Vec::new()));
    }
    let spec = RangeSpec {
        selector,
        rev,
        offset,
        limit,
    };
    let items = select(ctx, key, loaded.count, &spec)?;
    Ok(pairs_reply(ctx.protocol, items, with_scores))
}

/// Pops up to `count` members from the low (or high) end.
pub fn pop_members<B: KvBackend>(
    ctx: &mut Ctx<B>,
    key: &[u8],
    count: usize,
    max: bool,
) -> Result<Vec<(Vec<u8>, f64)>, CmdError> {
    let mut loaded = ctx.db.load_counted(key, Kind::ZSet)?;
    if !loaded.existed || count == 0 {
        return Ok(Vec::new());
    }
    let direction = if max {
        Direction::Reverse
    } else {
        Direction::Forward
    };
    let items = ctx
        .db
        .zset_index_scan(key, None, None, 0, count, direction)?;
    remove_members(ctx, key, &mut loaded, &items);
    Ok(items)
}

pub fn zpop<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let count = match cmd.args.get(1) {
        Some(arg) => {
            if cmd.args.len() > 2 {
                return Err(error(ERR_SYNTAX).into());
            }
            let n = parse_i64(arg).map_err(|_| error(ERR_MUST_BE_POSITIVE))?;
            if n < 0 {
                return Err(error(ERR_MUST_BE_POSITIVE).into());
            }
            n as usize
        }
        None => 1,
    };
    let items = pop_members(ctx, &cmd.args[0], count, cmd.name() == "ZPOPMAX")?;
    if ctx.protocol == Protocol::Resp3 && cmd.args.len() > 1 {
        return Ok(pairs_reply(ctx.protocol, items, true));
    }
    let mut out = Vec::new();
    for (m, s) in items {
        out.push(Reply::bulk(m));
        out.push(Reply::Double(s));
    }
    Ok(Reply::Array(out))
}

pub fn zremrange<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> CmdResult {
    let key = &cmd.args[0];
    let selector = if cmd.name() == "ZREMRANGEBYRANK" {
        Selector::Rank(parse_i64(&cmd.args[1])?, parse_i64(&cmd.args[2])?)
    } else {
        Selector::Score(
            parse_score_bound(&cmd.args[1])?,
            parse_score_bound(&cmd.args[2])?,
        )
    };
    let mut loaded = ctx.db.load_counted(key, Kind::ZSet)?;
    if !loaded.existed {
        return Ok(Reply::Integer(0));
    }
    let spec = RangeSpec {
        selector,
        rev: false,
        offset: 0,
        limit: None,
    };
    let items = select(ctx, key, loaded.count, &spec)?;
    remove_members(ctx, key, &mut loaded, &items);
    Ok(Reply::Integer(items.len() as i64))
}

/// BZPOPMIN's non-blocking attempt: the first non-empty key.
pub fn pop_first_min<B: KvBackend>(
    ctx: &mut Ctx<B>,
    keys: &[bytes::Bytes],
) -> Result<Option<Reply>, CmdError> {
    for key in keys {
        ctx.db.meta_of(key, Kind::ZSet)?;
    }
    for key in keys {
        if let Some((member, score)) = pop_members(ctx, key, 1, false)?.pop() {
            return Ok(Some(Reply::Array(vec![
                Reply::bulk(key),
                Reply::bulk(member),
                Reply::Double(score),
            ])));
        }
    }
    Ok(None)
}
