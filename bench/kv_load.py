#!/usr/bin/env python3
"""One client for two servers: unary gRPC puts against etcd (etcdserverpb.KV/Put)
or elastickv (elastickv.admin.Admin/KvPut), so both are measured by exactly the
same load generator: same concurrency, same keys and values, one request per
round trip, every put acknowledged only once durable (etcd: WAL fsync on a
quorum; elastickv: Raft log fsync on a quorum, then applied).

Only the two request messages are declared (field numbers as in the servers'
own protos); unknown reply fields are ignored by protobuf.

usage: kv_load.py {etcd|elastickv} HOST:PORT --requests N --clients C
                  [--procs P] [--value-size B] [--keys K]
Prints one JSON line: {"target", "requests", "seconds", "puts_per_s", "p50_ms", "p99_ms"}.
"""
import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time

PROTO = """
syntax = "proto3";
package loadgen;
message EtcdPut { bytes key = 1; bytes value = 2; }
message EkvPut { uint64 group = 1; bytes key = 2; bytes value = 3; uint64 ttl_ms = 4; }
message Empty {}
"""


def compile_proto():
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="kvload-")
    path = os.path.join(out, "loadgen.proto")
    with open(path, "w") as f:
        f.write(PROTO)
    rc = protoc.main(["protoc", f"-I{out}", f"--python_out={out}", path])
    if rc != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, out)
    import loadgen_pb2  # noqa: E402

    return loadgen_pb2


async def worker(target, addr, count, clients, value_size, keys, seed, out):
    import grpc

    pb = compile_proto()
    if target == "etcd":
        method, make = "/etcdserverpb.KV/Put", lambda k, v: pb.EtcdPut(key=k, value=v)
    else:
        method, make = "/elastickv.admin.Admin/KvPut", lambda k, v: pb.EkvPut(key=k, value=v)
    channel = grpc.aio.insecure_channel(addr)
    call = channel.unary_unary(
        method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.Empty.FromString,
    )
    rng = random.Random(seed)
    value = bytes(rng.getrandbits(8) for _ in range(value_size))
    latencies = []
    per_client = count // clients

    async def one_client(i):
        for n in range(per_client):
            key = b"key:%012d" % rng.randrange(keys)
            t = time.perf_counter()
            await call(make(key, value), timeout=30)
            latencies.append(time.perf_counter() - t)

    # Warm the connection before timing.
    await call(make(b"warmup", value), timeout=30)
    start = time.perf_counter()
    await asyncio.gather(*(one_client(i) for i in range(clients)))
    elapsed = time.perf_counter() - start
    await channel.close()
    out.put((len(latencies), elapsed, latencies))


def run_proc(args, seed, out):
    asyncio.run(
        worker(args.target, args.addr, args.requests // args.procs, args.clients // args.procs,
               args.value_size, args.keys, seed, out)
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target", choices=["etcd", "elastickv"])
    ap.add_argument("addr")
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--value-size", type=int, default=256)
    ap.add_argument("--keys", type=int, default=100000)
    args = ap.parse_args()
    out = mp.Queue()
    procs = [mp.Process(target=run_proc, args=(args, i, out)) for i in range(args.procs)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    done = sum(r[0] for r in results)
    seconds = max(r[1] for r in results)
    lat = sorted(x for r in results for x in r[2])
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0.0
    print(json.dumps({
        "target": args.target,
        "requests": done,
        "seconds": round(seconds, 3),
        "puts_per_s": round(done / seconds, 1) if seconds else 0.0,
        "p50_ms": round(pick(0.50), 2),
        "p99_ms": round(pick(0.99), 2),
    }))


if __name__ == "__main__":
    main()
