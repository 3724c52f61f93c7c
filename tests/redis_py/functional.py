"""Functional checks of elastickv's Redis front end through redis-py.

Usage: functional.py PORT. Exits non-zero (assertion) on the first failure.
"""
import sys
import threading
import time

import redis

r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), decode_responses=True)
r2 = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), decode_responses=True)


def expect_error(fn, fragment):
    try:
        fn()
    except redis.ResponseError as err:
        assert fragment in str(err), f"{fragment!r} not in {err!r}"
        return
    raise AssertionError(f"expected error containing {fragment!r}")


# strings
assert r.set("s", "v") is True
assert r.get("s") == "v"
assert r.set("s", "w", nx=True) is None
assert r.set("s", "w", xx=True, get=True) == "v"
assert r.append("s", "xyz") == 4
assert r.getrange("s", 1, -1) == "xyz"
assert r.setrange("s", 6, "!") == 7 and r.get("s") == "wxyz\x00\x00!"
assert r.incr("n") == 1 and r.incrby("n", 10) == 11 and r.decr("n") == 10
assert r.incrbyfloat("f", "1.5") == 1.5
expect_error(lambda: r.incr("s"), "not an integer")
assert r.mset({"a": "1", "b": "2"}) is True
assert r.mget("a", "b", "nope") == ["1", "2", None]
assert r.msetnx({"a": "x", "c": "3"}) is False and r.get("c") is None
assert r.getdel("a") == "1" and r.exists("a") == 0
assert r.strlen("b") == 1

# ttl family
r.set("t", "v", ex=100)
assert 99 <= r.ttl("t") <= 100
assert r.persist("t") is True and r.ttl("t") == -1
assert r.pexpire("t", 50) is True
time.sleep(0.2)
assert r.get("t") is None and r.ttl("t") == -2
r.set("t2", "v")
assert r.expireat("t2", int(time.time()) + 1000) is True
assert r.expiretime("t2") > time.time()
assert r.expire("t2", 10, gt=True) is False
assert r.expire("t2", -1) is True and r.exists("t2") == 0

# hashes
assert r.hset("h", mapping={"f1": "1", "f2": "2"}) == 2
assert r.hset("h", "f1", "one") == 0
assert r.hget("h", "f1") == "one" and r.hlen("h") == 2
assert r.hgetall("h") == {"f1": "one", "f2": "2"}
assert not r.hsetnx("h", "f2", "x")
assert r.hincrby("h", "f2", 5) == 7 and r.hincrbyfloat("h", "f3", 0.5) == 0.5
assert sorted(r.hkeys("h")) == ["f1", "f2", "f3"] and r.hstrlen("h", "f1") == 3
assert r.hdel("h", "f1", "zz") == 1 and r.hexists("h", "f1") is False
expect_error(lambda: r.get("h"), "WRONGTYPE")
assert r.type("h") == "hash"

# sets
assert r.sadd("s1", "a", "b", "c") == 3 and r.sadd("s2", "b", "c", "d") == 3
assert r.sinter("s1", "s2") == {"b", "c"}
assert r.sunion("s1", "s2") == {"a", "b", "c", "d"}
assert r.sdiff("s1", "s2") == {"a"}
assert r.sinterstore("s3", ["s1", "s2"]) == 2 and r.smembers("s3") == {"b", "c"}
assert r.smove("s1", "s2", "a") is True and r.sismember("s2", "a") == 1
assert r.smismember("s1", ["a", "b"]) == [0, 1]
popped = r.spop("s3")
assert popped in ("b", "c") and r.scard("s3") == 1

# lists
assert r.rpush("l", "a", "b", "c") == 3 and r.lpush("l", "z") == 4
assert r.lrange("l", 0, -1) == ["z", "a", "b", "c"]
assert r.lindex("l", -1) == "c" and r.llen("l") == 4
assert r.linsert("l", "before", "b", "x") == 5
assert r.lrem("l", 0, "x") == 1
assert r.lset("l", 0, "y") is True
assert r.lpop("l", 2) == ["y", "a"] and r.rpop("l") == "c"
assert r.lmove("l", "l2", "LEFT", "RIGHT") == "b"
assert r.exists("l") == 0 and r.lrange("l2", 0, -1) == ["b"]
r.rpush("l3", *"abcdef")
assert r.ltrim("l3", 1, -2) is True and r.lrange("l3", 0, -1) == list("bcde")
assert r.lpos("l3", "d") == 2

