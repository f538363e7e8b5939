"""Test tool: moto's server (DynamoDB, SQS, Secrets Manager, S3, STS), with DynamoDB's requests
handled one at a time.

moto's TransactWriteItems copies the whole table first and puts the copy back when a condition
fails. Its server answers requests in threads, so that restore erases what other requests wrote
to the table meanwhile, which DynamoDB never does (a cancelled transaction changes nothing).
Under load it erased the new tasks of a successful split whenever a racing split's transaction
failed at the same time: ranges lost or overlapping, only in the tests. Handling DynamoDB's
requests one at a time makes the copy and the restore see no concurrent write; SQS (whose
receives wait) and the rest stay concurrent.

    python scripts/moto_server.py -H 127.0.0.1 -p PORT
"""
import argparse
import os
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

DYNAMODB = threading.Lock()


def one_dynamodb_request_at_a_time(app):
    def serve(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with DYNAMODB:
                # The whole body is produced under the lock: moto answers in one piece.
                return list(app(environ, start_response))
        return app(environ, start_response)

    return serve


def main():
    p = argparse.ArgumentParser()
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, default=5000)
    args = p.parse_args()
    # As moto's own server does: some of its services build URLs with it.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, one_dynamodb_request_at_a_time(app), threaded=True,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
