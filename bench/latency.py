"""Parallel readers where they pay: `vecmigrate run` (release build) with 1 and with 4
workers, the source behind the test gRPC proxy (scripts/grpc_proxy.py, a test tool) that adds
50 to 200 ms to every call, as across a real network. One single-partition collection: with 4
workers it is cut while it is copied (see engine/split.rs). Alternates the two, round by round.

Usage: latency.py --source-direct URI --source-proxy URI --control URL --target URI [--token T]
                  [--rows 300000] [--dim 128] [--batch-size 2000] [--rounds 2] [--latency 50,200]
                  [--max-run 10s]   (short invocations: each worker stops and a fresh one goes on)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request

from pymilvus import MilvusClient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BINARY, SOURCE, seconds, seed, target_count  # noqa: E402


def control(url, body):
    data = json.dumps(body).encode()
    urllib.request.urlopen(urllib.request.Request(url + "/faults", data=data, method="POST")).read()


def run(args, name, workers):
    with tempfile.TemporaryDirectory() as d:
        cmd = [BINARY, "--store", os.path.join(d, "jobs.sqlite3"), "--json", "run",
               "--source-uri", args.source_proxy, "--target-uri", args.target,
               "--collection", f"{SOURCE}:{name}", "--workers", str(workers),
               "--batch-size", str(args.batch_size)]
        if args.max_run:
            cmd += ["--max-run", args.max_run]
        env = dict(os.environ, VECMIGRATE_SOURCE_TOKEN=args.token, VECMIGRATE_TARGET_TOKEN=args.token)
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"vecmigrate failed: {out.stderr[-3000:]}")
    report = json.loads(out.stdout)
    times = {e["message"].split(":")[0]: e["time"] for e in report["log"]}
    start = next(t for m, t in times.items() if m.startswith("copying "))
    copy = seconds(times["copy finished"]) - seconds(start)
    return copy, [t["copied"] for t in report["tasks"]]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--source-direct", required=True)
    p.add_argument("--source-proxy", required=True)
    p.add_argument("--control", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--token", default="")
    p.add_argument("--rows", type=int, default=300_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--latency", default="50,200")
    p.add_argument("--max-run", default="")
    args = p.parse_args()
    seed(MilvusClient(uri=args.source_direct, token=args.token), args.rows, args.dim)
    target = MilvusClient(uri=args.target, token=args.token)
    low, high = (int(x) for x in args.latency.split(","))
    control(args.control, {"latency_ms": [low, high]})
    print(f"{args.rows} rows x {args.dim}-d, one partition, pages of {args.batch_size}, "
          f"invocations of {args.max_run or 'any length'}; "
          f"{low}-{high} ms added to every source call", flush=True)
    times = {1: [], 4: []}
    for r in range(args.rounds):
        for workers in (1, 4):
            name = f"latency_{workers}_{r}"
            copy, spread = run(args, name, workers)
            n = target_count(target, name)
            target.drop_collection(name)
            times[workers].append(copy)
            print(f"round {r + 1}: {workers} worker(s) copied {n} in {copy:.1f} s "
                  f"({args.rows / copy:,.0f}/s); tasks {spread}", flush=True)
    control(args.control, {})
    one, four = statistics.median(times[1]), statistics.median(times[4])
    print(f"\n| workers | copy, median (min–max) | speed-up |\n|---|---|---|")
    print(f"| 1 | {one:.1f} s ({min(times[1]):.1f}–{max(times[1]):.1f}) | 1.00× |")
    print(f"| 4 | {four:.1f} s ({min(times[4]):.1f}–{max(times[4]):.1f}) | {one / four:.2f}× |")


if __name__ == "__main__":
    main()
