"""HyperLogLog differential check: the same PFADD/PFCOUNT/PFMERGE/GET/SET
sequence (deterministic from a seed) against a real redis-server and
against elastickv. Replies and the raw stored bytes (GET) must match, and
values written by each server must count the same on the other.

usage: hll_diff.py REAL_PORT OUR_PORT SEED
Prints "N mismatches" and exits 1 when N > 0.
"""

import random
import sys

import redis


def reply(conn, *args):
    try:
        return ("ok", conn.execute_command(*args))
    except redis.ResponseError as err:
        return ("err", str(err))


def main():
    real = redis.Redis(port=int(sys.argv[1]))
    ours = redis.Redis(port=int(sys.argv[2]))
    rng = random.Random(int(sys.argv[3]))
    mismatches = []

    def both(*args):
        a, b = reply(real, *args), reply(ours, *args)
        if a != b:
            mismatches.append((args[:3], a if len(repr(a)) < 200 else "<long>",
                               b if len(repr(b)) < 200 else "<long>"))
        return a

    for conn in (real, ours):
        conn.flushall()

    keys = [f"h{i}" for i in range(6)]
    # Sizes chosen to cross the sparse VAL limit, the 3000-byte sparse
    # limit (promotion to dense) and the large-range estimator.
    plans = [0, 1, 5, 40, 300, 2000, 20000]
    for step in range(60):
        key = rng.choice(keys)
        op = rng.random()
        if op < 0.55:
            n = rng.choice(plans)
            base = rng.randrange(10**6)
            elements = [f"e{base + i}".encode() for i in range(n)]
            if rng.random() < 0.3:
                elements.append(bytes(rng.randrange(256) for _ in range(rng.randrange(20))))
            for start in range(0, max(len(elements), 1), 500):
                both("PFADD", key, *elements[start:start + 500])
        elif op < 0.75:
            both("PFCOUNT", *rng.sample(keys, rng.randrange(1, 4)))
        elif op < 0.9:
            both("PFMERGE", key, *rng.sample(keys, rng.randrange(0, 3)))
        else:
            both("PFCOUNT", key)
        both("GET", key)

    # Errors: wrong type, non-HLL string, corrupt sparse value.
    both("SET", "plain", "hello")
    both("PFADD", "plain", "x")
    both("PFCOUNT", "plain")
    both("PFCOUNT", "plain", keys[0])
    both("PFMERGE", keys[0], "plain")
    both("RPUSH", "list", "a")
    both("PFADD", "list", "x")
    both("PFCOUNT", "list")
    both("PFMERGE", "list")
    header = b"HYLL\x01\x00\x00\x00" + b"\x00" * 7 + b"\x80"
    both("SET", "corrupt", header + b"\x7f\xfe")  # covers 16383 registers
    both("PFCOUNT", "corrupt")
    both("PFADD", "corrupt", "a", "b", "c")
    both("PFCOUNT", "corrupt", keys[0])
    both("SET", "short", b"HYLL\x00")
    both("PFCOUNT", "short")
    both("PFADD", "nokey")
    both("GET", "nokey")
    both("PFADD", "ttl", "a")
    both("PEXPIRE", "ttl", 100000)
    both("PFADD", "ttl", "b", "c")
    both("PFMERGE", "ttl", keys[1])
    a, b = reply(real, "PTTL", "ttl"), reply(ours, "PTTL", "ttl")
    if not (a[0] == b[0] == "ok" and a[1] > 0 and b[1] > 0):
        mismatches.append(("PTTL ttl", a, b))
    both("TYPE", keys[0])

    # Cross-loading: bytes written by one server count the same on the
    # other, both ways ("x" keys carry Redis's bytes, "y" keys ours).
    loaded = 0
    for key in keys:
        for prefix, source in (("x", real), ("y", ours)):
            value = source.get(key)
            if value is None:
                continue
            loaded += 1
            ours.set(prefix + key, value)
            real.set(prefix + key, value)
            both("PFCOUNT", prefix + key)
            both("PFCOUNT", prefix + key, keys[0])
            both("PFADD", prefix + key, "cross", f"{prefix}{key}")
            both("GET", prefix + key)
            both("PFCOUNT", prefix + key)
            both("GET", prefix + key)
    if loaded == 0:
        mismatches.append(("cross-loading", "no HLL key was created", ""))

    print(f"{len(mismatches)} mismatches")
    for m in mismatches[:20]:
        print(m)
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
