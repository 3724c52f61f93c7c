"""Differential test: the same deterministic command corpus against real
redis-server and against elastickv; replies must match.

Usage: diff.py REDIS_PORT ELASTICKV_PORT SEED COUNT [PIPELINE]
With PIPELINE > 1 the commands are sent in pipelined runs of that many
(elastickv runs consecutive data commands of a pipeline as one batch, so
this checks that batching never changes a reply).
Prints every mismatch and exits 1 if there is any. Replies of commands
whose order Redis leaves unspecified are compared sorted; random commands
(SPOP, SRANDMEMBER) and SCAN-family commands are not in the corpus (see
docs/redis-compatibility.md).
"""
import random
import sys

import redis

KEYS = ["k0", "k1", "k2", "k3", "k4", "k5"]
VALUES = ["a", "b", "c", "1", "2", "10", "-3", "1.5", "x y", ""]
MEMBERS = ["m0", "m1", "m2", "m3", "m4"]
SCORES = ["0", "1", "2", "-1", "2.5", "+inf", "-inf", "1e3", "nan", "abc"]
INTS = ["0", "1", "-1", "2", "5", "-5", "100", "x", "9223372036854775807"]


SCRIPTS_1KEY = [
    "return redis.call('GET', KEYS[1])",
    "return redis.call('INCR', KEYS[1])",
    "return redis.pcall('INCR', KEYS[1])",
    "return redis.pcall('HGET', KEYS[1], ARGV[2])",
    "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])",
    "return {redis.call('TYPE', KEYS[1]), redis.call('EXISTS', KEYS[1])}",
    "return redis.call('LRANGE', KEYS[1], 0, -1)",
    "return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')",
    "return redis.call('ZSCORE', KEYS[1], ARGV[2])",
    "return redis.call('SCARD', KEYS[1]) + 1",
    "return redis.call('PFADD', KEYS[1], ARGV[1])",
    "return redis.call('PFCOUNT', KEYS[1])",
    "redis.call('RPUSH', KEYS[1], ARGV[1]); return redis.call('LLEN', KEYS[1])",
    "local ok, e = pcall(redis.call, 'LPUSH', KEYS[1], 'x'); return {tostring(ok), e}",
    "redis.call('HSET', KEYS[1], ARGV[2], ARGV[1]); return redis.call('HGET', KEYS[1], ARGV[2])",
    "return redis.call('GETRANGE', KEYS[1], 0, 1)",
    "redis.call('DEL', KEYS[1]); return redis.call('EXISTS', KEYS[1])",
    "return redis.call('XLEN', KEYS[1])",
    # RESP3 shapes after redis.setresp(3), downgraded for this RESP2 client.
    "redis.setresp(3); local r = redis.pcall('HGETALL', KEYS[1]); if r.err then return r end; local n = 0; for _ in pairs(r.map) do n = n + 1 end; return n",
    "redis.setresp(3); return redis.pcall('ZSCORE', KEYS[1], ARGV[2])",
    "redis.setresp(3); return redis.pcall('GET', KEYS[1]) == nil",
    "redis.setresp(3); local r = redis.pcall('SMEMBERS', KEYS[1]); if r.err then return r end; return r.set[ARGV[2]] or false",
    "return cjson.encode({KEYS[1], ARGV[1], {redis.pcall('GET', KEYS[1])}})",
]
SCRIPTS_0KEY = [
    "return {1, 2.5, 'x', true, false, nil, 3}",
    "return tonumber(ARGV[2])",
    "return ARGV[1]",
    "return #ARGV",
    "return redis.status_reply(ARGV[1])",
    "return redis.error_reply('MY err')",
    "return redis.error_reply(ARGV[1])",
    "return {err = 'CODE text'}",
    "return {ok = 'fine'}",
    "return redis.sha1hex(ARGV[1])",
    "return redis.call('NOSUCH')",
    "return redis.call('GET')",
    "return redis.call()",
    "return redis.call('GET', {})",
    "return redis.call('MULTI')",
    "return redis.pcall('NOSUCH')",
    "error('boom')",
    "error({err = 'MINE failed'})",
    "return undefined_global",
    "leaked = 1",
    "return (",
    "return 3.99",
    "return -2.5",
    "return 2^63",
    "return string.format('%5.2f', 3.14159)",
    "return table.concat({'a', 'b', 'c'}, '-')",
    "return {math.floor(7.5), math.max(1, 9), string.rep('ab', 3)}",
    "return type(os)",
    "return redis.call('PING')",
    "return redis.call('PUBLISH', 'nobody-listens', ARGV[1])",
    "redis.setresp(3); return {double = tonumber(ARGV[2]) or 0.5}",
    "redis.setresp(3); return ARGV[1] == 'a'",
    "redis.setresp(ARGV[2])",
    "redis.setresp()",
    # The libraries Redis offers scripts: cjson, cmsgpack, struct, bit.
    "return cjson.encode({1, 2.5, 'x', true, {a = ARGV[1]}, {}, 'q\"/\\n'})",
    "return cjson.encode(cjson.decode(ARGV[1]))",
    "return cjson.encode(cjson.decode('[1, 2e3, -0.5, \"s\", true, false, null, {\"k\": [null]}]'))",
    "return cjson.decode('{\"a\": null}').a == cjson.null and 1 or 0",
    "return cjson.encode({[1] = 1, [3] = 3})",
    "return cjson.encode({[1] = 1, [30] = 3})",
    "return cjson.encode(tonumber(ARGV[2]) or 0.1)",
    "return cjson.decode(ARGV[1] .. ']')",
    "return cmsgpack.pack(ARGV[1], tonumber(ARGV[2]) or 0, {1, 2, {x = 1}}, true, 1.5, 0.1, -129)",
    "return cmsgpack.unpack(cmsgpack.pack({1, 2.5, 'x', true, false}))",
    "return {cmsgpack.unpack(cmsgpack.pack(ARGV[1], tonumber(ARGV[2]) or -1, 65536, -40000))}",
    "return cmsgpack.unpack(ARGV[1])",
    "return {cmsgpack.unpack_one(cmsgpack.pack(1, 'two', 3), 0)}",
    "return struct.pack('>I2i4b', 258, -1, tonumber(ARGV[2]) or 7)",
    "return {struct.unpack('<hB', ARGV[1] .. 'xyz')}",
    "return struct.unpack('>i4', ARGV[1])",
    "return {struct.size('>i4d'), struct.pack('s', ARGV[1]), struct.pack('c3', ARGV[1] .. 'pad')}",
    "return {bit.band(-1, 0xff), bit.lshift(1, 31), bit.rshift(-1, 28), bit.arshift(-256, 4), bit.bnot(0)}",
    "return bit.tohex(bit.bxor(tonumber(ARGV[2]) or 7, 0xff), -4)",
    "return {bit.tobit(2^32 + 5), bit.rol(0x12345678, 8), bit.ror(0x12345678, 8), bit.bswap(0x12345678)}",
    "return bit.band(ARGV[1])",
]


