"""Test tool: a gRPC proxy that stands between vecmigrate and a real Milvus server, and injects
the faults real targets show.

    grpc_proxy.py --upstream 127.0.0.1:19530 [--cert server.pem --key server.key [--client-ca ca.pem]]

Every unary call (all of Milvus's API) is forwarded as raw bytes, with its metadata (the
`authorization` header among it), to the plaintext upstream, and the upstream's answer or
status goes back unchanged. With `--cert` and `--key` the proxy terminates TLS (ALPN h2, as
any gRPC TLS server); with `--client-ca` too it requires a client certificate signed by that
CA (two-way TLS, Milvus's `tlsMode: 2`).

It prints `PORT CONTROL_PORT` on its first line, then serves until it is terminated. The
control port is plain HTTP on loopback:

    POST /faults   a JSON object; replaces the faults in force (an empty object: none)
    GET  /stats    what the proxy saw and did, as JSON (with `first_write_at`, `last_write_at`:
                   monotonic seconds of the first and last write it forwarded, and `upstream`:
                   per method, the calls forwarded and the seconds the upstream took)

Faults, as documented behaviour of Milvus and Zilliz Cloud (their error statuses are built
with pymilvus's own protobuf classes):

    throttle_ratio        a fraction of writes (Insert, Upsert) answered as Milvus 2.2+
                          answers an excess write: gRPC OK, status code 8, legacy error_code
                          RateLimit (49), "... rate limit exceeded[rate=N]"; spread evenly
    rate_cap_bytes        a byte-rate cap on writes (bytes/s of request messages): a write
                          that would go over it is answered throttled with rate=<cap>; the
                          bucket may go into debt by one request, as a token bucket lets a
                          large request through once its tokens are back
    quota_after_writes    writes after the N-th are refused as a full target is: status code
                          9, error_code ForceDeny (48), "quota exceeded[reason=disk quota ...]"
    unavailable           {"after_writes": N, "count": K}: the K calls after the N-th write
                          fail with gRPC UNAVAILABLE (a dropped connection)
    blackout              {"after_writes": N, "seconds": S}: after the N-th write every call
                          fails UNAVAILABLE for S seconds (a network partition)
    lose_reply            {"after_writes": N, "count": K}: the K writes after the N-th are
                          forwarded, then answered UNAVAILABLE (the write happened; its reply
                          was lost)
    latency_ms            added before every call: a number, or [LOW, HIGH] for a time drawn
                          uniformly between them per call (as across a real network)
    unimplemented         method names (["Import", "ListImportTasks"]) answered UNIMPLEMENTED,
                          as grpc-go answers a method the server does not have

It is a test tool: nothing of it ships with vecmigrate.
"""
import argparse
import json
import random
import signal
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2

UNLIMITED = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
# Metadata gRPC sets itself, or that the channel must not be told twice.
NOT_FORWARDED = {"user-agent", "content-type", "te", "grpc-accept-encoding", "grpc-encoding"}
WRITES = ("/milvus.proto.milvus.MilvusService/Insert", "/milvus.proto.milvus.MilvusService/Upsert")


