"""Waits until a Milvus server answers: wait_milvus.py URI TOKEN TIMEOUT_SECONDS [--deep].

With --deep it also waits until the server can create, fill, load and drop a scratch
collection: a server restarted after SIGKILL answers calls long before its query node can load
anything (Milvus 2.3.5 keeps the dead node's session for a while).
"""
import sys
import time
import uuid

from pymilvus import MilvusClient

uri, token, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
deep = "--deep" in sys.argv[4:]
deadline = time.time() + timeout
last = None
while time.time() < deadline:
    try:
        client = MilvusClient(uri=uri, token=token, timeout=5)
        client.list_databases()
        if deep:
            name = f"ready_probe_{uuid.uuid4().hex[:8]}"
            try:
                client.create_collection(name, dimension=2)
                client.insert(name, [{"id": 1, "vector": [0.5, 0.5]}])
                client.load_collection(name, timeout=20)
                client.query(name, filter="id >= 0", output_fields=["id"])
            finally:
                try:
                    client.drop_collection(name)
                except Exception:  # noqa: BLE001 - dropped next time, or with the server
                    pass
        client.close()
        sys.exit(0)
    except Exception as e:  # noqa: BLE001 - any failure means "not yet"
        last = e
        time.sleep(0.5)
print(f"Milvus at {uri} did not answer within {timeout:.0f}s: {last}", file=sys.stderr)
sys.exit(1)
