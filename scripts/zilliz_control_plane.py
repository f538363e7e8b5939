"""A stand-in for Zilliz Cloud's control plane (a test tool: the real one cannot run here).

It answers the calls vecmigrate makes, in the documented shapes: Describe Cluster (V2),
List Clusters (V2) and Create Dedicated Cluster (V2):

    GET /v2/clusters/{CLUSTER_ID}     Authorization: Bearer <API key>
    200 {"code": 0, "data": {"clusterId", "clusterName", "projectId", "regionId", "cuType",
                             "plan", "status", "connectAddress", "privateLinkAddress",
                             "cuSize", "createTime", ...}}
    an error: {"code": N, "message": "..."}

    GET /v2/clusters?projectId=&pageSize=&currentPage=
    200 {"code": 0, "data": {"count", "currentPage", "pageSize", "clusters": [{...}, ...]}}

    POST /v2/clusters/createDedicated  {"clusterName", "projectId", "regionId", "plan",
                                        "cuType", "cuSize"}
    200 {"code": 0, "data": {"clusterId", "username", "password", "prompt"}}

And Import Operations (V2), for a cluster given by id:

    POST /v2/vectordb/jobs/import/create  {"clusterId", "dbName", "collectionName",
        "partitionName", "objectUrls": [["s3://bucket/key"]], "accessKey", "secretKey", "token"}
    200 {"code": 0, "data": {"jobId"}}
    POST /v2/vectordb/jobs/import/getProgress  {"clusterId", "jobId"}
    200 {"code": 0, "data": {"jobId", "collectionName", "state", "progress", "importedRows",
                             "totalRows", "reason", "details": [{"fileName", ...}]}}
    POST /v2/vectordb/jobs/import/list  {"clusterId", "pageSize", "currentPage"}
    200 {"code": 0, "data": {"count", "records": [{"jobId", "collectionName", "state",
                                                   "progress", "reason"}]}}

An import fetches each object from S3 (the AWS_ENDPOINT_URL_S3 the process is given, moto in
the tests) with the credentials in the request, writes it to a local directory, and has the
cluster's real server import it by path (Milvus 2.3.5's `Import` RPC, through pymilvus): Pending
and Importing map from the server's states, Completed and Failed too. `details[].fileName` is
the object's key. `imports.loseReplies: N` drops the answer of the first N creates after the
import started. GET /imports lists what each create was given: the access key id, whether a
secret key and a session token came (never their values), and the fetched object's size.

A created cluster is mapped to the test server `newClusters.connectAddress` names; it is
CREATING (no endpoint) for its first `newClusters.creatingPolls` describes, then RUNNING, and the
creating key may see it. `newClusters.loseReplies: N` drops the answer of the first N creates
after creating the cluster (the connection closes), as a lost reply or a crash would.
GET /creations lists what was created (with the generated passwords, for tests to look for).

The error codes are illustrative (the documentation gives the envelope, not the numbers):
80001 for a missing or unknown API key (HTTP 401), 80020 for a cluster the key cannot see or
that does not exist (HTTP 404). Every request is recorded, without its key.

    python scripts/zilliz_control_plane.py --config clusters.json [--port 0]

clusters.json: {"keys": {"API_KEY": ["in01-...", ...]},
                "newClusters": {"connectAddress": "http://127.0.0.1:19531", "creatingPolls": 2},
                "clusters": {"in01-...": {"plan": "Enterprise", "status": "RUNNING",
                                          "connectAddress": "http://127.0.0.1:19530",
                                          "cuSize": 2, "regionId": "aws-us-west-2"}}}
Prints its port on the first line of stdout. GET /requests returns what it was asked.
"""
import argparse
import warnings
import json
import os
import secrets
import sys
import tempfile
import threading
from urllib.parse import parse_qs, urlparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from import_job import describe

requests = []
creations = []
imports = []
lock = threading.Lock()
FETCHED = tempfile.mkdtemp(prefix="standin-imports-")
# The ORM calls are the ones that reach the 2.3.5 server's Import RPC; their deprecation is noise.
warnings.filterwarnings("ignore", message=".*ORM-style PyMilvus API")


