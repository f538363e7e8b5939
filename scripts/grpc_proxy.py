"""Test tool: a gRPC proxy that stands between vecmigrate and a real Milvus server.

    grpc_proxy.py --upstream 127.0.0.1:19530 [--cert server.pem --key server.key [--client-ca ca.pem]]

Every unary call (all of Milvus's API) is forwarded as raw bytes, with its metadata (the
`authorization` header among it), to the plaintext upstream, and the upstream's answer or
status goes back unchanged. With `--cert` and `--key` the proxy terminates TLS (ALPN h2, as
any gRPC TLS server); with `--client-ca` too it requires a client certificate signed by that
CA (two-way TLS, Milvus's `tlsMode: 2`). It prints the port it listens on, then serves until
it is terminated. It is a test tool: nothing of it ships with vecmigrate.
"""
import argparse
import signal
import sys
import threading
from concurrent import futures

import grpc

UNLIMITED = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
# Metadata gRPC sets itself, or that the channel must not be told twice.
NOT_FORWARDED = {"user-agent", "content-type", "te", "grpc-accept-encoding", "grpc-encoding"}


class Forward(grpc.GenericRpcHandler):
    """Hands every method to the upstream channel, bytes in and bytes out."""

    def __init__(self, upstream):
        self.channel = grpc.insecure_channel(upstream, options=UNLIMITED)

    def service(self, details):
        call = self.channel.unary_unary(details.method)

        def handle(request, context):
            metadata = [
                (k, v)
                for k, v in context.invocation_metadata()
                if k not in NOT_FORWARDED and not k.startswith(":")
            ]
            left = context.time_remaining()
            try:
                return call(request, metadata=metadata, timeout=left if left and left < 1e6 else None)
            except grpc.RpcError as e:
                context.abort(e.code(), e.details() or "")

        return grpc.unary_unary_rpc_method_handler(handle)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--client-ca")
    a = p.parse_args()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=32), handlers=[Forward(a.upstream)], options=UNLIMITED
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
    print(port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop(grace=1).wait()
    sys.exit(0)


if __name__ == "__main__":
    main()
