"""The copy benchmark of one single-partition collection between two servers, its contenders
alternated round by round on the same servers and data:

  (a) pymilvus: AUTOINDEX on the empty collection, query_iterator + insert (batch 5,000),
      flush, load, count(*): the hand-written copy a user would otherwise write;
  (b) the source scan alone with vecmigrate's reader, and (c) the target insert alone of the
      same pages held in memory, each with 1 to N readers / writers (bench/pages.rs);
  (d) `vecmigrate run` with the embedded store, 1, 2 and 4 workers;
  (e) the same with checkpoints in DynamoDB (on moto, `--dynamodb-table`).

vecmigrate runs under /usr/bin/time for its peak RSS. Each copy's count is checked. The table is
printed and appended, with the command, to bench/RESULTS.md.

Usage: bench.py --source URI --target URI [--token T] [--rows 200000] [--dim 128] [--rounds 1]
                [--workers 1,2,4] [--ddb-workers 1,4] [--backend NAME] [--no-append] [--no-pages]
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
import uuid
from datetime import datetime, timezone

from pymilvus import DataType, MilvusClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = "bench_src"
BINARY = os.path.join(ROOT, "target", "release", "vecmigrate")
PAGES = os.path.join(ROOT, "target", "release", "examples", "pages")


def schema(dim):
    """The benchmark's collection: a vector, a VarChar, a Double, a JSON and a dynamic field."""
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("title", DataType.VARCHAR, max_length=64)
    s.add_field("price", DataType.DOUBLE)
    s.add_field("meta", DataType.JSON)
    return s


def seed(client, rows, dim):
    """Fills `bench_src` with `rows` entities of `dim`-d vectors in one partition (kept if it
    already holds that many of that width)."""
    if client.has_collection(SOURCE):
        fields = {f["name"]: f for f in client.describe_collection(SOURCE)["fields"]}
        same = "price" in fields and fields["embedding"]["params"].get("dim") == dim
        if same and client.query(SOURCE, filter="", output_fields=["count(*)"])[0]["count(*)"] == rows:
            return
        client.drop_collection(SOURCE)
    client.create_collection(SOURCE, schema=schema(dim))
    rng = random.Random(7)
    for start in range(0, rows, 2000):
        batch = [{"id": i, "embedding": [rng.random() for _ in range(dim)], "title": f"doc {i}",
                  "price": i * 0.25, "meta": {"i": i, "tags": ["a", "b"][: i % 3]},
                  "colour": ["red", "green", "blue"][i % 3]}
                 for i in range(start, min(rows, start + 2000))]
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


def seconds(rfc3339):
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")[:26] + "+00:00").timestamp()


def timed(cmd, env):
    """Runs `cmd` under /usr/bin/time: (seconds, stdout, peak RSS in MB)."""
    with tempfile.TemporaryDirectory() as d:
        rss = os.path.join(d, "rss")
        t0 = time.monotonic()
        out = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss] + cmd, env=env,
                             capture_output=True, text=True)
        elapsed = time.monotonic() - t0
        if out.returncode != 0:
            sys.exit(f"{cmd[0]} failed: {out.stderr[-2000:]}")
        return elapsed, out.stdout, int(open(rss).read().split()[-1]) / 1024


def run_vecmigrate(args, name, workers, table=None, extra=()):
    """`vecmigrate run` of the whole collection: (whole, copy phase, count, bytes, RSS)."""
    with tempfile.TemporaryDirectory() as d:
        store = ["--dynamodb-table", table] if table else ["--store", os.path.join(d, "jobs.sqlite3")]
        cmd = [BINARY] + store + ["--json", "run", "--source-uri", args.source,
                                  "--target-uri", args.target, "--collection", f"{SOURCE}:{name}",
                                  "--workers", str(workers), *extra]
        env = dict(os.environ, VECMIGRATE_SOURCE_TOKEN=args.token, VECMIGRATE_TARGET_TOKEN=args.token)
        elapsed, stdout, rss = timed(cmd, env)
    report = json.loads(stdout)
    times = {e["message"].split(":")[0]: e["time"] for e in report["log"]}
    start = next(t for m, t in times.items() if m.startswith("copying "))
    copy = seconds(times["copy finished"]) - seconds(start)
    bytes_ = int(next(m for m in (e["message"] for e in report["log"]) if m.startswith("copy finished"))
                 .split(" entities, ")[1].split(" bytes")[0])
    return elapsed, copy, report["job"]["collections"][0]["target_count"], bytes_, rss


