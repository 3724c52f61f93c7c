"""Drives tests/snapshot_restore_roundtrip.rs through real Redis clients.

    restore_roundtrip.py write PORT SEED OUT.json
        Writes a random dataset through the Redis front end (every type,
        TTLs, HyperLogLogs via PFADD, binary keys and values) with history:
        overwritten values, deleted keys, keys recreated with another type,
        popped and removed members, a key that expires. Checks the server
        against the script's own model of what must be visible, then dumps
        the server's state to OUT.json.

    restore_roundtrip.py dump PORT OUT.json
        Dumps every key: type, value, absolute expiry (PEXPIRETIME).

    restore_roundtrip.py cli PORT EXPECTED.json
        Checks every key of EXPECTED.json through redis-cli (TYPE,
        PEXPIRETIME and the type's read command); keys or values that are
        not printable are left to the RESP checks of `dump`.

Prints "ok" on success; any difference raises.
"""

import json
import random
import subprocess
import sys
import time

import redis

ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-."
HOUR_MS = 3_600_000


def client(port):
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=20)
    # Raw XRANGE replies: entry items as the flat list the server sent
    # (redis-py would fold them into a dict, losing repeated fields).
    r.set_response_callback("XRANGE", lambda response, **_: response)
    return r


def token(rnd, n=10):
    return "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(1, n))).encode()


def binary(rnd, n=10):
    return bytes(rnd.randrange(256) for _ in range(rnd.randint(1, n)))


def sparse_hll(rnd):
    """A valid sparse Redis HyperLogLog: header, then XZERO / VAL opcodes
    covering exactly 16384 registers."""
    at = rnd.randint(0, 16000)
    value = rnd.randint(1, 32)
    out = bytearray(b"HYLL\x01\x00\x00\x00" + bytes(8))

    def xzero(n):
        if n > 0:
            out.extend([0x40 | ((n - 1) >> 8), (n - 1) & 0xFF])

    xzero(at)
    out.append(0x80 | ((value - 1) << 2))
    xzero(16384 - at - 1)
    return bytes(out)


def dump_state(r):
    out = {}
    for key in r.scan_iter(count=200):
        kind = r.type(key).decode()
        if kind == "string":
            value = r.get(key).hex()
        elif kind == "hash":
            value = sorted([f.hex(), v.hex()] for f, v in r.hgetall(key).items())
        elif kind == "list":
            value = [item.hex() for item in r.lrange(key, 0, -1)]
        elif kind == "set":
            value = sorted(m.hex() for m in r.smembers(key))
        elif kind == "zset":
            value = [[m.hex(), s] for m, s in r.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            value = [
                [entry_id.decode(), [item.hex() for item in items]]
                for entry_id, items in r.execute_command("XRANGE", key, "-", "+")
            ]
        else:
            raise AssertionError(f"unexpected type {kind} of {key!r}")
        expire = r.execute_command("PEXPIRETIME", key)
        out[key.hex()] = {"type": kind, "value": value, "pexpiretime": expire}
    return out


def write(port, seed, out_path):
    rnd = random.Random(seed)
    r = client(port)
    model = {}  # key -> (type, value) as the server must show it
    ttl = {}  # key -> absolute expiry ms

    def forget(key):
        model.pop(key, None)
        ttl.pop(key, None)

    keys = set()
    while len(keys) < 40:
        keys.add(token(rnd, 12) if rnd.random() < 0.8 else b"bin:" + binary(rnd, 6))
    keys = sorted(keys)
    for i, key in enumerate(keys):
        kind = ["string", "hash", "list", "set", "zset", "stream", "hll"][i % 7]
        if kind == "string":
            first = binary(rnd) if key.startswith(b"bin:") else token(rnd, 20)
            r.set(key, first)
            value = token(rnd, 20)
            r.set(key, value)  # overwritten: only the newest version counts
            model[key] = ("string", value)
        elif kind == "hash":
            fields = {token(rnd, 6): token(rnd, 12) for _ in range(rnd.randint(2, 6))}
            r.hset(key, mapping=fields)
            gone = sorted(fields)[0]
            r.hdel(key, gone)
            del fields[gone]
            changed = sorted(fields)[-1]
            fields[changed] = b"changed-" + token(rnd, 5)
            r.hset(key, changed, fields[changed])
            model[key] = ("hash", fields)
        elif kind == "list":
            items = [token(rnd, 8) for _ in range(rnd.randint(2, 7))]
            r.rpush(key, *items)
            r.lpush(key, b"head")
            r.lpop(key)
            r.rpop(key)
            items.pop()
            r.lpush(key, b"front")
            items.insert(0, b"front")
            model[key] = ("list", items)
        elif kind == "set":
            members = {token(rnd, 8) for _ in range(rnd.randint(2, 6))}
            r.sadd(key, *members)
            gone = sorted(members)[0]
            r.srem(key, gone)
            members.discard(gone)
            if not members:
                members.add(b"only")
                r.sadd(key, b"only")
            model[key] = ("set", members)
        elif kind == "zset":
            scores = {token(rnd, 8): rnd.randint(-400, 400) / 4 for _ in range(rnd.randint(2, 6))}
            r.zadd(key, scores)
            bumped = sorted(scores)[0]
            scores[bumped] += 10.5
            r.zincrby(key, 10.5, bumped)
            model[key] = ("zset", scores)
        elif kind == "stream":
            entries = []
            for n in range(rnd.randint(2, 5)):
                entry_id = f"{1_700_000_000_000 + n}-{rnd.randint(0, 3)}"
                items = [token(rnd, 5), token(rnd, 8), token(rnd, 5), token(rnd, 8)]
                r.execute_command("XADD", key, entry_id, *items)
                entries.append((entry_id, items))
            # Deleting the newest entry leaves the stream's last id beyond it.
            r.execute_command("XDEL", key, entries[-1][0])
            entries.pop()
            model[key] = ("stream", entries)
        else:
            elements = [token(rnd, 8) for _ in range(rnd.randint(3, 20))]
            try:
                r.pfadd(key, *elements)
                model[key] = ("hll", r.pfcount(key))
            except redis.exceptions.ResponseError:
                # A build without PFADD: the sketch bytes Redis would hold.
                sketch = sparse_hll(rnd)
                r.set(key, sketch)
                model[key] = ("string", sketch)
        if rnd.random() < 0.4:
            deadline = int(time.time() * 1000) + HOUR_MS + rnd.randint(0, HOUR_MS)
            r.pexpireat(key, deadline)
            ttl[key] = deadline

    # Deleted keys never come back; a key recreated with another type comes
    # back as the new type only.
    for key in keys[::9]:
        r.delete(key)
        forget(key)
    for key in keys[1::11]:
        r.delete(key)
        forget(key)
        r.rpush(key, b"reborn")
        model[key] = ("list", [b"reborn"])
    # A key with a short TTL that has expired before the snapshot.
    r.set(b"short-lived", b"x", px=50)
    deadline = time.time() + 10
    while r.exists(b"short-lived"):
        assert time.time() < deadline, "short-lived key never expired"
        time.sleep(0.02)
    # One TTL removed again.
    persisted = next((k for k in keys if k in ttl), None)
    if persisted is not None:
        r.persist(persisted)
        del ttl[persisted]

    state = dump_state(r)
    expected_keys = {k.hex() for k in model}
    assert set(state) == expected_keys, (sorted(set(state) ^ expected_keys))
    for key, (kind, value) in model.items():
        got = state[key.hex()]
        want_type = "string" if kind == "hll" else kind
        assert got["type"] == want_type, (key, got["type"], kind)
        if kind == "string":
            assert got["value"] == value.hex(), key
        elif kind == "hash":
            assert got["value"] == sorted([f.hex(), v.hex()] for f, v in value.items()), key
        elif kind == "list":
            assert got["value"] == [i.hex() for i in value], key
        elif kind == "set":
            assert got["value"] == sorted(m.hex() for m in value), key
        elif kind == "zset":
            assert sorted(got["value"]) == sorted([m.hex(), s] for m, s in value.items()), key
        elif kind == "stream":
            assert got["value"] == [[i, [x.hex() for x in items]] for i, items in value], key
        else:
            assert r.pfcount(key) == value, key
        assert got["pexpiretime"] == ttl.get(key, -1), (key, got["pexpiretime"])
    with open(out_path, "w") as f:
        json.dump(state, f, sort_keys=True, indent=1)
    print("ok")


def dump(port, out_path):
    with open(out_path, "w") as f:
        json.dump(dump_state(client(port)), f, sort_keys=True, indent=1)
    print("ok")


def printable(data):
    return all(chr(b) in ALPHABET for b in data)


def cli(port, *args):
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "--raw", *args],
        check=True,
        capture_output=True,
        timeout=20,
    )
    return out.stdout.decode().splitlines()


