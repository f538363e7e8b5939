"""Test tool: does a Milvus server keep the writes it acknowledged when it is SIGKILLed?

Writers insert pages of 500 entities (keys unique to each page) into a new collection of the
server in DIR (a folder `scripts/lib.sh` made: its `uri`, `token` and start script) and record
each page the server acknowledged. Once KILL_AFTER entities were acknowledged, the server is
SIGKILLed, started again on its data (`scripts/restart_server.sh`), and every acknowledged page
is counted back. No vecmigrate code runs: what is missing was lost by the server.

Usage: probe_lost_acks.py DIR [--writers 4] [--kill-after 2000] [--runs 5]
"""
import argparse
import logging
import os
import random
import subprocess
import threading
import time

from pymilvus import DataType, MilvusClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = 500


def one_run(d, writers, kill_after):
    uri = open(f"{d}/uri").read().strip()
    token = open(f"{d}/token").read().strip()
    client = MilvusClient(uri=uri, token=token)
    name = f"probe_{random.randint(0, 10**9)}"
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=128)
    client.create_collection(name, schema=schema)
    index = client.prepare_index_params()
    index.add_index("v", index_type="AUTOINDEX", metric_type="COSINE")
    client.create_index(name, index)
    client.load_collection(name)
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def write(w):
        c = MilvusClient(uri=uri, token=token)
        page = 0
        while not stop.is_set():
            base = (w * 1_000_000 + page) * PAGE
            rows = [{"id": base + i, "v": [random.random()] * 128} for i in range(PAGE)]
            try:
                c.insert(name, rows)
            except Exception:
                return
            with lock:
                acked.append(base)
            page += 1

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    while True:
        with lock:
            if len(acked) * PAGE >= kill_after:
                break
        time.sleep(0.002)
    subprocess.run(["bash", f"{ROOT}/scripts/restart_server.sh", d, "1"], check=True,
                   capture_output=True)
    stop.set()
    for t in threads:
        t.join()
    client = MilvusClient(uri=uri, token=token)
    client.load_collection(name)
    missing = 0
    for base in acked:
        got = client.query(name, filter=f"id >= {base} and id < {base + PAGE}",
                           output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
        missing += PAGE - got
    client.drop_collection(name)
    return len(acked) * PAGE, missing


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--writers", type=int, default=4)
    p.add_argument("--kill-after", type=int, default=2_000)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    logging.disable(logging.CRITICAL)  # pymilvus logs every refused reconnection
    for run in range(1, args.runs + 1):
        acked, missing = one_run(args.dir, args.writers, args.kill_after)
        print(f"run {run}: {args.writers} writers, {acked} entities acknowledged, "
              f"{missing} of them missing after the restart", flush=True)


if __name__ == "__main__":
    main()