class Faults:
    """The faults in force and what they did, behind one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.config = {}
        self.stats = {}
        self.reset({})

    def reset(self, config):
        with self.lock:
            self.config = config
            self.stats = {"calls": 0, "writes": 0, "forwarded_writes": 0, "throttled": 0,
                          "quota_refused": 0, "unavailable": 0, "lost_replies": 0,
                          "forwarded_write_bytes": 0, "first_write_at": None, "last_write_at": None,
                          "upstream": {}}
            self.tokens = float(config.get("rate_cap_bytes", 0) or 0)
            self.refilled = time.monotonic()
            self.unavailable_left = (config.get("unavailable") or {}).get("count", 0)
            self.lost_left = (config.get("lose_reply") or {}).get("count", 0)
            self.blackout_until = None

    def decide(self, method, size):
        """What to do with one call: forward, throttle, refuse, fail, or forward and lose."""
        with self.lock:
            c, s = self.config, self.stats
            s["calls"] += 1
            write = method in WRITES
            writes_before = s["writes"]
            if write:
                s["writes"] += 1
            name = method.rsplit("/", 1)[-1]
            if name in c.get("unimplemented", ()):
                return ("unimplemented", name)
            now = time.monotonic()
            blackout = c.get("blackout")
            if blackout and self.blackout_until is None and writes_before >= blackout["after_writes"]:
                self.blackout_until = now + blackout["seconds"]
            if self.blackout_until is not None and now < self.blackout_until:
                s["unavailable"] += 1
                return ("unavailable", None)
            outage = c.get("unavailable")
            if outage and writes_before >= outage["after_writes"] and self.unavailable_left > 0:
                self.unavailable_left -= 1
                s["unavailable"] += 1
                return ("unavailable", None)
            if not write:
                return ("forward", None)
            quota = c.get("quota_after_writes")
            if quota is not None and writes_before >= quota:
                s["quota_refused"] += 1
                return ("quota", None)
            ratio = c.get("throttle_ratio", 0)
            n = writes_before
            if ratio and int((n + 1) * ratio) > int(n * ratio):
                s["throttled"] += 1
                return ("throttle", c.get("throttle_rate", 8388608))
            cap = c.get("rate_cap_bytes")
            if cap:
                self.tokens = min(float(cap), self.tokens + (now - self.refilled) * cap)
                self.refilled = now
                if self.tokens < 0:
                    s["throttled"] += 1
                    return ("throttle", cap)
                self.tokens -= size
            lose = c.get("lose_reply")
            if lose and writes_before >= lose["after_writes"] and self.lost_left > 0:
                self.lost_left -= 1
                s["lost_replies"] += 1
                s["forwarded_writes"] += 1
                s["forwarded_write_bytes"] += size
                return ("lose", None)
            s["forwarded_writes"] += 1
            s["forwarded_write_bytes"] += size
            s["first_write_at"] = s["first_write_at"] or now
            s["last_write_at"] = now
            return ("forward", None)

    def timed(self, method, seconds):
        """Adds one forwarded call's time in the upstream to its method's count and total."""
        with self.lock:
            count, total = self.stats["upstream"].get(method, (0, 0.0))
            self.stats["upstream"][method] = (count + 1, total + seconds)

    def latency(self):
        with self.lock:
            ms = self.config.get("latency_ms", 0)
        if isinstance(ms, list):
            ms = random.uniform(ms[0], ms[1])
        return ms / 1000.0


def refused_write(code, error_code, reason):
    """A write's answer with a failed status, as Milvus sends it (gRPC OK)."""
    status = common_pb2.Status(code=code, error_code=error_code, reason=reason)
    return milvus_pb2.MutationResult(status=status).SerializeToString()


class Forward(grpc.GenericRpcHandler):
    """Hands every method to the upstream channel, bytes in and bytes out, faults applied."""

    def __init__(self, upstream, faults):
        self.channel = grpc.insecure_channel(upstream, options=UNLIMITED)
        self.faults = faults

    def service(self, details):
        method = details.method
        call = self.channel.unary_unary(method)

        def handle(request, context):
            wait = self.faults.latency()
            if wait:
                time.sleep(wait)
            action, arg = self.faults.decide(method, len(request))
            if action == "unavailable":
                context.abort(grpc.StatusCode.UNAVAILABLE, "injected: connection dropped")
            if action == "unimplemented":
                context.abort(grpc.StatusCode.UNIMPLEMENTED, f"unknown method {arg} for service milvus.proto.milvus.MilvusService")
            if action == "throttle":
                return refused_write(8, 49, f"request is rejected by grpc RateLimiter middleware, please retry later: rate limit exceeded[rate={arg}]")
            if action == "quota":
                return refused_write(9, 48, "quota exceeded[reason=disk quota exceeded, please allocate more resources]")
            metadata = [
                (k, v)
                for k, v in context.invocation_metadata()
                if k not in NOT_FORWARDED and not k.startswith(":")
            ]
            left = context.time_remaining()
            started = time.monotonic()
            try:
                answer = call(request, metadata=metadata, timeout=left if left and left < 1e6 else None)
            except grpc.RpcError as e:
                context.abort(e.code(), e.details() or "")
            finally:
                self.faults.timed(method.rsplit("/", 1)[-1], time.monotonic() - started)
            if action == "lose":
                context.abort(grpc.StatusCode.UNAVAILABLE, "injected: the reply was lost")
            return answer

        return grpc.unary_unary_rpc_method_handler(handle)


def control_server(faults):
    class Control(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            with faults.lock:
                self.reply(dict(faults.stats))

        def do_POST(self):
            length = int(self.headers.get("content-length", 0))
            faults.reset(json.loads(self.rfile.read(length) or b"{}"))
            self.reply({"ok": True})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Control)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--client-ca")
    a = p.parse_args()
    faults = Faults()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=32),
        handlers=[Forward(a.upstream, faults)],
        options=UNLIMITED,
    )
    where = f"{a.host}:{a.port}"
    if a.cert:
        read = lambda path: open(path, "rb").read()
        credentials = grpc.ssl_server_credentials(
            [(read(a.key), read(a.cert))],
            root_certificates=read(a.client_ca) if a.client_ca else None,
            require_client_auth=bool(a.client_ca),
        )
        port = server.add_secure_port(where, credentials)
    else:
        port = server.add_insecure_port(where)
    server.start()
    control = control_server(faults)
    print(port, control.server_address[1], flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop(grace=1).wait()
    sys.exit(0)


if __name__ == "__main__":
    main()
