#!/usr/bin/env bash
# The demo: starts two local Milvus servers, seeds the source with three collections (53,000
# entities, several partitions, scalar, vector and dynamic fields), migrates them with
# `vecmigrate run` on the embedded job store, and prints the verification report, then the
# outcome webhook a local receiver got (its signature verified with the official Standard
# Webhooks library).
#
#   scripts/demo.sh                          two Milvus Lite servers (fast)
#   DEMO_BACKEND=standalone scripts/demo.sh  two embedded Milvus 2.3.5 servers
#   scripts/demo.sh --keep [RUN ARGS]        keep both servers and the job store (in .demo/)
#                                            afterwards, to try the CLI on them
#   scripts/demo.sh --stop                   stop the servers --keep left running
#
# Other arguments go to `vecmigrate run` (for example --max-run 2s).
set -euo pipefail
keep=false
case "${1:-}" in
  --keep) keep=true; shift ;;
  --stop)
    dir="$(cd "$(dirname "$0")/.." && pwd)/.demo"
    if [ ! -f "$dir/pids" ]; then
      echo "[vecmigrate] no servers kept by scripts/demo.sh --keep are running" >&2
      exit 0
    fi
    while read -r entry; do kill "-${entry#*:}" "${entry%%:*}" 2>/dev/null || true; done <"$dir/pids"
    sleep 2
    pkill -KILL -f "$dir/" 2>/dev/null || true
    rm -rf "$dir"
    echo "[vecmigrate] stopped the demo's servers and removed .demo/" >&2
    exit 0
    ;;
esac
if $keep; then
  # A fixed place, so that the servers and the store outlive this script and --stop finds them.
  VM_RUN_DIR="$(cd "$(dirname "$0")/.." && pwd)/.demo"
  if [ -f "$VM_RUN_DIR/pids" ]; then
    "$0" --stop
  fi
  rm -rf "$VM_RUN_DIR"
  mkdir -p "$VM_RUN_DIR"
fi
source "$(dirname "$0")/lib.sh"
cd "$VM_ROOT"

backend="${DEMO_BACKEND:-lite}"
ensure_venv demo
log "building vecmigrate (the first build takes about 3 minutes and 4 GB in target/)"
cargo build --bin vecmigrate
start_milvus "$backend" SOURCE
start_milvus "$backend" TARGET
log "starting a webhook receiver"
webhook_secret="whsec_$("$VM_PY" -c 'import base64, os; print(base64.b64encode(os.urandom(24)).decode())')"
"$VM_PY" scripts/webhook_receiver.py --secret "$webhook_secret" >"$VM_RUN_DIR/receiver.port" &
receiver_pid=$!
trap 'kill "$receiver_pid" 2>/dev/null || true; stop_servers' EXIT
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
kill "$receiver_pid" 2>/dev/null || true
if $keep; then
  job=$(./target/debug/vecmigrate --store "$VM_RUN_DIR/jobs.sqlite3" list --json --limit 1 |
    "$VM_PY" -c 'import json, sys; jobs = json.load(sys.stdin); print(jobs[0]["id"] if jobs else "JOB")')
  printf '%s\n' "${VM_PIDS[@]}" >"$VM_RUN_DIR/pids"
  VM_PIDS=()
  trap - EXIT
  store=".demo/jobs.sqlite3"
  tokens=""
  [ -n "$SOURCE_TOKEN" ] && tokens=" --source-token $SOURCE_TOKEN --target-token $TARGET_TOKEN"
  cat >&2 <<EOF
[vecmigrate] the two $backend servers keep running (scripts/demo.sh --stop stops them and removes .demo/):
  source  $SOURCE_URI${SOURCE_TOKEN:+  token $SOURCE_TOKEN}
  target  $TARGET_URI${TARGET_TOKEN:+  token $TARGET_TOKEN}
look at the job:
  ./target/debug/vecmigrate --store $store status $job
  ./target/debug/vecmigrate --store $store serve        # the jobs page, http://127.0.0.1:8080/
migrate a collection again, under another name:
  ./target/debug/vecmigrate --store $store run --source-uri $SOURCE_URI --target-uri $TARGET_URI$tokens --collection users:users_again
EOF
else
  log "the servers and the job store are gone now; scripts/demo.sh --keep keeps them, to try the CLI on"
fi
exit "$code"
