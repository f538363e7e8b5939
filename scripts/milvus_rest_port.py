"""A stand-in for the port of a Milvus 2.4+ server (a test tool: 2.4+ cannot run here).

Milvus 2.4+ serves gRPC and its REST API on one port (19530), telling them apart by the first
bytes of a connection. So does this tool:

- a connection that opens with HTTP/2's preface is piped, bytes unchanged, to `--grpc`
  (a real server, or the fault proxy in front of it);
- any other is HTTP/1.1, answered as Milvus 2.4's Import Operations (RESTful API v2):

    POST /v2/vectordb/jobs/import/create  {"dbName", "collectionName", "partitionName",
                                           "files": [["/abs/path.parquet"]]}
    200 {"code": 0, "data": {"jobId"}}
    POST /v2/vectordb/jobs/import/describe  {"jobId"}
    200 {"code": 0, "data": {"jobId", "collectionName", "state", "progress", "importedRows",
                             "totalRows", "reason", "details": [{"fileName", "state", ...}]}}
    POST /v2/vectordb/jobs/import/list  {"dbName", "collectionName"}
    200 {"code": 0, "data": {"records": [{"jobId", "collectionName", "state", "progress"}]}}

  Each job is imported by the real server at `--milvus` (Milvus 2.3.5's `Import` RPC, through
  pymilvus, with the caller's bearer token), so a file imported twice shows as duplicate keys.
  States map from the server's: Pending, Importing, Completed, Failed. `details[].fileName` is
  the path as given (2.4 joins a task's paths with commas). Errors are answered HTTP 200 with a
  non-zero code, as Milvus does (1100 for a bad request, 65535 for the server's refusal).

    python scripts/milvus_rest_port.py --grpc 127.0.0.1:PORT --milvus http://127.0.0.1:PORT
        [--lose-replies N]

`--lose-replies N` drops the answer of the first N creates after the import started (the
connection closes), as a lost reply or a crash would. GET /imports lists the creates it took
(file, job id). Prints its port on the first line of stdout.
"""
import argparse
import json
import socket
import socketserver
import sys
import threading
import warnings
from http.server import BaseHTTPRequestHandler

from import_job import describe

PREFACE = b"PRI * HTTP/2.0"
# The ORM calls are the ones that reach the 2.3.5 server's Import RPC; their deprecation is noise.
warnings.filterwarnings("ignore", message=".*ORM-style PyMilvus API")


class Importer:
    """Import jobs, each one `Import` call on the real server."""

    def __init__(self, milvus, lose):
        self.milvus = milvus
        self.lose = lose
        self.jobs = {}
        self.creates = []
        self.lock = threading.Lock()

    def server(self, token, db):
        from pymilvus import connections
        alias = f"{token}/{db}"
        if not connections.has_connection(alias):
            connections.connect(alias, uri=self.milvus, token=token, db_name=db or "default")
        return alias

    def create(self, token, body):
        from pymilvus import utility
        (path,), = body["files"]
        alias = self.server(token, body.get("dbName", ""))
        task = utility.do_bulk_insert(body["collectionName"], files=[path],
                                      partition_name=body.get("partitionName") or None,
                                      using=alias)
        job_id = str(task)
        self.jobs[job_id] = {"alias": alias, "task": task, "path": path,
                             "collectionName": body["collectionName"],
                             "dbName": body.get("dbName") or "default"}
        self.creates.append({"jobId": job_id, "file": path})
        return job_id

    def describe(self, job_id):
        job = self.jobs[job_id]
        return describe(job_id, job["collectionName"], job["path"], job["task"], job["alias"])


def make_handler(importer):
    class Rest(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/imports":
                with importer.lock:
                    self.answer(list(importer.creates))
            else:
                self.answer({"code": 404, "message": f"no route GET {self.path}"})

        def do_POST(self):
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            auth = self.headers.get("authorization", "")
            token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
            verb = self.path.rsplit("/", 1)[-1]
            if not self.path.startswith("/v2/vectordb/jobs/import/"):
                self.answer({"code": 404, "message": f"no route POST {self.path}"})
                return
            try:
                with importer.lock:
                    if verb == "create":
                        job_id = importer.create(token, body)
                        if importer.lose > 0:
                            importer.lose -= 1
                            self.close_connection = True
                            self.connection.shutdown(socket.SHUT_RDWR)
                            return
                        self.answer({"code": 0, "data": {"jobId": job_id}})
                    elif verb == "describe":
                        self.answer({"code": 0, "data": importer.describe(body["jobId"])})
                    elif verb == "list":
                        records = []
                        for j, v in importer.jobs.items():
                            if body.get("collectionName") not in (None, "", v["collectionName"]):
                                continue
                            d = importer.describe(j)
                            records.append({k: d[k] for k in ("jobId", "collectionName", "state", "progress")})
                        self.answer({"code": 0, "data": {"records": records}})
                    else:
                        self.answer({"code": 404, "message": f"no route POST {self.path}"})
            except KeyError as e:
                self.answer({"code": 1100, "message": f"invalid parameter: {e}"})
            except Exception as e:  # the server's refusal, as Milvus's REST layer passes it on
                self.answer({"code": 65535, "message": f"import failed: {e}"})

    return Rest


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def make_mux(grpc_upstream, rest):
    host, port = grpc_upstream.rsplit(":", 1)

    class Mux(socketserver.BaseRequestHandler):
        def handle(self):
            head = b""
            while len(head) < len(PREFACE):
                head = self.request.recv(len(PREFACE), socket.MSG_PEEK)
                if not head or not PREFACE.startswith(head[:len(PREFACE)]):
                    break
            if head.startswith(PREFACE):
                upstream = socket.create_connection((host, int(port)))
                back = threading.Thread(target=pipe, args=(upstream, self.request), daemon=True)
                back.start()
                pipe(self.request, upstream)
                back.join()
                upstream.close()
            elif head:
                rest(self.request, self.client_address, self.server)

    return Mux


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--grpc", required=True, help="host:port gRPC connections are piped to")
    parser.add_argument("--milvus", required=True, help="the real server's URI that imports")
    parser.add_argument("--lose-replies", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    importer = Importer(args.milvus, args.lose_replies)
    socketserver.ThreadingTCPServer.daemon_threads = True
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", args.port),
                                             make_mux(args.grpc, make_handler(importer)))
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
