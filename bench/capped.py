"""How close vecmigrate gets to a target's write cap: `vecmigrate run` (release build) writing
through the fault proxy (scripts/grpc_proxy.py, a test tool) that holds writes to a byte rate
and answers the excess as Milvus's rate limiter does (a bucket of one second's worth, a write
admitted while it is not negative, refusals with status code 8 and `rate=<cap>`).

Runs, each into a new target collection:
  - for each `--workers` count, one job;
  - with `--jobs 2`, two jobs at once into the same target (sharing one job store, as the
    Lambda's jobs share its DynamoDB table), measured together;
  - with `--pymilvus`, the hand-written pymilvus copy as well.

The figure: bytes of insert requests the proxy let through, over the span from the first to
the last write it let through (the proxy's clock), over the cap. Every copy is counted.

Usage: capped.py --source URI --target-direct URI --target-proxy URI --control URL [--token T]
                 [--rows 60000 | --partitions 4000,8000,8000] [--dim 128] [--cap-mb 2]
                 [--workers 1,3,8] [--jobs 1] [--rounds 1] [--batch-size N] [--pymilvus]
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from pymilvus import MilvusClient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BINARY, SOURCE, schema, seed, target_count  # noqa: E402

PARTITIONED = "capped_src"


def control(url, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url + path, data=data,
                                                       method="POST" if data else "GET")) as r:
        return json.loads(r.read())


def seed_partitions(client, sizes, dim):
    """`capped_src`: one partition per size (p0, p1, ...), kept if it holds them already."""
    total = sum(sizes)
    if client.has_collection(PARTITIONED):
        if client.query(PARTITIONED, filter="", output_fields=["count(*)"])[0]["count(*)"] == total:
            return PARTITIONED
        client.drop_collection(PARTITIONED)
    client.create_collection(PARTITIONED, schema=schema(dim))
    rng, start = random.Random(7), 0
    for p, size in enumerate(sizes):
        client.create_partition(PARTITIONED, f"p{p}")
        for at in range(start, start + size, 2000):
            batch = [{"id": i, "embedding": [rng.random() for _ in range(dim)], "title": f"doc {i}",
                      "price": i * 0.25, "meta": {"i": i}}
                     for i in range(at, min(start + size, at + 2000))]
            client.insert(PARTITIONED, batch, partition_name=f"p{p}")
        start += size
    index = client.prepare_index_params()
    index.add_index("embedding", index_type="FLAT", metric_type="L2")
    client.create_index(PARTITIONED, index)
    client.load_collection(PARTITIONED)
    return PARTITIONED


def start_vecmigrate(args, source_name, name, workers, store):
    cmd = [args.binary, "--store", store, "--json", "run", "--source-uri", args.source,
           "--target-uri", args.target_proxy, "--collection", f"{source_name}:{name}",
           "--workers", str(workers)]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    env = dict(os.environ, VECMIGRATE_SOURCE_TOKEN=args.token, VECMIGRATE_TARGET_TOKEN=args.token)
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(proc):
    out, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"vecmigrate failed: {err[-3000:]}")
    return json.loads(out)


def run_pymilvus(args, source, target, source_name, name):
    target.create_collection(name, schema=schema(args.dim))
    it = source.query_iterator(source_name, batch_size=args.batch_size or 1000, output_fields=["*"])
    while True:
        rows = it.next()
        if not rows:
            break
        target.insert(name, rows)  # pymilvus retries a rate-limited insert with its own backoff
    it.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--source", required=True)
    p.add_argument("--target-direct", required=True)
    p.add_argument("--target-proxy", required=True)
    p.add_argument("--control", required=True)
    p.add_argument("--token", default="")
    p.add_argument("--rows", type=int, default=60_000)
    p.add_argument("--partitions", default="")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--cap-mb", type=float, default=2.0)
    p.add_argument("--workers", default="1")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=0)
    p.add_argument("--pymilvus", action="store_true")
    p.add_argument("--binary", default=BINARY)
    args = p.parse_args()
    cap = args.cap_mb * 1e6
    source = MilvusClient(uri=args.source, token=args.token)
    direct = MilvusClient(uri=args.target_direct, token=args.token)
    proxied = MilvusClient(uri=args.target_proxy, token=args.token)
    if args.partitions:
        sizes = [int(s) for s in args.partitions.split(",")]
        source_name, rows, shape = seed_partitions(source, sizes, args.dim), sum(sizes), \
            f"partitions of {args.partitions}"
    else:
        seed(source, args.rows, args.dim)
        source_name, rows, shape = SOURCE, args.rows, "one partition"
    pages = f"pages of {args.batch_size}" if args.batch_size else "default pages"
    print(f"cap {args.cap_mb} MB/s; {rows} rows x {args.dim}-d in {shape}; {pages}", flush=True)
    runs = [("vecmigrate", int(w), args.jobs) for w in args.workers.split(",")]
    if args.pymilvus:
        runs.append(("pymilvus", 1, 1))
    results = {}
    for r in range(args.rounds):
        for tool, workers, jobs in runs:
            names = [f"capped_{tool}_{workers}_{j}_{r}" for j in range(jobs)]
            for name in names:
                if direct.has_collection(name):
                    direct.drop_collection(name)
            control(args.control, "/faults", {"rate_cap_bytes": cap})
            t0 = time.monotonic()
            learnt = ""
            if tool == "vecmigrate":
                with tempfile.TemporaryDirectory() as d:
                    store = os.path.join(d, "jobs.sqlite3")
                    procs = [start_vecmigrate(args, source_name, n, workers, store) for n in names]
                    reports = [finished(proc) for proc in procs]
                rate = reports[0]["job"].get("write_rate")
                if rate:
                    learnt = f", pace {rate['bytes_per_s'] / 1e6:.3f} MB/s after {rate['throttles']} throttles"
            else:
                run_pymilvus(args, source, proxied, source_name, names[0])
            elapsed = time.monotonic() - t0
            stats = control(args.control, "/stats")
            control(args.control, "/faults", {})
            counts = [target_count(direct, n) for n in names]
            for n in names:
                direct.drop_collection(n)
            written = stats["forwarded_write_bytes"]
            span = stats["last_write_at"] - stats["first_write_at"]
            ratio = written / span / cap
            complete = all(c == rows for c in counts)
            label = f"{tool} {workers} worker(s)" + (f" x {jobs} jobs" if jobs > 1 else "")
            print(f"round {r + 1} {label:<28} {written / 1e6:7.1f} MB in {stats['forwarded_writes']} writes "
                  f"over {span:6.1f} s: {ratio:.3f} x cap; {stats['throttled']} throttled{learnt}; "
                  f"{elapsed:.0f} s in all; {'complete' if complete else f'INCOMPLETE {counts}'}",
                  flush=True)
            results.setdefault(label, []).append((ratio, complete))
    print()
    print("| run | fraction of the cap (accepted bytes over first to last write) | complete |")
    print("|---|---|---|")
    for label, rs in results.items():
        ratios = [x for x, _ in rs]
        spread = f" ({min(ratios):.2f}–{max(ratios):.2f})" if len(ratios) > 1 else ""
        print(f"| {label} | {statistics.median(ratios):.2f}{spread} | {sum(ok for _, ok in rs)}/{len(rs)} |")


if __name__ == "__main__":
    main()
