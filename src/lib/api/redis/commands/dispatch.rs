//! Routes a command to its handler and records what it wrote.

use super::ctx::{Ctx, settle};
use super::strings::ExpireUnit;
use super::{hashes, hll, keyspace, lists, scripting, server, sets, streams, strings, zsets};
use crate::api::redis::args::Command;
use crate::api::redis::reply::Reply;
use crate::model::redis::Kind;
use crate::txn::{KvBackend, TxnError};

/// Runs one command inside the current transaction. Client errors are
/// replies; only transaction failures are `Err`.
pub fn run<B: KvBackend>(ctx: &mut Ctx<B>, cmd: &Command) -> Result<Reply, TxnError> {
    let result = match cmd.name() {
        // strings
        "GET" => strings::get(ctx, cmd),
        "SET" => strings::set(ctx, cmd),
        "SETNX" => strings::setnx(ctx, cmd),
        "SETEX" => strings::setex(ctx, cmd, ExpireUnit::Seconds, "setex"),
        "PSETEX" => strings::setex(ctx, cmd, ExpireUnit::Millis, "psetex"),
        "GETSET" => strings::getset(ctx, cmd),
        "GETDEL" => strings::getdel(ctx, cmd),
        "GETEX" => strings::getex(ctx, cmd),
        "MGET" => strings::mget(ctx, cmd),
        "MSET" => strings::mset(ctx, cmd, false),
        "MSETNX" => strings::mset(ctx, cmd, true),
        "INCR" | "DECR" | "INCRBY" | "DECRBY" => strings::incr_family(ctx, cmd),
        "INCRBYFLOAT" => strings::incrbyfloat(ctx, cmd),
        "APPEND" => strings::append(ctx, cmd),
        "STRLEN" => strings::strlen(ctx, cmd),
        "GETRANGE" => strings::getrange(ctx, cmd),
        "SETRANGE" => strings::setrange(ctx, cmd),
        // keyspace
        "DEL" | "UNLINK" => keyspace::del(ctx, cmd),
        "EXISTS" => keyspace::exists(ctx, cmd),
        "TYPE" => keyspace::type_of(ctx, cmd),
        "TTL" => keyspace::ttl(ctx, cmd, false),
        "PTTL" => keyspace::ttl(ctx, cmd, true),
        "EXPIRETIME" => keyspace::expiretime(ctx, cmd, false),
        "PEXPIRETIME" => keyspace::expiretime(ctx, cmd, true),
        "EXPIRE" | "PEXPIRE" | "EXPIREAT" | "PEXPIREAT" => keyspace::expire(ctx, cmd),
        "PERSIST" => keyspace::persist(ctx, cmd),
        "RENAME" => keyspace::rename(ctx, cmd, false),
        "RENAMENX" => keyspace::rename(ctx, cmd, true),
        "COPY" => keyspace::copy(ctx, cmd),
        "KEYS" => keyspace::keys(ctx, cmd),
        "SCAN" => keyspace::scan(ctx, cmd),
        "DBSIZE" => keyspace::dbsize(ctx, cmd),
        "FLUSHDB" | "FLUSHALL" => keyspace::flush(ctx, cmd),
        // No legacy (unprefixed) keys exist in this layout.
        "FLUSHLEGACY" => Ok(Reply::ok()),
        "OBJECT" => keyspace::object(ctx, cmd),
        // hashes
        "HSET" | "HMSET" => hashes::hset(ctx, cmd),
        "HSETNX" => hashes::hsetnx(ctx, cmd),
        "HGET" => hashes::hget(ctx, cmd),
        "HMGET" => hashes::hmget(ctx, cmd),
        "HGETALL" => hashes::hgetall(ctx, cmd),
        "HKEYS" => hashes::hkeys(ctx, cmd, false),
        "HVALS" => hashes::hkeys(ctx, cmd, true),
        "HDEL" => hashes::hdel(ctx, cmd),
        "HEXISTS" => hashes::hexists(ctx, cmd),
        "HLEN" => hashes::hlen(ctx, cmd),
        "HSTRLEN" => hashes::hstrlen(ctx, cmd),
        "HINCRBY" => hashes::hincrby(ctx, cmd),
        "HINCRBYFLOAT" => hashes::hincrbyfloat(ctx, cmd),
        "HSCAN" => hashes::collection_scan(ctx, cmd, Kind::Hash),
        // sets
        "SADD" => sets::sadd(ctx, cmd),
        "SREM" => sets::srem(ctx, cmd),
        "SCARD" => sets::scard(ctx, cmd),
        "SISMEMBER" => sets::sismember(ctx, cmd),
        "SMISMEMBER" => sets::smismember(ctx, cmd),
        "SMEMBERS" => sets::smembers(ctx, cmd),
        "SPOP" => sets::spop(ctx, cmd),
        "SRANDMEMBER" => sets::srandmember(ctx, cmd),
        "SMOVE" => sets::smove(ctx, cmd),
        "SINTER" | "SUNION" | "SDIFF" | "SINTERSTORE" | "SUNIONSTORE" | "SDIFFSTORE" => {
            sets::set_algebra(ctx, cmd)
        }
        "SSCAN" => hashes::collection_scan(ctx, cmd, Kind::Set),
        // lists
        "LPUSH" | "RPUSH" | "LPUSHX" | "RPUSHX" => lists::push(ctx, cmd),
        "LPOP" | "RPOP" => lists::pop(ctx, cmd),
        "LLEN" => lists::llen(ctx, cmd),
        "LRANGE" => lists::lrange(ctx, cmd),
        "LINDEX" => lists::lindex(ctx, cmd),
        "LSET" => lists::lset(ctx, cmd),
        "LREM" => lists::lrem(ctx, cmd),
        "LTRIM" => lists::ltrim(ctx, cmd),
        "LINSERT" => lists::linsert(ctx, cmd),
        "LPOS" => lists::lpos(ctx, cmd),
        "LMOVE" | "RPOPLPUSH" => lists::lmove(ctx, cmd),
        // Inside MULTI/EXEC or a script a blocking command does not block.
        "BLPOP" | "BRPOP" | "BZPOPMIN" => return super::blocking::attempt(ctx, cmd),
        // sorted sets
        "ZADD" => zsets::zadd(ctx, cmd),
        "ZINCRBY" => zsets::zincrby(ctx, cmd),
        "ZREM" | "ELASTICKV.ZREMFAST" => zsets::zrem(ctx, cmd),
        "ZCARD" => zsets::zcard(ctx, cmd),
        "ZSCORE" => zsets::zscore(ctx, cmd),
        "ZMSCORE" => zsets::zmscore(ctx, cmd),
        "ZCOUNT" => zsets::zcount(ctx, cmd),
        "ZRANK" | "ZREVRANK" => zsets::zrank(ctx, cmd),
        "ZRANGE" | "ZRANGEBYSCORE" | "ZREVRANGEBYSCORE" | "ZRANGEBYLEX" | "ZREVRANGE" => {
            zsets::zrange(ctx, cmd)
        }
        "ZPOPMIN" | "ZPOPMAX" => zsets::zpop(ctx, cmd),
        "ZREMRANGEBYRANK" | "ZREMRANGEBYSCORE" => zsets::zremrange(ctx, cmd),
        "ZSCAN" => hashes::collection_scan(ctx, cmd, Kind::ZSet),
        // streams
        "XADD" => streams::xadd(ctx, cmd),
        "XLEN" => streams::xlen(ctx, cmd),
        "XRANGE" | "XREVRANGE" => streams::xrange(ctx, cmd),
        "XDEL" => streams::xdel(ctx, cmd),
        "XTRIM" => streams::xtrim(ctx, cmd),
        "XREAD" => streams::xread(ctx, cmd),
        // HyperLogLog
        "PFADD" => hll::pfadd(ctx, cmd),
        "PFCOUNT" => hll::pfcount(ctx, cmd),
        "PFMERGE" => hll::pfmerge(ctx, cmd),
        // scripting
        "EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" | "SCRIPT" => {
            return scripting::run(ctx, cmd);
        }
        // server
        "INFO" => server::info(ctx, cmd),
        "CONFIG" => server::config(ctx, cmd),
        "TIME" => Ok(server::time()),
        "WAIT" => server::wait(cmd),
        other => Ok(Reply::error(format!(
            "ERR unknown command '{}'",
            other.to_ascii_lowercase()
        ))),
    };
    if cmd.spec.is_write() && matches!(result, Ok(ref r) if !r.is_error()) {
        ctx.written
            .extend(cmd.keys().into_iter().map(|k| k.to_vec()));
    }
    settle(result)
}
