"""The scale benchmark: one single-partition collection of 128-d vectors, grown from 1M to 5M
and 10M entities (as far as the disk allows), each copied by `vecmigrate run` (release build):
1 worker on the embedded store, 4 workers on DynamoDB (moto), and 4 workers with short
invocations (`--max-run`), by default. Each run's entities/s over its copy phase, peak RSS, store writes,
and how the entities spread over the tasks (the partition is cut while it is copied).

The source is filled by Milvus's own bulk import (Parquet files the server reads from this
machine's disk), far quicker than inserts at these sizes; its vector index is FLAT (the
source's index does not matter to a copy by primary key). Each target collection is dropped
after its run.

Store writes are counted from the report: the job record's version (one per job write), and
per task one write when made, one per claim, one per checkpoint (page) and one at the end.

Usage: scale.py --source URI --target URI [--token T] [--sizes 1000000,5000000,10000000]
                [--dim 128] [--runs 1,4:dynamodb,4:short] [--max-run 20s] [--ddb]
                [--no-append]

`--runs` lists the runs at each size: a worker count, then `:dynamodb` for the DynamoDB
store (with `--ddb`) or `:short` for invocations of `--max-run`.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pymilvus import DataType, MilvusClient, connections, utility

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BINARY, ROOT, create_table, seconds  # noqa: E402

# Bytes on disk per entity, source and target together (vectors, keys, binlogs, WAL), measured
# at 1M; a size is skipped when the disk has less than this times its entities free.
DISK_PER_ENTITY = 3_000
CHUNK = 500_000


def seed(client, uri, token, rows, dim, workdir):
    """Fills `scale_src_<dim>` with `rows` entities by bulk import (kept when it holds that
    many)."""
    name = f"scale_src_{dim}"
    if client.has_collection(name):
        n = client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]
        if n == rows:
            return 0.0
        client.drop_collection(name)
    t0 = time.monotonic()
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("title", DataType.VARCHAR, max_length=64)
    s.add_field("price", DataType.DOUBLE)
    client.create_collection(name, schema=s)
    connections.connect(alias="scale", uri=uri, token=token)
    rng = np.random.default_rng(7)
    tasks = []
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        ids = np.arange(start, start + n, dtype=np.int64)
        vectors = rng.random((n, dim), dtype=np.float32)
        table = pa.table({
            "id": ids,
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim).cast(
                pa.list_(pa.float32())),
            "title": pa.array([f"doc {i}" for i in ids]),
            "price": pa.array(ids * 0.25),
        })
        path = os.path.join(workdir, f"seed-{start}.parquet")
        pq.write_table(table, path)
        tasks.append(utility.do_bulk_insert(name, files=[path], using="scale"))
    for task in tasks:
        while True:
            state = utility.get_bulk_insert_state(task, using="scale")
            if state.state_name in ("Completed", "Failed"):
                if state.state_name == "Failed":
                    sys.exit(f"import failed: {state.failed_reason}")
                break
            time.sleep(2)
    index = client.prepare_index_params()
    index.add_index("embedding", index_type="FLAT", metric_type="L2")
    client.create_index(name, index)
    client.load_collection(name)
    n = client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
    if n != rows:
        sys.exit(f"seeded {n} of {rows}")
    for f in os.listdir(workdir):
        os.remove(os.path.join(workdir, f))
    return time.monotonic() - t0


def run(args, name, workers, store, max_run=None):
    """One `vecmigrate run`: a row of the table."""
    with tempfile.TemporaryDirectory() as d:
        where = ["--dynamodb-table", args.table] if store == "dynamodb" else [
            "--store", os.path.join(d, "jobs.sqlite3")]
        cmd = [BINARY] + where + ["--json", "run", "--source-uri", args.source,
                                  "--target-uri", args.target, "--collection", f"scale_src_{args.dim}:{name}",
                                  "--workers", str(workers)]
        if max_run:
            cmd += ["--max-run", max_run]
        env = dict(os.environ, VECMIGRATE_SOURCE_TOKEN=args.token, VECMIGRATE_TARGET_TOKEN=args.token)
        rss_file = os.path.join(d, "rss")
        t0 = time.monotonic()
        out = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd, env=env,
                             capture_output=True, text=True)
        whole = time.monotonic() - t0
        if out.returncode != 0:
            sys.exit(f"vecmigrate failed: {out.stderr[-3000:]}")
        rss = int(open(rss_file).read().split()[-1]) / 1024
    report = json.loads(out.stdout)
    times = {e["message"].split(":")[0]: e["time"] for e in report["log"]}
    start = next(t for m, t in times.items() if m.startswith("copying "))
    copy = seconds(times["copy finished"]) - seconds(start)
    c = report["job"]["collections"][0]
    tasks = report["tasks"]
    copied = sorted(t["copied"] for t in tasks)
    writes = report["job"]["version"] + sum(2 + t["runs"] for t in tasks)
    # "split … (3 counts, 0.4s)": how many cuts, and the longest.
    cuts = [float(m.rsplit(", ", 1)[1].rstrip("s)")) for m in (e["message"] for e in report["log"])
            if m.startswith("split ")]
    pages = int(next(m for m in (e["message"] for e in report["log"])
                     if m.startswith("copy finished")).split(" in ")[1].split(" pages")[0])
    return {
        "dim": args.dim, "workers": workers, "store": store, "max_run": max_run or "-", "whole": whole, "copy": copy,
        "rate": c["source_count"] / copy, "rss": rss, "writes": writes + pages,
        "cuts": len(cuts), "cut_max": max(cuts, default=0.0),
        "tasks": len(tasks), "spread": f"{copied[0]:,}–{copied[-1]:,}",
        "ok": c["match"] is True and c["target_count"] == c["source_count"],
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--source", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--token", default="")
    p.add_argument("--sizes", default="1000000,5000000,10000000")
    p.add_argument("--max-run", default="20s")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--runs", default="1,4:dynamodb,4:short")
    p.add_argument("--ddb", action="store_true", help="also run on DynamoDB (moto, from the environment)")
    p.add_argument("--no-append", action="store_true")
    args = p.parse_args()
    args.table = create_table(f"vecmigrate-scale-{uuid.uuid4().hex[:8]}") if args.ddb else ""
    source = MilvusClient(uri=args.source, token=args.token)
    target = MilvusClient(uri=args.target, token=args.token)
    rows = []
    stopped = None
    workdir = tempfile.mkdtemp(prefix="vecmigrate-scale-")
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            free = shutil.disk_usage(workdir).free
            if free < size * DISK_PER_ENTITY:
                stopped = f"{size:,} entities: {free / 1e9:.0f} GB free, about {size * DISK_PER_ENTITY / 1e9:.0f} GB needed"
                print("stopping before", stopped, flush=True)
                break
            took = seed(source, args.source, args.token, size, args.dim, workdir)
            print(f"{size:,} entities seeded in {took:.0f} s", flush=True)
            plan = []
            for spec in args.runs.split(","):
                workers, _, kind = spec.partition(":")
                plan.append((int(workers), "dynamodb" if kind == "dynamodb" else "sqlite",
                             args.max_run if kind == "short" else None))
            for workers, store, max_run in plan:
                if store == "dynamodb" and not args.table:
                    continue
                name = f"scale_{uuid.uuid4().hex[:8]}"
                row = run(args, name, workers, store, max_run)
                row["size"] = size
                rows.append(row)
                print(json.dumps(row), flush=True)
                target.drop_collection(name)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    table = ["| entities | dim | workers | store | --max-run | copy | entities/s | peak RSS | store writes | cuts (longest) | tasks | entities per task | verified |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(
            f"| {r['size']:,} | {r['dim']} | {r['workers']} | {r['store']} | {r['max_run']} | {r['copy']:.1f} s | "
            f"{r['rate']:,.0f} | {r['rss']:.0f} MB | {r['writes']:,} | {r['cuts']} ({r['cut_max']:.1f} s) | {r['tasks']} | {r['spread']} | "
            f"{'yes' if r['ok'] else 'NO'} |")
    text = "\n".join(table)
    if stopped:
        text += f"\n\nStopped before {stopped}."
    print(text)
    if not args.no_append:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        with open(os.path.join(ROOT, "bench", "RESULTS.md"), "a") as f:
            f.write(f"\n### Scale, Milvus 2.3.5, {args.dim}-d, one partition ({stamp})\n\n"
                    f"`bench/scale.sh --sizes {args.sizes} --dim {args.dim} --runs {args.runs}"
                    f" --max-run {args.max_run}`\n\n{text}\n")


if __name__ == "__main__":
    main()
