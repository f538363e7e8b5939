#!/usr/bin/env bash
# The demo: starts two local Milvus servers, seeds the source with three collections (53,000
# entities, several partitions, scalar, vector and dynamic fields), migrates them with
# `vecmigrate run` on the embedded job store, and prints the verification report, then the
# outcome webhook a local receiver got (its signature verified with the official Standard
# Webhooks library).
#
#   scripts/demo.sh                          two Milvus Lite servers (fast)
#   DEMO_BACKEND=standalone scripts/demo.sh  two embedded Milvus 2.3.5 servers
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$VM_ROOT"

backend="${DEMO_BACKEND:-lite}"
ensure_venv
log "building vecmigrate"
cargo build --quiet --bin vecmigrate
start_milvus "$backend" SOURCE
start_milvus "$backend" TARGET
log "starting a webhook receiver"
webhook_secret="whsec_$("$VM_PY" -c 'import base64, os; print(base64.b64encode(os.urandom(24)).decode())')"
"$VM_PY" scripts/webhook_receiver.py --secret "$webhook_secret" >"$VM_RUN_DIR/receiver.port" &
VM_PIDS+=("$!:TERM")
for _ in $(seq 1 100); do [ -s "$VM_RUN_DIR/receiver.port" ] && break; sleep 0.1; done
receiver="http://127.0.0.1:$(head -n1 "$VM_RUN_DIR/receiver.port")"
log "seeding the source"
"$VM_PY" scripts/seed_demo.py "$SOURCE_URI" "$SOURCE_TOKEN"

spec="$VM_RUN_DIR/spec.json"
cat >"$spec" <<JSON
{
  "idempotency_key": "demo-$(date +%s)",
  "source": { "uri": "$SOURCE_URI" },
  "target": { "uri": "$TARGET_URI" },
  "databases": [ { "name": "default", "target_name": "migrated",
                   "collections": [ { "name": "products" }, { "name": "reviews" },
                                    { "name": "users", "target_name": "customers" } ] } ],
  "options": { "batch_size": 5000, "max_workers": 4, "verify": "sample" }
}
JSON
log "migrating (spec: $spec)"
set +e
VECMIGRATE_SOURCE_TOKEN="$SOURCE_TOKEN" VECMIGRATE_TARGET_TOKEN="$TARGET_TOKEN" \
VECMIGRATE_WEBHOOK_SECRET="$webhook_secret" \
  ./target/debug/vecmigrate --store "$VM_RUN_DIR/jobs.sqlite3" run --spec "$spec" \
  --webhook-url "$receiver/ok" "$@"
code=$?
set -e
log "vecmigrate exited $code; the webhook the receiver got:"
"$VM_PY" - "$receiver" <<'PY'
import json, sys, urllib.request
for d in json.load(urllib.request.urlopen(sys.argv[1] + "/deliveries")):
    body, data = d["body"], d["body"]["data"]
    verdict = "verified by standardwebhooks" if d["verified"] else "NOT VERIFIED: " + str(d["error"])
    print(f'{body["type"]} webhook-id={d["headers"]["webhook-id"]} signature {verdict}, answered {d["status"]}')
    t = data["totals"]
    print(f'  job {data["id"]} {data["job"]["status"]}: {t["matched"]} of {t["collections"]} collections match, '
          f'{t["target_count"]} of {t["source_count"]} entities, {data["duration_seconds"]}s')
    for c in data["job"]["collections"]:
        print(f'  {c["database"]}.{c["source"]} -> {c["target_database"]}.{c["target"]}: '
              f'source {c["source_count"]}, target {c["target_count"]}, match {c["match"]}')
        if c.get("content"):
            k = c["content"]
            print(f'    {k["mode"]} comparison: {k["compared"]} compared field by field, {k["differing"]} differ')
PY
exit "$code"
