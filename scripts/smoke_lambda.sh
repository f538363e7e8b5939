#!/usr/bin/env bash
# Smoke test of the compiled `bootstrap` binary under the Lambda runtime emulator
# (`cargo lambda watch`, from PyPI cargo-lambda): with its table and queue on moto, a start
# and a status request through the emulator's invoke API must answer with the job.
#
#   scripts/smoke_lambda.sh        (scripts/test.sh runs it)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$VM_ROOT"
ensure_venv
start_moto

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

"$VM_PY" - "$port" "$VM_ROOT/events" <<'PY'
import json, sys, time, urllib.request
port, events = sys.argv[1], sys.argv[2]
url = f"http://127.0.0.1:{port}/2015-03-31/functions/bootstrap/invocations"

def invoke(payload, timeout=600):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())

deadline = time.time() + 900  # the first call compiles the binary
start = json.load(open(f"{events}/invoke-start.json"))
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
status = json.load(open(f"{events}/invoke-status.json"))
status["job_id"] = job
answer = invoke(status)
assert answer["job"]["id"] == job and answer["job"]["status"] == "PENDING", answer
assert "sealed_token" not in json.dumps(answer) and "root:Milvus" not in json.dumps(answer), answer
missing = invoke({"action": "status", "job_id": "mig-missing"})
assert missing["error"]["code"] == "not_found", missing
print(f"bootstrap under cargo lambda watch: started {job}, status PENDING, unknown job not_found")
PY