# sorted sets
assert r.zadd("z", {"a": 1, "b": 2, "c": 3}) == 3
assert r.zadd("z", {"a": 5}, ch=True) == 1
assert r.zrange("z", 0, -1, withscores=True) == [("b", 2.0), ("c", 3.0), ("a", 5.0)]
assert r.zrangebyscore("z", "(2", "+inf") == ["c", "a"]
assert r.zrevrange("z", 0, 0) == ["a"]
assert r.zrank("z", "c") == 1 and r.zrevrank("z", "c") == 1
assert r.zincrby("z", 1.5, "b") == 3.5
assert r.zcount("z", 3, 4) == 2 and r.zscore("z", "b") == 3.5
assert r.zmscore("z", ["a", "nope"]) == [5.0, None]
assert r.zpopmin("z") == [("c", 3.0)]
assert r.zadd("lex", {"a": 0, "b": 0, "c": 0}) == 3
assert r.zrangebylex("lex", "[b", "+") == ["b", "c"]
assert r.zrange("z", "+inf", "-inf", byscore=True, desc=True) == ["a", "b"]
assert r.zremrangebyrank("z", 0, 0) == 1 and r.zcard("z") == 1

# keyspace
assert r.rename("z", "z2") is True and r.exists("z") == 0 and r.zcard("z2") == 1
assert r.copy("z2", "z3") is True and r.zscore("z3", "a") == 5.0
assert r.renamenx("z2", "z3") is False
assert r.delete("z2", "z3", "nope") == 2
r.flushdb()
for i in range(250):
    r.set(f"k{i}", i)
seen = set()
cursor = 0
while True:
    cursor, keys = r.scan(cursor, count=17)
    seen.update(keys)
    if cursor == 0:
        break
assert len(seen) == 250, len(seen)
assert r.dbsize() == 250
assert len(r.keys("k1*")) == 111
r.hset("big", mapping={f"f{i}": i for i in range(300)})
assert len(dict(r.hscan_iter("big", count=20))) == 300
assert r.info("keyspace")["db0"]["keys"] == 251, r.info("keyspace")
# Collections with many member rows between string keys: SCAN pages over
# rows, so small COUNTs must still return every key exactly once.
for i in range(0, 250, 25):
    r.rpush(f"k{i}list", *range(100))
    r.sadd(f"k{i}set", *range(70))
expected = {f"k{i}" for i in range(250)} | {"big"}
expected |= {f"k{i}list" for i in range(0, 250, 25)} | {f"k{i}set" for i in range(0, 250, 25)}
for count in (1, 3, 64, 65, 1000):
    returned = []
    cursor = 0
    while True:
        cursor, keys = r.scan(cursor, count=count)
        returned.extend(keys)
        if cursor == 0:
            break
    assert sorted(returned) == sorted(expected), (count, len(returned), len(expected))
assert r.dbsize() == len(expected) == 271

# transactions
p = r.pipeline()
p.set("m", 1).incr("m").get("m")
assert p.execute() == [True, 2, "2"]
with r.pipeline() as p:
    p.watch("m")
    r2.set("m", 100)
    p.multi()
    p.set("m", 5)
    try:
        p.execute()
        raise AssertionError("watched key changed, EXEC must fail")
    except redis.WatchError:
        pass
assert r.get("m") == "100"

# blocking pop woken by another client's push
result = {}


def blocker():
    result["v"] = r2.blpop(["q1", "q2"], timeout=5)


t = threading.Thread(target=blocker)
t.start()
time.sleep(0.2)
r.rpush("q2", "hello")
t.join(10)
assert result.get("v") == ("q2", "hello"), result
assert r.blpop(["q1"], timeout=0.1) is None
assert r.bzpopmin(["zz"], timeout=0.1) is None

print("ok")
