"""A stand-in for Zilliz Cloud's control plane (a test tool: the real one cannot run here).

It answers the one call vecmigrate makes, Describe Cluster (V2), in the documented shapes:

    GET /v2/clusters/{CLUSTER_ID}     Authorization: Bearer <API key>
    200 {"code": 0, "data": {"clusterId", "clusterName", "projectId", "regionId", "cuType",
                             "plan", "status", "connectAddress", "privateLinkAddress",
                             "cuSize", "createTime", ...}}
    an error: {"code": N, "message": "..."}

The error codes are illustrative (the documentation gives the envelope, not the numbers):
80001 for a missing or unknown API key (HTTP 401), 80020 for a cluster the key cannot see or
that does not exist (HTTP 404). Every request is recorded, without its key.

    python scripts/zilliz_control_plane.py --config clusters.json [--port 0]

clusters.json: {"keys": {"API_KEY": ["in01-...", ...]},
                "clusters": {"in01-...": {"plan": "Enterprise", "status": "RUNNING",
                                          "connectAddress": "http://127.0.0.1:19530",
                                          "cuSize": 2, "regionId": "aws-us-west-2"}}}
Prints its port on the first line of stdout. GET /requests returns what it was asked.
"""
import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

requests = []
lock = threading.Lock()


def make_handler(config):
    keys = config.get("keys", {})
    clusters = config.get("clusters", {})

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/requests":
                with lock:
                    self.answer(200, list(requests))
                return
            auth = self.headers.get("authorization", "")
            key = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
            with lock:
                requests.append({"path": self.path, "bearer": key is not None})
            parts = self.path.strip("/").split("/")
            if len(parts) != 3 or parts[:2] != ["v2", "clusters"]:
                self.answer(404, {"code": 404, "message": f"no route GET {self.path}"})
                return
            if key is None or key not in keys:
                self.answer(401, {"code": 80001, "message": "Invalid token: the API key is not valid."})
                return
            cluster_id = parts[2]
            if cluster_id not in keys[key] or cluster_id not in clusters:
                self.answer(404, {"code": 80020, "message": f"Cluster {cluster_id} does not exist or you do not have permission to access it."})
                return
            c = clusters[cluster_id]
            self.answer(200, {"code": 0, "data": {
                "clusterId": cluster_id,
                "clusterName": c.get("clusterName", cluster_id),
                "projectId": "proj-standin",
                "description": "",
                "regionId": c.get("regionId", "aws-us-west-2"),
                "cuType": c.get("cuType", "Performance-optimized"),
                "plan": c["plan"],
                "status": c.get("status", "RUNNING"),
                "connectAddress": c["connectAddress"],
                "privateLinkAddress": "",
                "cuSize": c.get("cuSize", 0),
                "storageSize": 0,
                "snapshotNumber": 0,
                "createProgress": 100,
                "createTime": "2026-01-01T00:00:00Z",
            }})

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with open(args.config) as f:
        config = json.load(f)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(config))
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
