"""Differential test of the Lua libraries scripts get (cjson, cmsgpack,
struct): random, mostly malformed input through their decoders and
packers, against real redis-server and against elastickv; every reply
(value or error text) must match.

Usage: lua_libs_diff.py REDIS_PORT ELASTICKV_PORT SEED COUNT
Prints every mismatch (the first few in full) and exits 1 if there is any.
"""
import random
import sys

import redis

SCRIPTS = [
    "return cjson.encode(cjson.decode(ARGV[1]))",
    "return {cmsgpack.unpack(ARGV[1])}",
    "return {cmsgpack.unpack_limit(ARGV[1], 3, 1)}",
    "return {cmsgpack.unpack_one(ARGV[1], 2)}",
    "return {struct.unpack(ARGV[2], ARGV[1])}",
    "return struct.pack(ARGV[2], 1, 2, 'x', 4)",
    "return cmsgpack.pack(cjson.decode(ARGV[1]))",
]
# Bytes that make JSON and MessagePack tokens (and break them).
ALPHABET = (
    b'[]{}",:0123456789.eE+-truefalsnul\\u \x00\x80\xff'
    + bytes(range(0x80, 0xA0))
    + bytes([0xC0, 0xC2, 0xC3, 0xCC, 0xCD, 0xD9, 0xDC, 0xDE, 0x91, 0x81, 0xA1])
)
FORMATS = ["<i4", ">I2s", "!4bhd", "c0", "i9", "c3x", "bBhHlLTfd", "s", "<i17", "Xz"]


def reply(conn, script, data, fmt):
    try:
        return conn.eval(script, 0, data, fmt)
    except redis.ResponseError as err:
        return ("error", str(err))


def main():
    redis_port, ours_port, seed, count = (int(a) for a in sys.argv[1:5])
    real = redis.Redis(host="127.0.0.1", port=redis_port)
    ours = redis.Redis(host="127.0.0.1", port=ours_port)
    rng = random.Random(seed)
    mismatches = 0
    for n in range(count):
        data = bytes(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
        script, fmt = rng.choice(SCRIPTS), rng.choice(FORMATS)
        expected, got = reply(real, script, data, fmt), reply(ours, script, data, fmt)
        if expected != got:
            mismatches += 1
            if mismatches <= 10:
                print(f"#{n} {script!r} {data!r} {fmt!r}\n  redis:     {expected!r}\n  elastickv: {got!r}")
    print(f"{count} scripts, {mismatches} mismatches")
    sys.exit(1 if mismatches else 0)


main()
