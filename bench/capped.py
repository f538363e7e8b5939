"""How close each tool gets to a target's write cap: `vecmigrate run` against a pymilvus
query_iterator + insert copy, both writing through the fault proxy (scripts/grpc_proxy.py, a
test tool) that holds writes to a byte rate and answers the excess as Milvus's rate limiter
does (status code 8, `rate limit exceeded[rate=N]`). Alternates the two tools round by round.

Two figures per run, both in bytes of insert requests the proxy let through:
  - over the writes: from the first write forwarded to the last (the proxy's clock);
  - over the copy: from the start of copying to its end (the tool's own log or loop), which
    also counts the time before the first write and after the last.

Usage: capped.py --source URI --target-direct URI --target-proxy URI --control URL [--token T]
                 [--rows 60000] [--dim 128] [--cap-mb 2] [--rounds 3] [--batch-size 1000]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from pymilvus import MilvusClient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BINARY, SOURCE, schema, seed, seconds, target_count  # noqa: E402


def control(url, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url + path, data=data,
                                                       method="POST" if data else "GET")) as r:
        return json.loads(r.read())


def run_vecmigrate(args, name):
    with tempfile.TemporaryDirectory() as d:
        cmd = [args.binary, "--store", os.path.join(d, "jobs.sqlite3"), "--json", "run",
               "--source-uri", args.source, "--target-uri", args.target_proxy,
               "--collection", f"{SOURCE}:{name}", "--batch-size", str(args.batch_size),
               "--workers", "1"]
        env = dict(os.environ, VECMIGRATE_SOURCE_TOKEN=args.token, VECMIGRATE_TARGET_TOKEN=args.token)
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"vecmigrate failed: {out.stderr}")
        report = json.loads(out.stdout)
        times = {e["message"].split(":")[0]: e["time"] for e in report["log"]}
        start = next(t for m, t in times.items() if m.startswith("copying "))
        return seconds(times["copy finished"]) - seconds(start), report["job"].get("write_rate")


def run_pymilvus(args, source, target, name):
    target.create_collection(name, schema=schema(args.dim))
    t0 = time.monotonic()
    it = source.query_iterator(SOURCE, batch_size=args.batch_size, output_fields=["*"])
    while True:
        rows = it.next()
        if not rows:
            break
        target.insert(name, rows)  # pymilvus retries a rate-limited insert with its own backoff
    it.close()
    copy = time.monotonic() - t0
    target.flush(name)
    index = target.prepare_index_params()
    index.add_index("embedding", index_type="AUTOINDEX", metric_type="L2")
    target.create_index(name, index)
    return copy, None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--source", required=True)
    p.add_argument("--target-direct", required=True)
    p.add_argument("--target-proxy", required=True)
    p.add_argument("--control", required=True)
    p.add_argument("--token", default="")
    p.add_argument("--rows", type=int, default=60_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--cap-mb", type=float, default=2.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--binary", default=BINARY)
    args = p.parse_args()
    cap = args.cap_mb * 1e6
    source = MilvusClient(uri=args.source, token=args.token)
    direct = MilvusClient(uri=args.target_direct, token=args.token)
    proxied = MilvusClient(uri=args.target_proxy, token=args.token)
    seed(source, args.rows, args.dim)
    print(f"cap {args.cap_mb} MB/s; {args.rows} rows x {args.dim}-d, pages of {args.batch_size}", flush=True)
    results = {"vecmigrate": [], "pymilvus": []}
    for r in range(args.rounds):
        for tool in ("vecmigrate", "pymilvus"):
            name = f"capped_{tool}_{r}"
            if direct.has_collection(name):
                direct.drop_collection(name)
            control(args.control, "/faults", {"rate_cap_bytes": cap})
            if tool == "vecmigrate":
                copy, rate = run_vecmigrate(args, name)
            else:
                copy, rate = run_pymilvus(args, source, proxied, name)
            stats = control(args.control, "/stats")
            control(args.control, "/faults", {})
            n = target_count(direct, name)
            direct.drop_collection(name)
            written = stats["forwarded_write_bytes"]
            span = stats["last_write_at"] - stats["first_write_at"]
            over_writes, over_copy = written / span / cap, written / copy / cap
            complete = "complete" if n == args.rows else f"INCOMPLETE ({n} of {args.rows})"
            learnt = f", learnt {rate['bytes_per_s'] / 1e6:.2f} MB/s after {rate['throttles']} throttles" if rate else ""
            print(f"round {r + 1} {tool:<10} {written / 1e6:6.1f} MB; over the writes {over_writes:.3f} x cap, "
                  f"over the copy ({copy:5.1f} s) {over_copy:.3f} x cap; {stats['throttled']} throttled{learnt}; {complete}",
                  flush=True)
            results[tool].append((over_writes, over_copy, n == args.rows))
    print()
    for tool, runs in results.items():
        w = [a for a, _, _ in runs]
        c = [b for _, b, _ in runs]
        print(f"{tool:<10} over the writes median {statistics.median(w):.3f} x cap (min {min(w):.3f}, max {max(w):.3f}); "
              f"over the copy median {statistics.median(c):.3f} x cap (min {min(c):.3f}, max {max(c):.3f}); "
              f"complete {sum(ok for _, _, ok in runs)}/{len(runs)}")


if __name__ == "__main__":
    main()
