"""Waits until a Milvus server answers a gRPC call: wait_milvus.py URI TOKEN TIMEOUT_SECONDS."""
import sys
import time

from pymilvus import MilvusClient

uri, token, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.time() + timeout
last = None
while time.time() < deadline:
    try:
        client = MilvusClient(uri=uri, token=token, timeout=5)
        client.list_databases()
        client.close()
        sys.exit(0)
    except Exception as e:  # noqa: BLE001 - any failure means "not yet"
        last = e
        time.sleep(0.5)
print(f"Milvus at {uri} did not answer within {timeout:.0f}s: {last}", file=sys.stderr)
sys.exit(1)
