#!/usr/bin/env bash
# Smoke test of the compiled `bootstrap` binary under the Lambda runtime emulator
# (`cargo lambda watch`, from PyPI cargo-lambda): with its table and queue on moto and two
# Milvus Lite servers, the source reached over TLS (the test gRPC proxy, with a CA made for
# the test), it must answer a start, then run the job to SUCCESSFUL as SQS would feed it
# (each queued message handed to the function as an SQS event), and answer status requests.
# It is the binary's own TLS stack that is tried here: the one a Zilliz Cloud URI needs.
# Then a script written for Zilliz Cloud's migration API (curl, its documented calls) runs a
# second job through the function URL, its clusters given by id and resolved through the
# stand-in control plane (scripts/zilliz_control_plane.py); the transcript is printed (the
# README shows it).
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

# The stand-in control plane: a Serverless cluster on the source server, a Dedicated one on
# the target's, both visible to one API key (Milvus Lite has no authentication); the clusters
# it creates are the target server too, CREATING for two describes.
cp_port=$(free_ports 1)
cat >"$VM_RUN_DIR/control-plane.json" <<JSON
{"keys": {"smoke-api-key": ["in05-smokesource01", "in01-smoketarget01"]},
 "clusters": {"in05-smokesource01": {"plan": "Serverless", "connectAddress": "$SOURCE_URI"},
              "in01-smoketarget01": {"plan": "Enterprise", "cuSize": 2, "connectAddress": "$TARGET_URI"}},
 "newClusters": {"connectAddress": "$TARGET_URI", "creatingPolls": 2}}
JSON
"$VM_PY" scripts/zilliz_control_plane.py --config "$VM_RUN_DIR/control-plane.json" \
  --port "$cp_port" >/dev/null &
VM_PIDS+=("$!:TERM")

port=$(free_ports 1)
log "starting bootstrap under cargo lambda watch on port $port"
PATH="$VM_VENV/bin:$PATH" cargo lambda watch --bin bootstrap --invoke-address 127.0.0.1 \
  --invoke-port "$port" --ignore-changes \
  --env-var "VECMIGRATE_TABLE=$table" --env-var "VECMIGRATE_QUEUE_URL=$queue" \
  --env-var "VECMIGRATE_SEALING_KEY_ARN=$key" --env-var "VECMIGRATE_LOG=warn" \
  --env-var "VECMIGRATE_ZILLIZ_API_URL=http://127.0.0.1:$cp_port" \
  --env-var "VECMIGRATE_ZILLIZ_BEARER_AUTH=true" --env-var "VECMIGRATE_PROVISION_POLL=1s" \
  >"$VM_RUN_DIR/cargo-lambda.log" 2>&1 &
VM_PIDS+=("$!:INT")  # cargo lambda stops its function process on Ctrl-C

"$VM_PY" - "$port" "$VM_ROOT/events" "$queue" "$TLS_SOURCE_PORT" "$VECMIGRATE_TEST_TLS_DIR" \
  "$TARGET_URI" "$VM_ROOT/scripts" <<'PY'
import json, sys, time
from pymilvus import MilvusClient
port, events, queue, tls_port, tls_dir, target_uri, scripts = sys.argv[1:8]
sys.path.insert(0, scripts)
import smoke_pump

invoke = lambda payload: smoke_pump.invoke(port, payload)
status = lambda job: smoke_pump.status(port, events, job)

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
invocations = smoke_pump.pump(port, events, queue, job)
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

# A script written for Zilliz Cloud, its base URL changed to the function's URL.
export BASE_URL="http://127.0.0.1:$port/lambda-url/bootstrap" TOKEN="smoke-api-key"
transcript="$VM_RUN_DIR/zilliz-transcript.txt"
: >"$transcript"
say() { printf '%s\n' "$*" >>"$transcript"; }
say '$ curl --request POST --url "${BASE_URL}/v2/migrations/toExisting" \'
say '    --header "Authorization: Bearer ${TOKEN}" --header "Content-Type: application/json" \'
say "    -d '{\"source\":{\"clusterId\":\"in05-smokesource01\"},\"destination\":{\"clusterId\":\"in01-smoketarget01\"},\"dbCollections\":[{\"dbName\":\"default\",\"collections\":[{\"collectionName\":\"smoke\"}]}]}'"
started=$(curl -sS --request POST --url "${BASE_URL}/v2/migrations/toExisting" \
  --header "Authorization: Bearer ${TOKEN}" --header "Content-Type: application/json" \
  -d '{"source":{"clusterId":"in05-smokesource01"},"destination":{"clusterId":"in01-smoketarget01"},"dbCollections":[{"dbName":"default","collections":[{"collectionName":"smoke"}]}]}')
say "$started"
job=$("$VM_PY" -c 'import json,sys; a=json.loads(sys.argv[1]); assert a["code"] == 0, a; print(a["data"]["jobId"])' "$started")
poll() {
  say '$ curl --request GET --url "${BASE_URL}/v2/jobs/'"$job"'" --header "Authorization: Bearer ${TOKEN}"'
  local answer
  answer=$(curl -sS --request GET --url "${BASE_URL}/v2/jobs/$job" --header "Authorization: Bearer ${TOKEN}")
  say "$answer"
  printf '%s' "$answer"
}
poll >/dev/null
"$VM_PY" scripts/smoke_pump.py "$port" "$VM_ROOT/events" "$queue" "$job" >/dev/null
final=$(poll)
"$VM_PY" -c 'import json,sys; a=json.loads(sys.argv[1]); d=a["data"]; assert (a["code"], d["status"], d["progress"], d["type"]) == (0, "SUCCESSFUL", "100", "MIGRATION"), a' "$final"
say '$ curl --request GET --url "${BASE_URL}/v2/jobs/'"$job"'" --header "Authorization: Bearer not-a-key"'
say "$(curl -sS --request GET --url "${BASE_URL}/v2/jobs/$job" --header "Authorization: Bearer not-a-key")"
# The same source into a cluster the job creates ("Migrate to New Dedicated Cluster").
new_body='{"source":{"clusterId":"in05-smokesource01"},"destination":{"clusterName":"smoke-upgraded","projectId":"proj-standin","regionId":"aws-us-west-2","plan":"Enterprise","cuType":"Performance-optimized","cuSize":2},"dbCollections":[{"dbName":"default","destDbName":"upgraded","collections":[{"collectionName":"smoke"}]}]}'
say '$ curl --request POST --url "${BASE_URL}/v2/migrations/toNewDedicated" \'
say '    --header "Authorization: Bearer ${TOKEN}" --header "Content-Type: application/json" \'
say "    -d '$new_body'"
started=$(curl -sS --request POST --url "${BASE_URL}/v2/migrations/toNewDedicated" \
  --header "Authorization: Bearer ${TOKEN}" --header "Content-Type: application/json" -d "$new_body")
say "$started"
job=$("$VM_PY" -c 'import json,sys; a=json.loads(sys.argv[1]); assert a["code"] == 0 and a["data"]["clusterId"], a; print(a["data"]["jobId"])' "$started")
"$VM_PY" scripts/smoke_pump.py "$port" "$VM_ROOT/events" "$queue" "$job" >/dev/null
final=$(poll)
"$VM_PY" -c 'import json,sys; a=json.loads(sys.argv[1]); d=a["data"]; assert (a["code"], d["status"], d["progress"]) == (0, "SUCCESSFUL", "100"), a' "$final"
cat "$transcript"
log "Zilliz-compatible API under cargo lambda watch: toExisting and toNewDedicated SUCCESSFUL (transcript above)"
