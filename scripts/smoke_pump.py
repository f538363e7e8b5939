"""What AWS does around the function in the smoke test (scripts/smoke_lambda.sh): invoke it
under `cargo lambda watch`, and play the SQS event source mapping (every queued message handed
to the function as an SQS event, deleted when it succeeded) until a job ends.

    python scripts/smoke_pump.py PORT EVENTS_DIR QUEUE_URL JOB_ID   (prints the invocations)
"""
import json
import sys
import time
import urllib.request

import boto3


def invoke(port, payload, timeout=600):
    url = f"http://127.0.0.1:{port}/2015-03-31/functions/bootstrap/invocations"
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def status(port, events, job):
    payload = json.load(open(f"{events}/invoke-status.json"))
    payload["job_id"] = job
    return invoke(port, payload)


def pump(port, events, queue, job, seconds=300):
    """Feeds queued messages to the function until the job ends; returns the invocations."""
    sqs = boto3.client("sqs")
    template = json.load(open(f"{events}/sqs-work.json"))
    invocations = 0
    until = time.time() + seconds
    while status(port, events, job)["job"]["status"] not in ("SUCCESSFUL", "FAILED", "CANCELLED"):
        assert time.time() < until, status(port, events, job)
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=1)
        for m in got.get("Messages", []):
            event = json.loads(json.dumps(template))
            event["Records"][0].update(messageId=m["MessageId"], receiptHandle=m["ReceiptHandle"], body=m["Body"])
            answer = invoke(port, event)
            invocations += 1
            assert answer.get("batchItemFailures") == [], answer
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    return invocations


if __name__ == "__main__":
    port, events, queue, job = sys.argv[1:5]
    print(pump(port, events, queue, job))