def gen(rng):
    k = lambda: rng.choice(KEYS)
    v = lambda: rng.choice(VALUES)
    m = lambda: rng.choice(MEMBERS)
    i = lambda: rng.choice(INTS)
    s = lambda: rng.choice(SCORES)
    bound = lambda: rng.choice(["-inf", "+inf", "0", "(1", "2", "(2.5", "x"])
    lex = lambda: rng.choice(["-", "+", "[m1", "(m2", "[m3", "m0"])
    choices = [
        lambda: ["SET", k(), v()] + rng.choice([[], ["NX"], ["XX"], ["GET"], ["EX", "100"], ["KEEPTTL"], ["NX", "XX"], ["EX", "0"]]),
        lambda: ["GET", k()],
        lambda: ["GETSET", k(), v()],
        lambda: ["GETDEL", k()],
        lambda: ["MGET", k(), k(), k()],
        lambda: ["MSET", k(), v(), k(), v()],
        lambda: ["MSETNX", k(), v(), k(), v()],
        lambda: ["SETNX", k(), v()],
        lambda: ["INCR", k()],
        lambda: ["DECRBY", k(), i()],
        lambda: ["INCRBY", k(), i()],
        lambda: ["INCRBYFLOAT", k(), rng.choice(["1.5", "2", "-0.5", "x"])],
        lambda: ["APPEND", k(), v()],
        lambda: ["STRLEN", k()],
        lambda: ["GETRANGE", k(), i(), i()],
        lambda: ["SETRANGE", k(), rng.choice(["0", "2", "-1"]), v()],
        lambda: ["DEL", k(), k()],
        lambda: ["EXISTS", k(), k()],
        lambda: ["TYPE", k()],
        lambda: ["TTL", k()],
        lambda: ["EXPIRE", k(), rng.choice(["100", "200", "-1"])] + rng.choice([[], ["NX"], ["XX"], ["GT"], ["LT"], ["NX", "XX"]]),
        lambda: ["PERSIST", k()],
        lambda: ["RENAME", k(), k()],
        lambda: ["RENAMENX", k(), k()],
        lambda: ["COPY", k(), k()] + rng.choice([[], ["REPLACE"]]),
        lambda: ["HSET", k(), m(), v()] + rng.choice([[], [m(), v()]]),
        lambda: ["HGET", k(), m()],
        lambda: ["HMGET", k(), m(), m()],
        lambda: ["HDEL", k(), m(), m()],
        lambda: ["HLEN", k()],
        lambda: ["HEXISTS", k(), m()],
        lambda: ["HGETALL", k()],
        lambda: ["HKEYS", k()],
        lambda: ["HVALS", k()],
        lambda: ["HSETNX", k(), m(), v()],
        lambda: ["HINCRBY", k(), m(), i()],
        lambda: ["HINCRBYFLOAT", k(), m(), rng.choice(["1.5", "x", "2"])],
        lambda: ["HSTRLEN", k(), m()],
        lambda: ["SADD", k(), m(), m()],
        lambda: ["SREM", k(), m()],
        lambda: ["SCARD", k()],
        lambda: ["SISMEMBER", k(), m()],
        lambda: ["SMISMEMBER", k(), m(), m()],
        lambda: ["SMEMBERS", k()],
        lambda: ["SMOVE", k(), k(), m()],
        lambda: [rng.choice(["SINTER", "SUNION", "SDIFF"]), k(), k()],
        lambda: [rng.choice(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), k(), k(), k()],
        lambda: [rng.choice(["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]), k(), v(), v()],
        lambda: [rng.choice(["LPOP", "RPOP"]), k()] + rng.choice([[], ["2"], ["0"], ["-1"]]),
        lambda: ["LLEN", k()],
        lambda: ["LRANGE", k(), i(), i()],
        lambda: ["LINDEX", k(), i()],
        lambda: ["LSET", k(), i(), v()],
        lambda: ["LREM", k(), i(), v()],
        lambda: ["LTRIM", k(), i(), i()],
        lambda: ["LINSERT", k(), rng.choice(["BEFORE", "AFTER", "X"]), v(), v()],
        lambda: ["LPOS", k(), v()] + rng.choice([[], ["RANK", "-1"], ["COUNT", "0"], ["RANK", "0"]]),
        lambda: ["LMOVE", k(), k(), rng.choice(["LEFT", "RIGHT"]), rng.choice(["LEFT", "RIGHT"])],
        lambda: ["RPOPLPUSH", k(), k()],
        lambda: ["ZADD", k()] + rng.choice([[], ["NX"], ["XX"], ["GT"], ["CH"], ["INCR"], ["NX", "GT"]]) + [s(), m()],
        lambda: ["ZADD", k(), s(), m(), s(), m()],
        lambda: ["ZINCRBY", k(), s(), m()],
        lambda: ["ZREM", k(), m(), m()],
        lambda: ["ZCARD", k()],
        lambda: ["ZSCORE", k(), m()],
        lambda: ["ZMSCORE", k(), m(), m()],
        lambda: ["ZCOUNT", k(), bound(), bound()],
        lambda: [rng.choice(["ZRANK", "ZREVRANK"]), k(), m()],
        lambda: ["ZRANGE", k(), i(), i()] + rng.choice([[], ["WITHSCORES"], ["REV"]]),
        lambda: ["ZRANGE", k(), bound(), bound(), "BYSCORE"] + rng.choice([[], ["REV"], ["LIMIT", "1", "2"], ["WITHSCORES"]]),
        lambda: ["ZRANGE", k(), lex(), lex(), "BYLEX"] + rng.choice([[], ["REV"], ["LIMIT", "0", "1"]]),
        lambda: [rng.choice(["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]), k(), bound(), bound()] + rng.choice([[], ["WITHSCORES"], ["LIMIT", "0", "1"]]),
        lambda: ["ZRANGEBYLEX", k(), lex(), lex()],
        lambda: ["ZREVRANGE", k(), i(), i()] + rng.choice([[], ["WITHSCORES"]]),
        lambda: [rng.choice(["ZPOPMIN", "ZPOPMAX"]), k()] + rng.choice([[], ["2"]]),
        lambda: ["ZREMRANGEBYRANK", k(), i(), i()],
        lambda: ["ZREMRANGEBYSCORE", k(), bound(), bound()],
        lambda: ["DBSIZE"],
        lambda: ["XADD", k()] + rng.choice([[], ["MAXLEN", "=", "2"], ["NOMKSTREAM"], ["MINID", "=", "3"]]) + [rng.choice(["1-1", "2", "5-*", "0-0", "3-0", "7-2", "x"]), m(), v()],
        lambda: [rng.choice(["XRANGE", "XREVRANGE"]), k(), rng.choice(["-", "+", "2", "(3-0", "5"]), rng.choice(["-", "+", "7", "(5-0"])] + rng.choice([[], ["COUNT", "1"]]),
        lambda: ["XLEN", k()],
        lambda: ["XDEL", k(), rng.choice(["1-1", "2-0", "5-0", "x"])],
        lambda: ["XTRIM", k(), rng.choice(["MAXLEN", "MINID"]), "=", rng.choice(["1", "3", "0"])],
        lambda: ["XREAD", "COUNT", "2", "STREAMS", k(), rng.choice(["0", "2-0", "$"])],
        # HyperLogLog: replies and (through GET) the stored HYLL bytes.
        lambda: ["PFADD", k()] + [m() for _ in range(rng.randrange(0, 4))] + [v()],
        lambda: ["PFADD", k()] + [f"e{rng.randrange(10**6)}" for _ in range(rng.choice([1, 50, 400]))],
        lambda: ["PFCOUNT"] + [k() for _ in range(rng.randrange(1, 4))],
        lambda: ["PFMERGE", k()] + [k() for _ in range(rng.randrange(0, 3))],
        # Lua scripts: conversions, errors, KEYS/ARGV, reads of own writes.
        lambda: ["EVAL", rng.choice(SCRIPTS_1KEY), "1", k(), v(), m()],
        lambda: ["EVAL", rng.choice(SCRIPTS_0KEY), "0", v(), i()],
        lambda: ["EVAL", "return 1", rng.choice(["-1", "x", "3", "2"]), k()],
        lambda: [rng.choice(["EVALSHA", "EVALSHA_RO"]), rng.choice(["0" * 40, "ffffffffffffffffffffffffffffffffffffffff", "abc"]), "0"],
        lambda: ["EVAL_RO", rng.choice(["return redis.call('GET', KEYS[1])", "return redis.call('DEL', KEYS[1])"]), "1", k()],
        lambda: ["SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0" * 40],
    ]
    return rng.choice(choices)()


UNORDERED = {"SMEMBERS", "SINTER", "SUNION", "SDIFF", "HKEYS", "HVALS", "KEYS"}


def normalize(cmd, reply):
    name = cmd[0].upper()
    if isinstance(reply, list) and name in UNORDERED:
        return sorted(reply, key=repr)
    if isinstance(reply, list) and name == "HGETALL":
        return sorted(zip(reply[::2], reply[1::2]))
    return reply


def call(conn, cmd):
    conn.send_command(*cmd)
    try:
        return conn.read_response()
    except redis.ResponseError as err:
        return ("error", str(err))


def main():
    redis_port, ours_port, seed, count = (int(a) for a in sys.argv[1:5])
    real = redis.Connection(host="127.0.0.1", port=redis_port)
    ours = redis.Connection(host="127.0.0.1", port=ours_port)
    for conn in (real, ours):
        call(conn, ["FLUSHALL"])
    pipeline = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    rng = random.Random(seed)
    mismatches = 0
    n = 0
    while n < count:
        cmds = [gen(rng) for _ in range(min(pipeline, count - n))]
        replies = []
        for conn in (real, ours):
            for cmd in cmds:
                conn.send_command(*cmd)
            got = []
            for cmd in cmds:
                try:
                    got.append(normalize(cmd, conn.read_response()))
                except redis.ResponseError as err:
                    got.append(("error", str(err)))
            replies.append(got)
        for cmd, a, b in zip(cmds, replies[0], replies[1]):
            if a != b:
                mismatches += 1
                print(f"#{n} {cmd!r}\n  redis:     {a!r}\n  elastickv: {b!r}")
            n += 1
    print(f"{count} commands, {mismatches} mismatches")
    sys.exit(1 if mismatches else 0)


main()
