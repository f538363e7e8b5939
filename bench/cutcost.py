"""What finding a cut costs on each backend: the two ways engine/split.rs could locate the key
that cuts a remainder, timed on the same partition. One is counting: `count(*)` with a key-range
filter, the remainder after a cursor and then up to a candidate key (what the engine does; its
search needs a handful). The other is reading the remainder's keys, key-only, in pages of
16,384 after the cursor, and taking the middle one.

Usage: cutcost.py --uri URI [--token T] [--rows 200000] [--dim 128] [--rounds 3]
"""
import argparse
import os
import statistics
import sys
import time

from pymilvus import MilvusClient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import SOURCE, seed  # noqa: E402


def timed(f):
    t0 = time.monotonic()
    out = f()
    return time.monotonic() - t0, out


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
    cursor = args.rows // 10  # a holder that copied a tenth
    count_s, keys_s = [], []
    for _ in range(args.rounds):
        def count():
            left = client.query(SOURCE, filter=f"id > {cursor}", output_fields=["count(*)"],
                                consistency_level="Strong")[0]["count(*)"]
            probe = cursor + left // 2
            before = client.query(SOURCE, filter=f"id > {cursor} && id <= {probe}",
                                  output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
            return left, before
        t, (left, _) = timed(count)
        count_s.append(t)

        def keys():
            after, n = cursor, 0
            while True:
                page = client.query(SOURCE, filter=f"id > {after}", output_fields=["id"],
                                    limit=16_384, consistency_level="Strong")
                if not page:
                    return n
                after = max(r["id"] for r in page)
                n += len(page)
        t, n = timed(keys)
        keys_s.append(t)
        assert n == left, (n, left)
    c, k = statistics.median(count_s), statistics.median(keys_s)
    print(f"| {args.rows:,} | {left:,} | {c:.3f} s (2 counts) | {k:.3f} s ({-(-left // 16384)} key pages) "
          f"| {k / c:.1f}× |")


if __name__ == "__main__":
    main()
