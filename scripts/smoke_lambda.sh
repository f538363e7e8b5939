#!/usr/bin/env bash
# Smoke test of the compiled `bootstrap` binary under the Lambda runtime emulator
# (`cargo lambda watch`, from PyPI cargo-lambda): with its table and queue on moto and two
# Milvus Lite servers, the source reached over TLS (the test gRPC proxy, with a CA made for
# the test), it must answer a start, then run the job to SUCCESSFUL as SQS would feed it
# (each queued message handed to the function as an SQS event), and answer status requests.
# It is the binary's own TLS stack that is tried here: the one a Zilliz Cloud URI needs.
#
#   scripts/smoke_lambda.sh        (scripts/test.sh runs it)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$VM_ROOT"
ensure_venv
start_moto
start_milvus lite SOURCE
start_milvus lite TARGET
start_tls_proxies
"$VM_PY" - "$SOURCE_URI" <<'PY'
import sys
from pymilvus import MilvusClient
c = MilvusClient(uri=sys.argv[1])
c.create_collection("smoke", dimension=8)
c.insert("smoke", [{"id": i, "vector": [i / 1000] * 8, "tag": f"t{i}"} for i in range(1500)])
c.flush("smoke")
PY

names=$("$VM_PY" - <<'PY'
import json, uuid, boto3
suffix = uuid.uuid4().hex[:8]
ddb = boto3.client("dynamodb")
table = f"smoke-jobs-{suffix}"
s = lambda n: {"AttributeName": n, "AttributeType": "S"}
index = lambda name, key, sort="created": {"IndexName": name, "Projection": {"ProjectionType": "ALL"},
    "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}, {"AttributeName": sort, "KeyType": "RANGE"}]}
ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[s("pk"), s("sk"), s("status"), s("kind"), s("created"), s("hook"), s("hook_due")],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    GlobalSecondaryIndexes=[index("by_status", "status"), index("by_time", "kind"),
                            index("webhooks_due", "hook", "hook_due")])
queue = boto3.client("sqs").create_queue(QueueName=f"smoke-work-{suffix}")["QueueUrl"]
key = boto3.client("secretsmanager").create_secret(Name=f"smoke-sealing-{suffix}", SecretString="smoke key")["ARN"]
print(table, queue, key)
PY
)
read -r table queue key <<<"$names"

port=$(free_ports 1)
log "starting bootstrap under cargo lambda watch on port $port"
PATH="$VM_VENV/bin:$PATH" cargo lambda watch --bin bootstrap --invoke-address 127.0.0.1 \
  --invoke-port "$port" --ignore-changes \
  --env-var "VECMIGRATE_TABLE=$table" --env-var "VECMIGRATE_QUEUE_URL=$queue" \
  --env-var "VECMIGRATE_SEALING_KEY_ARN=$key" --env-var "VECMIGRATE_LOG=warn" \
  >"$VM_RUN_DIR/cargo-lambda.log" 2>&1 &
VM_PIDS+=("$!:INT")  # cargo lambda stops its function process on Ctrl-C

"$VM_PY" - "$port" "$VM_ROOT/events" "$queue" "$TLS_SOURCE_PORT" "$VECMIGRATE_TEST_TLS_DIR" \
  "$TARGET_URI" <<'PY'
import json, sys, time, urllib.request
import boto3
from pymilvus import MilvusClient
port, events, queue, tls_port, tls_dir, target_uri = sys.argv[1:7]
url = f"http://127.0.0.1:{port}/2015-03-31/functions/bootstrap/invocations"

def invoke(payload, timeout=600):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())

def status(job):
    payload = json.load(open(f"{events}/invoke-status.json"))
    payload["job_id"] = job
    return invoke(payload)

# The sample start, pointed at the source over TLS (CA inline) and the plaintext target.
start = json.load(open(f"{events}/invoke-start.json"))
start["request"]["source"] = {
    "uri": f"https://localhost:{tls_port}", "tls": {"ca_cert": open(f"{tls_dir}/ca.pem").read()}}
start["request"]["target"] = {"uri": target_uri, "token": "root:Milvus"}
start["request"]["databases"][0]["collections"] = [{"name": "smoke", "target_name": "smoke_copy"}]
deadline = time.time() + 900  # the first call compiles the binary
while True:
    try:
        started = invoke(start)
        break
    except Exception as e:
        if time.time() > deadline:
            sys.exit(f"cargo lambda watch did not answer: {e}")
        time.sleep(2)
job = started.get("job", {}).get("id")
assert job and started["job"]["status"] == "PENDING", started
answer = status(job)
assert answer["job"]["id"] == job and answer["job"]["status"] == "PENDING", answer
assert "sealed_token" not in json.dumps(answer) and "root:Milvus" not in json.dumps(answer), answer

# Play the event source mapping: every queued message goes to the function as an SQS event.
sqs = boto3.client("sqs")
template = json.load(open(f"{events}/sqs-work.json"))
invocations = 0
until = time.time() + 300
while status(job)["job"]["status"] not in ("SUCCESSFUL", "FAILED", "CANCELLED"):
    assert time.time() < until, status(job)
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=1)
    for m in got.get("Messages", []):
        event = json.loads(json.dumps(template))
        event["Records"][0].update(messageId=m["MessageId"], receiptHandle=m["ReceiptHandle"], body=m["Body"])
        answer = invoke(event)
        invocations += 1
        assert answer.get("batchItemFailures") == [], answer
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
final = status(job)["job"]
assert final["status"] == "SUCCESSFUL", final
counts = [(c["source_count"], c["target_count"]) for c in final["collections"]]
assert counts == [(1500, 1500)], counts
copied = MilvusClient(uri=target_uri).query("smoke_copy", filter="", output_fields=["count(*)"])
assert copied[0]["count(*)"] == 1500, copied
missing = invoke({"action": "status", "job_id": "mig-missing"})
assert missing["error"]["code"] == "not_found", missing
print(f"bootstrap under cargo lambda watch: {job} SUCCESSFUL over TLS in {invocations} invocations, 1500 of 1500 entities; unknown job not_found")
PY
