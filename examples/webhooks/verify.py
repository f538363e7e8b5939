"""Verifying a vecmigrate webhook in Python, with the official Standard Webhooks library
(PyPI `standardwebhooks`). A receiver calls `verify(body, headers)` with the raw body bytes
and the request's headers; it returns the event, or raises when the signature, the id or the
timestamp (five minutes either way) is wrong.

Run as a script, it checks one delivery saved as two files (the tests do this):
    VECMIGRATE_WEBHOOK_SECRET=whsec_... python verify.py HEADERS.json BODY
prints the event's type and the job's status, or exits 1 saying why it refused it.
"""
import json
import os
import sys

from standardwebhooks.webhooks import Webhook


def verify(body: bytes, headers: dict) -> dict:
    """The event a delivery carries, once its signature checks out."""
    return Webhook(os.environ["VECMIGRATE_WEBHOOK_SECRET"]).verify(body, headers)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        headers = json.load(f)
    with open(sys.argv[2], "rb") as f:
        body = f.read()
    try:
        event = verify(body, headers)
    except Exception as e:  # the library raises WebhookVerificationError
        print(f"refused: {e}", file=sys.stderr)
        sys.exit(1)
    print(event["type"], event["data"]["job"]["status"])