class Importer:
    """Import jobs: objects fetched from S3, imported by the cluster's real server."""

    def __init__(self, clusters, config):
        self.clusters = clusters
        self.jobs = {}
        self.lose = config.get("loseReplies", 0)

    def server(self, cluster_id, db):
        from pymilvus import connections
        alias = f"{cluster_id}/{db}"
        if not connections.has_connection(alias):
            c = self.clusters[cluster_id]
            connections.connect(alias, uri=c["connectAddress"], token=c.get("token", ""),
                                db_name=db or "default")
        return alias

    def create(self, body):
        import boto3
        from pymilvus import utility
        (url,), = body["objectUrls"]
        bucket, key = url[len("s3://"):].split("/", 1)
        s3 = boto3.client("s3", aws_access_key_id=body["accessKey"],
                          aws_secret_access_key=body["secretKey"],
                          aws_session_token=body.get("token"))
        local = os.path.join(FETCHED, secrets.token_hex(8) + "-" + key.rsplit("/", 1)[-1])
        s3.download_file(bucket, key, local)
        alias = self.server(body["clusterId"], body.get("dbName", ""))
        task = utility.do_bulk_insert(body["collectionName"], files=[local],
                                      partition_name=body.get("partitionName") or None,
                                      using=alias)
        job_id = "job-" + secrets.token_hex(8)
        self.jobs[job_id] = {"clusterId": body["clusterId"], "alias": alias, "task": task,
                             "collectionName": body["collectionName"], "key": key,
                             "local": local}
        imports.append({"jobId": job_id, "accessKey": body["accessKey"],
                        "secretKey": bool(body.get("secretKey")),
                        "token": bool(body.get("token")), "objectUrls": body["objectUrls"],
                        "bytes": os.path.getsize(local)})
        return job_id

    def describe(self, job_id):
        job = self.jobs[job_id]
        d = describe(job_id, job["collectionName"], job["key"], job["task"], job["alias"])
        if d["state"] in ("Completed", "Failed") and os.path.exists(job["local"]):
            os.remove(job["local"])
        return d