def run_pymilvus(args, source, target, name):
    """The hand-written copy: (whole, copy phase, count)."""
    t0 = time.monotonic()
    target.create_collection(name, schema=schema(args.dim))
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
    return time.monotonic() - t0, copy, n


def run_pages(args, parallel):
    """bench/pages.rs: {(contender, parallel): seconds}, and its peak RSS."""
    cmd = [PAGES, "--source", args.source, "--target", args.target, "--token", args.token,
           "--collection", SOURCE, "--readers", parallel, "--writers", parallel]
    _, stdout, rss = timed(cmd, dict(os.environ))
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return {(r["contender"], r["parallel"]): r for r in lines}, rss


def create_table(name):
    """A job table on moto as template.yaml defines it (keys, indexes)."""
    import boto3
    client = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
    s = lambda n: {"AttributeName": n, "AttributeType": "S"}  # noqa: E731
    gsi = lambda n, h, r: {"IndexName": n, "KeySchema": [{"AttributeName": h, "KeyType": "HASH"},  # noqa: E731
                                                        {"AttributeName": r, "KeyType": "RANGE"}],
                           "Projection": {"ProjectionType": "ALL"}}
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[s(a) for a in ["pk", "sk", "status", "kind", "created", "hook", "hook_due"]],
        GlobalSecondaryIndexes=[gsi("by_status", "status", "created"), gsi("by_time", "kind", "created"),
                                gsi("webhooks_due", "hook", "hook_due")])
    return name


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--source", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--token", default="")
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=5000, help="pymilvus's batch")
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--ddb-workers", default="1,4")
    p.add_argument("--backend", default="?")
    p.add_argument("--no-append", action="store_true")
    p.add_argument("--no-pages", action="store_true", help="skip (b) and (c)")
    args = p.parse_args()
    source = MilvusClient(uri=args.source, token=args.token)
    target = MilvusClient(uri=args.target, token=args.token)
    t0 = time.monotonic()
    seed(source, args.rows, args.dim)
    print(f"seeded {args.rows} rows x {args.dim}-d in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    workers = [int(w) for w in args.workers.split(",")]
    ddb = [int(w) for w in args.ddb_workers.split(",") if w] if "AWS_ENDPOINT_URL_DYNAMODB" in os.environ else []
    table = create_table(f"vecmigrate-bench-{uuid.uuid4().hex[:8]}") if ddb else None
    tools = (["pymilvus"] + ([] if args.no_pages else ["pages"]) + [f"sqlite-{w}" for w in workers]
             + [f"dynamodb-{w}" for w in ddb])
    runs = {tool: [] for tool in tools}
    data_bytes = None
    for r in range(args.rounds):
        for tool in tools:
            name = f"bench_{tool.replace('-', '_')}_{r}"
            if target.has_collection(name):
                target.drop_collection(name)
            if tool == "pymilvus":
                whole, copy, n = run_pymilvus(args, source, target, name)
                runs[tool].append({"whole": whole, "copy": copy, "n": n})
                print(f"round {r + 1} pymilvus      whole {whole:7.2f}s copy {copy:7.2f}s", flush=True)
            elif tool == "pages":
                got, rss = run_pages(args, ",".join(map(str, workers)))
                runs[tool].append({"got": got, "rss": rss})
                for (c, k), v in sorted(got.items()):
                    print(f"round {r + 1} {c} x{k}: {v['seconds']:.2f}s, {v['rows_per_s']} rows/s", flush=True)
                continue
            else:
                kind, w = tool.split("-")
                whole, copy, n, data_bytes, rss = run_vecmigrate(
                    args, name, int(w), table if kind == "dynamodb" else None)
                runs[tool].append({"whole": whole, "copy": copy, "n": n, "rss": rss})
                print(f"round {r + 1} {tool:<13} whole {whole:7.2f}s copy {copy:7.2f}s "
                      f"RSS {rss:.0f} MB", flush=True)
            target.drop_collection(name)
            if n != args.rows:
                sys.exit(f"{tool} copied {n} of {args.rows}")
    table_md = summarize(args, runs, workers, ddb, data_bytes)
    print(table_md)
    if not args.no_append:
        command = "bench/run.sh " + " ".join(sys.argv[1:][sys.argv[1:].index("--backend") + 2:]
                                            if "--backend" in sys.argv else [])
        with open(os.path.join(ROOT, "bench", "RESULTS.md"), "a") as f:
            f.write(f"\n### {args.backend}, {args.rows:,} entities of {args.dim}-d, "
                    f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {args.rounds} round(s)\n\n"
                    f"`{'BENCH_BACKEND=' + args.backend + ' ' if args.backend != 'lite' else ''}"
                    f"{command.strip()}` ({os.cpu_count()} cores)\n\n{table_md}\n")


def summarize(args, runs, workers, ddb, data_bytes):
    med = lambda tool, key: statistics.median(x[key] for x in runs[tool])  # noqa: E731
    mb = (data_bytes or 0) / 1e6
    a_whole = med("pymilvus", "whole")
    have_pages = bool(runs.get("pages"))
    pages = lambda c, k: statistics.median(x["got"][(c, k)]["seconds"] for x in runs["pages"])  # noqa: E731
    pages_rss = max(x["rss"] for x in runs["pages"]) if have_pages else 0
    lines = ["| contender | whole job | × (a)'s speed | copy phase | rows/s | MB/s | copy ÷ slower of (b), (c) | vs (d) | peak RSS |",
             "|---|---|---|---|---|---|---|---|---|",
             f"| (a) pymilvus | {a_whole:.1f} s | 1.00 | {med('pymilvus', 'copy'):.1f} s | "
             f"{args.rows / med('pymilvus', 'copy'):,.0f} | {mb / med('pymilvus', 'copy'):.1f} | | | |"]
    for k in workers if have_pages else []:
        for c, label in (("scan", "(b) scan alone"), ("insert", "(c) insert alone")):
            s = pages(c, k)
            lines.append(f"| {label}, {k} {'readers' if c == 'scan' else 'writers'} | | | {s:.1f} s | "
                         f"{args.rows / s:,.0f} | {mb / s:.1f} | | | {pages_rss:.0f} MB (whole tool) |")
    key_scan = pages("key scan", 1) if have_pages else None
    for kind, ks in (("sqlite", workers), ("dynamodb", ddb)):
        for k in ks:
            tool = f"{kind}-{k}"
            whole, copy = med(tool, "whole"), med(tool, "copy")
            bound = max(pages("scan", k), pages("insert", k)) if have_pages and k in workers else None
            versus = f"{whole / med(f'sqlite-{k}', 'whole'):.3f}" if kind == "dynamodb" and k in workers else ""
            label = "(d) vecmigrate" if kind == "sqlite" else "(e) vecmigrate, DynamoDB"
            ratio = f"{copy / bound:.2f}" if bound else ""
            rss = max(x["rss"] for x in runs[tool])
            lines.append(f"| {label}, {k} worker{'s' if k > 1 else ''} | {whole:.1f} s | "
                         f"{a_whole / whole:.2f} | {copy:.1f} s | {args.rows / copy:,.0f} | "
                         f"{mb / copy:.1f} | {ratio} | {versus} | {rss:.0f} MB |")
    if key_scan is not None:
        lines.append(f"\nReading every key alone (what a cut costs): {key_scan:.1f} s.")
    lines.append(f"\nData: {mb:.0f} MB as Milvus encodes it.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
