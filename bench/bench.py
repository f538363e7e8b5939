"""Times `vecmigrate run` (1, 2 and 4 workers) against a pymilvus query_iterator + insert copy of
the same single-partition collection between the same two servers, alternating them round by
round, and checks each copy's count. vecmigrate runs under /usr/bin/time for its peak RSS.

Usage: bench.py --source URI --target URI [--token T] [--rows 100000] [--dim 128] [--rounds 3]
                [--workers 1,2,4]
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

from pymilvus import DataType, MilvusClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = "bench_src"


def seed(client, rows, dim):
    if client.has_collection(SOURCE) and client.query(SOURCE, filter="", output_fields=["count(*)"])[0]["count(*)"] == rows:
        return
    if client.has_collection(SOURCE):
        client.drop_collection(SOURCE)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("title", DataType.VARCHAR, max_length=64)
    client.create_collection(SOURCE, schema=schema)
    rng = random.Random(7)
    for start in range(0, rows, 5000):
        batch = [{"id": i, "embedding": [rng.random() for _ in range(dim)], "title": f"doc {i}"}
                 for i in range(start, min(rows, start + 5000))]
        client.insert(SOURCE, batch)
    index = client.prepare_index_params()
    index.add_index("embedding", index_type="AUTOINDEX", metric_type="L2")
    client.create_index(SOURCE, index)
    client.load_collection(SOURCE)


def target_count(target, name):
    target.load_collection(name)
    n = target.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
    target.release_collection(name)
    return n


def run_vecmigrate(args, name, workers):
    with tempfile.TemporaryDirectory() as d:
        cmd = ["/usr/bin/time", "-f", "%M", "-o", os.path.join(d, "rss"),
               args.binary, "--store", os.path.join(d, "jobs.sqlite3"), "--json", "run",
               "--source-uri", args.source, "--target-uri", args.target,
               "--collection", f"{SOURCE}:{name}", "--batch-size", str(args.batch_size),
               "--workers", str(workers)]
        env = dict(os.environ, VECMIGRATE_SOURCE_TOKEN=args.token, VECMIGRATE_TARGET_TOKEN=args.token)
        t0 = time.monotonic()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        elapsed = time.monotonic() - t0
        if out.returncode != 0:
            sys.exit(f"vecmigrate failed: {out.stderr}")
        rss_mb = int(open(os.path.join(d, "rss")).read().split()[-1]) / 1024
        report = json.loads(out.stdout)
        times = {e["message"].split(":")[0]: e["time"] for e in report["log"]}
        start = next(t for m, t in times.items() if m.startswith("copying "))
        copy = seconds(times["copy finished"]) - seconds(start)
        return elapsed, copy, report["job"]["collections"][0]["target_count"], rss_mb


def seconds(rfc3339):
    from datetime import datetime
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")[:26] + "+00:00").timestamp()


def run_pymilvus(args, source, target, name):
    # The hand-written copy the issue measured: AUTOINDEX on the empty collection first, then
    # query_iterator + insert, flush, load, count(*).
    desc = source.describe_collection(SOURCE)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=args.dim)
    schema.add_field("title", DataType.VARCHAR, max_length=64)
    assert len(desc["fields"]) == 3
    t0 = time.monotonic()
    target.create_collection(name, schema=schema)
    index = target.prepare_index_params()
    index.add_index("embedding", index_type="AUTOINDEX", metric_type="L2")
    target.create_index(name, index)
    it = source.query_iterator(SOURCE, batch_size=args.batch_size, output_fields=["*"])
    while True:
        rows = it.next()
        if not rows:
            break
        target.insert(name, rows)
    it.close()
    copy = time.monotonic() - t0
    target.flush(name)
    n = target_count(target, name)
    return time.monotonic() - t0, copy, n, None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--source", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--token", default="")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=5000)
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "vecmigrate"))
    args = p.parse_args()
    source = MilvusClient(uri=args.source, token=args.token)
    target = MilvusClient(uri=args.target, token=args.token)
    t0 = time.monotonic()
    seed(source, args.rows, args.dim)
    print(f"seeded {args.rows} rows x {args.dim}-d in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    workers = [int(w) for w in args.workers.split(",")]
    tools = ["pymilvus"] + [f"vecmigrate-{w}w" for w in workers]
    results = {tool: [] for tool in tools}
    for r in range(args.rounds):
        for tool in tools:
            name = f"bench_{tool.replace('-', '_')}_{r}"
            if target.has_collection(name):
                target.drop_collection(name)
            if tool == "pymilvus":
                elapsed, copy, n, rss = run_pymilvus(args, source, target, name)
            else:
                elapsed, copy, n, rss = run_vecmigrate(args, name, int(tool.split("-")[1][:-1]))
            target.drop_collection(name)
            complete = "complete" if n == args.rows else f"INCOMPLETE ({n} of {args.rows})"
            mem = f", peak RSS {rss:.0f} MB" if rss else ""
            print(f"round {r + 1} {tool:<14} whole job {elapsed:7.2f}s, copy phase {copy:7.2f}s "
                  f"({args.rows / copy:7.0f} rows/s){mem}  {complete}", flush=True)
            results[tool].append((elapsed, copy, n, rss))
    print()
    base = statistics.median(t for t, _, _, _ in results["pymilvus"])
    one = None
    for tool, runs in results.items():
        whole = statistics.median(t for t, _, _, _ in runs)
        copy = statistics.median(c for _, c, _, _ in runs)
        mb = args.rows * (args.dim * 4 + 16) / 1e6
        rss = max((m for _, _, _, m in runs if m), default=None)
        one = one or (copy if tool.endswith("-1w") else None)
        scale = f", copy {one / copy:.2f}x one worker's" if one and tool != "pymilvus" else ""
        print(f"{tool:<14} whole job median {whole:6.2f}s = {base / whole:.2f}x pymilvus's speed; "
              f"copy median {copy:6.2f}s, {args.rows / copy:.0f} rows/s, {mb / copy:.1f} MB/s{scale}"
              + (f"; peak RSS {rss:.0f} MB" if rss else "")
              + f"; complete {sum(n == args.rows for _, _, n, _ in runs)}/{len(runs)}")

if __name__ == "__main__":
    main()
