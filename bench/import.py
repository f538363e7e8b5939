"""Insert mode against import mode: `vecmigrate run` (release build) copying one collection into a
target behind the fault proxy (scripts/grpc_proxy.py, a test tool), which holds Insert/Upsert to
a byte rate as Zilliz Cloud's write cap does and passes the Import RPC through unmetered; and,
with `--cap-mb 0`, no cap at all, beside the hand-written pymilvus copy (bench.py's).

Each run copies into a new target collection and is timed whole (plan, copy, index phase,
verification by counts), round by round, contenders alternated; import mode stages its files in
a temporary directory the local target server reads.

Usage: import.py --source URI --target-direct URI --target-proxy URI --control URL [--token T]
                 [--rows 200000] [--dim 128] [--cap-mb 2[,0]] [--rounds 2] [--workers 1]
                 [--pymilvus]
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request

from pymilvus import MilvusClient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import SOURCE, run_pymilvus, seed, target_count, timed, BINARY  # noqa: E402


def control(url, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def run_vecmigrate(args, name, mode):
    """One `vecmigrate run` into `name` through the proxy: (seconds, target count, log)."""
    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as staging:
        cmd = [BINARY, "--store", os.path.join(d, "jobs.sqlite3"), "--json", "run",
               "--source-uri", args.source, "--target-uri", args.target_proxy,
               "--collection", f"{SOURCE}:{name}", "--workers", str(args.workers),
               "--write-mode", mode]
        if mode != "insert":
            cmd += ["--staging", staging]
        env = dict(os.environ, VECMIGRATE_SOURCE_TOKEN=args.token,
                   VECMIGRATE_TARGET_TOKEN=args.token)
        elapsed, stdout, _ = timed(cmd, env)
    report = json.loads(stdout)
    return elapsed, report["job"]["collections"][0]["target_count"], report


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--source", required=True)
    p.add_argument("--target-direct", required=True)
    p.add_argument("--target-proxy", required=True)
    p.add_argument("--control", required=True)
    p.add_argument("--token", default="")
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--cap-mb", default="2", help="MB/s on Insert/Upsert; a list runs each, 0 is none")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--pymilvus", action="store_true")
    args = p.parse_args()
    args.target = args.target_direct
    source = MilvusClient(uri=args.source, token=args.token)
    direct = MilvusClient(uri=args.target_direct, token=args.token)
    proxied = MilvusClient(uri=args.target_proxy, token=args.token)
    seed(source, args.rows, args.dim)
    tables = []
    for cap_mb in [float(c) for c in args.cap_mb.split(",")]:
        tables.append(compare(args, source, direct, proxied, cap_mb))
    print()
    print("\n\n".join(tables))


def compare(args, source, direct, proxied, cap_mb):
    """Insert against import (and pymilvus) under one cap: the table's text."""
    cap = f"{cap_mb:g} MB/s on Insert/Upsert" if cap_mb else "no cap"
    print(f"{args.rows} rows x {args.dim}-d, {args.workers} worker(s), {cap}", flush=True)
    contenders = ["insert", "import"] + (["pymilvus"] if args.pymilvus else [])
    times = {c: [] for c in contenders}
    for r in range(args.rounds):
        for c in contenders:
            name = f"imp_{c}_{r}"
            if direct.has_collection(name):
                direct.drop_collection(name)
            control(args.control, "/faults", {"rate_cap_bytes": cap_mb * 1e6} if cap_mb else {})
            note = ""
            if c == "pymilvus":
                t0 = time.monotonic()
                # Through the proxy, as vecmigrate writes: capped alike.
                run_pymilvus(args, source, proxied, name)
                elapsed = time.monotonic() - t0
            else:
                elapsed, _, report = run_vecmigrate(args, name, c)
                imported = report["progress"].get("import")
                if imported:
                    note = (f" ({imported['files_imported']} files, "
                            f"{imported['staged_bytes'] / 1e6:.0f} MB staged)")
            control(args.control, "/faults", {})
            count = target_count(direct, name)
            direct.drop_collection(name)
            ok = "complete" if count == args.rows else f"INCOMPLETE {count}"
            print(f"round {r + 1} {c:<8} {elapsed:7.1f} s {ok}{note}", flush=True)
            times[c].append(elapsed)
    base = statistics.median(times["import"])
    lines = [f"| {args.rows:,} x {args.dim}-d, {cap} | median seconds (range) | over import |",
             "|---|---|---|"]
    for c, ts in times.items():
        m = statistics.median(ts)
        lines.append(f"| {c} | {m:.1f} ({min(ts):.1f}–{max(ts):.1f}) | {m / base:.2f}× |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
