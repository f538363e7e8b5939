"""What counting one key range costs on each backend: the query `engine/ranges.rs` sends to
each side when a task ends and again in the finish step (`count(*)` with the range's key filter,
Strong consistency), timed for ranges of a tenth, a hundredth and a thousandth of the
collection, and for the whole collection (what a whole-collection count costs, for scale).

Usage: rangecost.py --uri URI [--token T] [--rows 200000] [--dim 128] [--rounds 3]
"""
import argparse
import os
import statistics
import sys
import time

from pymilvus import MilvusClient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import SOURCE, seed  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--uri", required=True)
    p.add_argument("--token", default="")
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    client = MilvusClient(uri=args.uri, token=args.token)
    seed(client, args.rows, args.dim)
    n = args.rows
    ranges = [("whole collection", None)] + [
        (f"1/{d} ({n // d:,})", (n // 2, n // 2 + n // d)) for d in (10, 100, 1000)
    ]
    cells = []
    for label, bounds in ranges:
        flt = "" if bounds is None else f"id > {bounds[0]} && id <= {bounds[1]}"
        times = []
        for _ in range(args.rounds):
            t0 = time.monotonic()
            got = client.query(SOURCE, filter=flt, output_fields=["count(*)"],
                               consistency_level="Strong")[0]["count(*)"]
            times.append(time.monotonic() - t0)
        want = n if bounds is None else bounds[1] - bounds[0]
        assert got == want, (label, got, want)
        cells.append(f"{statistics.median(times):.3f} s")
    print(f"| {n:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