def check_cli(port, expected_path):
    with open(expected_path) as f:
        expected = json.load(f)
    assert cli(port, "DBSIZE") == [str(len(expected))]
    checked = 0
    for key_hex, want in expected.items():
        key = bytes.fromhex(key_hex)
        if not printable(key):
            continue
        name = key.decode()
        assert cli(port, "TYPE", name) == [want["type"]], name
        assert cli(port, "PEXPIRETIME", name) == [str(want["pexpiretime"])], name
        kind, value = want["type"], want["value"]
        texts = lambda hexes: [bytes.fromhex(h).decode() for h in hexes]
        if kind == "string":
            data = bytes.fromhex(value)
            if printable(data):
                assert cli(port, "GET", name) == [data.decode()], name
            else:
                assert cli(port, "STRLEN", name) == [str(len(data))], name
        elif kind == "hash":
            got = cli(port, "HGETALL", name)
            pairs = sorted(zip(got[::2], got[1::2]))
            assert pairs == sorted(tuple(texts(p)) for p in value), name
        elif kind == "list":
            assert cli(port, "LRANGE", name, "0", "-1") == texts(value), name
        elif kind == "set":
            assert sorted(cli(port, "SMEMBERS", name)) == sorted(texts(value)), name
        elif kind == "zset":
            got = cli(port, "ZRANGE", name, "0", "-1", "WITHSCORES")
            pairs = [(m, float(s)) for m, s in zip(got[::2], got[1::2])]
            assert pairs == [(bytes.fromhex(m).decode(), s) for m, s in value], name
        elif kind == "stream":
            got = cli(port, "XRANGE", name, "-", "+")
            flat = []
            for entry_id, items in value:
                flat.append(entry_id)
                flat.extend(texts(items))
            assert got == flat, name
        checked += 1
    assert checked > len(expected) // 2, f"only {checked} keys were printable"
    print("ok")


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "write":
        write(port, int(sys.argv[3]), sys.argv[4])
    elif mode == "dump":
        dump(port, sys.argv[3])
    elif mode == "cli":
        check_cli(port, sys.argv[3])
    else:
        raise SystemExit(f"unknown mode {mode}")
