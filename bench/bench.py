"""Times `vecmigrate run` against a pymilvus query_iterator + insert copy of the same collection
between the same two servers, alternating the two, and checks each copy's count.

Usage: bench.py --source URI --target URI [--token T] [--rows 100000] [--dim 128] [--rounds 3]
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


def run_vecmigrate(args, name):
    with tempfile.TemporaryDirectory() as d:
        cmd = [args.binary, "--store", os.path.join(d, "jobs.sqlite3"), "--json", "run",
               "--source-uri", args.source, "--target-uri", args.target,
               "--collection", f"{SOURCE}:{name}", "--batch-size", str(args.batch_size)]
        env = dict(os.environ, VECMIGRATE_SOURCE_TOKEN=args.token, VECMIGRATE_TARGET_TOKEN=args.token)
        t0 = time.monotonic()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        elapsed = time.monotonic() - t0
        if out.returncode != 0:
            sys.exit(f"vecmigrate failed: {out.stderr}")
        report = json.loads(out.stdout)
        times = {e["message"].split(":")[0]: e["time"] for e in report["log"]}
        copy = seconds(times["copy finished"]) - seconds(times["copying 1 tasks with up to 1 workers"])
        return elapsed, copy, report["job"]["collections"][0]["target_count"]


def seconds(rfc3339):
    from datetime import datetime
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")[:26] + "+00:00").timestamp()


def run_pymilvus(args, source, target, name):
    # Same work as vecmigrate: create the collection, copy, flush, index, count, release.
    desc = source.describe_collection(SOURCE)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=args.dim)
    schema.add_field("title", DataType.VARCHAR, max_length=64)
    assert len(desc["fields"]) == 3
    t0 = time.monotonic()
    target.create_collection(name, schema=schema)
    it = source.query_iterator(SOURCE, batch_size=args.batch_size, output_fields=["*"])
    while True:
        rows = it.next()
        if not rows:
            break
        target.insert(name, rows)
    it.close()
    copy = time.monotonic() - t0
    target.flush(name)  # vecmigrate flushes before indexing, so the index covers sealed data
    index = target.prepare_index_params()
    index.add_index("embedding", index_type="AUTOINDEX", metric_type="L2")
    target.create_index(name, index)
    n = target_count(target, name)
    return time.monotonic() - t0, copy, n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--source", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--token", default="")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=5000)
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "vecmigrate"))
    args = p.parse_args()
    source = MilvusClient(uri=args.source, token=args.token)
    target = MilvusClient(uri=args.target, token=args.token)
    t0 = time.monotonic()
    seed(source, args.rows, args.dim)
    print(f"seeded {args.rows} rows x {args.dim}-d in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    results = {"vecmigrate": [], "pymilvus": []}
    for r in range(args.rounds):
        for tool in ("vecmigrate", "pymilvus"):
            name = f"bench_{tool}_{r}"
            if target.has_collection(name):
                target.drop_collection(name)
            if tool == "vecmigrate":
                elapsed, copy, n = run_vecmigrate(args, name)
            else:
                elapsed, copy, n = run_pymilvus(args, source, target, name)
            target.drop_collection(name)
            complete = "complete" if n == args.rows else f"INCOMPLETE ({n} of {args.rows})"
            print(f"round {r + 1} {tool:<10} whole job {elapsed:7.2f}s, copy phase {copy:7.2f}s "
                  f"({args.rows / copy:7.0f} rows/s)  {complete}", flush=True)
            results[tool].append((elapsed, copy, n))
    print()
    for tool, runs in results.items():
        whole = [t for t, _, _ in runs]
        copy = [c for _, c, _ in runs]
        print(f"{tool:<10} whole job median {statistics.median(whole):6.2f}s (min {min(whole):.2f}, max {max(whole):.2f}); "
              f"copy phase median {statistics.median(copy):6.2f}s (min {min(copy):.2f}, max {max(copy):.2f}), "
              f"{args.rows / statistics.median(copy):.0f} rows/s; copies complete {sum(n == args.rows for _, _, n in runs)}/{len(runs)}")


if __name__ == "__main__":
    main()
