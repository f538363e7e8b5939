"""A webhook receiver for tests and the demo: verifies every request with the official
Standard Webhooks library (PyPI `standardwebhooks`), an implementation vecmigrate shares no code
with, and records what it received.

    python scripts/webhook_receiver.py --secret whsec_... [--port 0]

Prints its port on the first line of stdout. The path chooses the behaviour:
  /ok               200
  /down/N           503 for the first N requests to this path, then 200
  /status/CODE      always CODE (400, 410, 500, ...)
  /redirect         302 to http://10.0.0.1/hook
GET /deliveries returns every request received, as JSON:
  [{"path", "status" (what we answered), "verified", "error", "headers", "body", "raw" (the body
  as sent, for the examples' test)}]
"""
import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

received = []
counts = {}
lock = threading.Lock()


def make_handler(webhook):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path != "/deliveries":
                self.send_error(404)
                return
            with lock:
                body = json.dumps(received).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified, error = True, None
            try:
                webhook.verify(body, headers)
            except WebhookVerificationError as e:
                verified, error = False, str(e)
            with lock:
                n = counts[self.path] = counts.get(self.path, 0) + 1
            parts = self.path.strip("/").split("/")
            location = None
            if not verified:
                status = 401
            elif parts[0] == "ok":
                status = 200
            elif parts[0] == "down":
                status = 503 if n <= int(parts[1]) else 200
            elif parts[0] == "status":
                status = int(parts[1])
            elif parts[0] == "redirect":
                status, location = 302, "http://10.0.0.1/hook"
            else:
                status = 404
            with lock:
                received.append({
                    "path": self.path, "status": status, "verified": verified, "error": error,
                    "headers": {k: v for k, v in headers.items() if k.startswith("webhook-")},
                    "body": json.loads(body) if body else None,
                    "raw": body.decode("utf-8", "replace"),
                })
            self.send_response(status)
            if location:
                self.send_header("location", location)
            self.send_header("content-length", "0")
            self.end_headers()

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(Webhook(args.secret)))
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