def make_handler(config):
    keys = config.get("keys", {})
    clusters = config.get("clusters", {})
    new_clusters = config.get("newClusters", {})
    polls_left = {}
    lost = {"left": new_clusters.get("loseReplies", 0)}
    importer = Importer(clusters, config.get("imports", {}))
    lost_imports = {"left": importer.lose}

    def describe(cluster_id):
        c = clusters[cluster_id]
        status = c.get("status", "RUNNING")
        if polls_left.get(cluster_id, 0) > 0:
            polls_left[cluster_id] -= 1
            status = "CREATING"
        elif cluster_id in polls_left:
            c["status"] = status = "RUNNING"
        return {
            "clusterId": cluster_id,
            "clusterName": c.get("clusterName", cluster_id),
            "projectId": c.get("projectId", "proj-standin"),
            "description": "",
            "regionId": c.get("regionId", "aws-us-west-2"),
            "cuType": c.get("cuType", "Performance-optimized"),
            "plan": c["plan"],
            "status": status,
            "connectAddress": c["connectAddress"] if status == "RUNNING" else "",
            "privateLinkAddress": "",
            "cuSize": c.get("cuSize", 0),
            "storageSize": 0,
            "snapshotNumber": 0,
            "createProgress": 100 if status == "RUNNING" else 40,
            "createTime": "2026-01-01T00:00:00Z",
        }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def key(self):
            auth = self.headers.get("authorization", "")
            key = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
            with lock:
                requests.append({"method": self.command, "path": self.path,
                                 "bearer": key is not None})
            if key is None or key not in keys:
                self.answer(401, {"code": 80001, "message": "Invalid token: the API key is not valid."})
                return None
            return key

        def do_GET(self):
            if self.path == "/requests":
                with lock:
                    self.answer(200, list(requests))
                return
            if self.path == "/imports":
                with lock:
                    self.answer(200, list(imports))
                return
            if self.path == "/creations":
                with lock:
                    self.answer(200, list(creations))
                return
            url = urlparse(self.path)
            parts = url.path.strip("/").split("/")
            if parts[:2] != ["v2", "clusters"] or len(parts) > 3:
                self.answer(404, {"code": 404, "message": f"no route GET {self.path}"})
                return
            key = self.key()
            if key is None:
                return
            with lock:
                if len(parts) == 2:
                    self.list_clusters(key, parse_qs(url.query))
                    return
                cluster_id = parts[2]
                if cluster_id not in keys[key] or cluster_id not in clusters:
                    self.answer(404, {"code": 80020, "message": f"Cluster {cluster_id} does not exist or you do not have permission to access it."})
                    return
                self.answer(200, {"code": 0, "data": describe(cluster_id)})

        def list_clusters(self, key, query):
            project = query.get("projectId", [None])[0]
            size = int(query.get("pageSize", ["10"])[0])
            page = int(query.get("currentPage", ["1"])[0])
            seen = [describe(i) for i in keys[key] if i in clusters]
            seen = [c for c in seen if project is None or c["projectId"] == project]
            self.answer(200, {"code": 0, "data": {
                "count": len(seen), "currentPage": page, "pageSize": size,
                "clusters": seen[(page - 1) * size:page * size],
            }})

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.startswith("/v2/vectordb/jobs/import/"):
                self.import_call(self.path.rsplit("/", 1)[-1], body)
                return
            if self.path != "/v2/clusters/createDedicated":
                self.answer(404, {"code": 404, "message": f"no route POST {self.path}"})
                return
            key = self.key()
            if key is None:
                return
            missing = [f for f in ("clusterName", "projectId", "regionId", "cuType", "cuSize")
                       if f not in body]
            if missing or "connectAddress" not in new_clusters:
                self.answer(400, {"code": 1100, "message": f"invalid parameters: {missing}"})
                return
            with lock:
                cluster_id = "in01-" + secrets.token_hex(8)
                password = secrets.token_urlsafe(18)
                clusters[cluster_id] = {
                    "clusterName": body["clusterName"], "projectId": body["projectId"],
                    "regionId": body["regionId"], "cuType": body["cuType"],
                    "cuSize": body["cuSize"], "plan": body.get("plan", "Enterprise"),
                    "status": "RUNNING", "connectAddress": new_clusters["connectAddress"],
                }
                polls_left[cluster_id] = new_clusters.get("creatingPolls", 2)
                keys[key].append(cluster_id)
                creations.append({"clusterId": cluster_id, "body": body, "password": password})
                lose = lost["left"] > 0
                lost["left"] -= 1 if lose else 0
            if lose:
                # Created, but the answer never arrives.
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.answer(200, {"code": 0, "data": {
                "clusterId": cluster_id, "username": "db_admin", "password": password,
                "prompt": "successfully submitted, cluster is being created.",
            }})

        def import_call(self, verb, body):
            key = self.key()
            if key is None:
                return
            cluster_id = body.get("clusterId", "")
            if cluster_id not in keys[key] or cluster_id not in clusters:
                self.answer(404, {"code": 80020, "message": f"Cluster {cluster_id} does not exist or you do not have permission to access it."})
                return
            try:
                with lock:
                    if verb == "create":
                        job_id = importer.create(body)
                        lose = lost_imports["left"] > 0
                        lost_imports["left"] -= 1 if lose else 0
                        if lose:
                            self.close_connection = True
                            self.connection.shutdown(2)
                            return
                        self.answer(200, {"code": 0, "data": {"jobId": job_id}})
                    elif verb == "getProgress":
                        self.answer(200, {"code": 0, "data": importer.describe(body["jobId"])})
                    elif verb == "list":
                        size = int(body.get("pageSize", 10))
                        page = int(body.get("currentPage", 1))
                        mine = [j for j, v in importer.jobs.items() if v["clusterId"] == cluster_id]
                        records = []
                        for j in mine[(page - 1) * size:page * size]:
                            d = importer.describe(j)
                            records.append({k: d[k] for k in ("jobId", "collectionName", "state", "progress", "reason")})
                        self.answer(200, {"code": 0, "data": {"count": len(mine), "records": records}})
                    else:
                        self.answer(404, {"code": 404, "message": f"no route POST {self.path}"})
            except KeyError as e:
                self.answer(400, {"code": 1100, "message": f"invalid parameters: {e}"})
            except Exception as e:  # the server's or S3's refusal, as the control plane says it
                self.answer(200, {"code": 65535, "message": f"import failed: {e}"})

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
